// asyncfiber/errors.hpp - the exception types of asyncfiber, and which exception stands for
// which of asyncio's.
//
// The errors asyncio defines for itself derive from af::Error (a std::runtime_error):
// RuntimeError, InvalidStateError, TimeoutError, the queue errors, IncompleteReadError,
// LimitOverrunError, TaskGroupError (asyncio's ExceptionGroup), LookupError, BrokenPromise,
// SslError (tls.hpp) and BrokenBarrierError (sync.hpp). Python's built-in errors map to the
// standard library's own exceptions, which a C++ caller already catches, and so do not
// derive from af::Error:
//   - ValueError (a bad argument: a negative size or limit, a NaN duration, an empty list of
//     tasks, a release or task_done() past its count) is std::invalid_argument;
//   - OSError and its subclasses (a refused connection, a closed descriptor) are
//     std::system_error with the errno value (boost::system::system_error out of use_await);
//   - MemoryError is std::bad_alloc; IndexError (Runtime::loop(i)) is std::out_of_range;
//     a semaphore count past INT_MAX, a limit of C++ only, is std::overflow_error; and a
//     ConcurrentFuture keeps std::future's own contract (std::future_error).
// An empty handle (a default-made or moved-from Task, Timeout, Context, SslContext, stream)
// is a handle in no state, whatever it is passed to: InvalidStateError.
// af::CancelledError and af::KeyboardInterrupt stand alone on purpose, like asyncio's
// BaseException subclasses: legacy code full of `catch (const std::exception&)` must not be
// able to swallow a cancellation by accident.
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace asyncfiber {

/// Base of every asyncfiber error except CancelledError and KeyboardInterrupt.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Misuse of the runtime: a suspension call outside a task, run() inside a running loop...
class RuntimeError : public Error {
public:
    using Error::Error;
};

/// An operation that is not valid in the object's current state (a pending result, a
/// promise set twice...).
class InvalidStateError : public Error {
public:
    using Error::Error;
};

/// A ContextVar read without a value in the current context and without a default, or a
/// Context::get of a variable the context does not hold (Python's LookupError / KeyError).
class LookupError : public Error {
public:
    using Error::Error;
};

/// A deadline passed (wait_for, timeout, timeout_at, wait with a timeout that must throw).
class TimeoutError : public Error {
public:
    TimeoutError() : Error("asyncfiber: timeout expired") {}
    using Error::Error;
};

class QueueEmpty : public Error {
public:
    QueueEmpty() : Error("asyncfiber: queue is empty") {}
    using Error::Error;
};

class QueueFull : public Error {
public:
    QueueFull() : Error("asyncfiber: queue is full") {}
    using Error::Error;
};

class QueueShutDown : public Error {
public:
    QueueShutDown() : Error("asyncfiber: queue is shut down") {}
    using Error::Error;
};

/// The promise (or callback) that was to complete an await was destroyed without being set.
class BrokenPromise : public Error {
public:
    BrokenPromise() : Error("asyncfiber: broken promise: destroyed before a value was set") {}
    using Error::Error;
};

/// readexactly() met EOF first; partial() holds what was read.
class IncompleteReadError : public Error {
public:
    IncompleteReadError(std::string partial, std::size_t expected);
    const std::string& partial() const noexcept { return partial_; }
    std::size_t expected() const noexcept { return expected_; }

private:
    std::string partial_;
    std::size_t expected_;
};

/// readuntil()/readline() found no separator within the stream's buffer limit.
class LimitOverrunError : public Error {
public:
    LimitOverrunError(const std::string& what, std::size_t consumed)
        : Error(what), consumed_(consumed) {}
    /// How many bytes are buffered (and would have to be consumed) at the time of the error.
    std::size_t consumed() const noexcept { return consumed_; }

private:
    std::size_t consumed_;
};

namespace detail {
/// One line about an exception, for reports: what() of a std::exception, "CancelledError: "
/// and its message, otherwise its type (lib/errors.cpp).
std::string describe_exception(const std::exception_ptr& e);
}  // namespace detail

/// The tasks of a task group (and af::task_group's body) that failed: every exception, in
/// the order the failures happened (asyncio's ExceptionGroup). what() names the first one
/// and the count, so that a `catch (const std::exception& e)` that logs e.what() keeps the
/// cause: "asyncfiber: unhandled errors in a TaskGroup (2 sub-exceptions), the first:
/// connection refused".
class TaskGroupError : public Error {
public:
    explicit TaskGroupError(std::vector<std::exception_ptr> errors);
    TaskGroupError(const TaskGroupError& other) noexcept;
    TaskGroupError& operator=(const TaskGroupError& other) noexcept;
    ~TaskGroupError() override;
    const std::vector<std::exception_ptr>& exceptions() const noexcept;

private:
    // The list lives in lib/runtime/errors.cpp, shared by the copies of one error (as
    // std::runtime_error shares its message: copying an exception must not throw), so that
    // including this header does not instantiate std::vector's code in every file.
    struct Errors;
    Errors* errors_;
};

/// Thrown at a suspension point of a cancelled task. Deliberately NOT a std::exception.
class CancelledError {
public:
    CancelledError() = default;
    explicit CancelledError(std::string message) : message_(std::move(message)) {}
    /// The message given to Task::cancel(msg), possibly empty.
    const std::string& message() const noexcept { return message_; }
    const char* what() const noexcept {
        return message_.empty() ? "asyncfiber: task cancelled" : message_.c_str();
    }

private:
    std::string message_;
};

/// Thrown by af::run when SIGINT (Ctrl-C) cancelled its main task and main ended cancelled,
/// if the caller asked for it (RunOptions::throw_on_interrupt) instead of the default end of
/// an interrupted program. asyncio raises KeyboardInterrupt there. Like CancelledError, NOT a
/// std::exception.
class KeyboardInterrupt {
public:
    const char* what() const noexcept { return "asyncfiber: interrupted by SIGINT"; }
};

}  // namespace asyncfiber

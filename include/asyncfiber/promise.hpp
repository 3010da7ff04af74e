// asyncfiber/promise.hpp - one-shot values set from any thread, and callbacks, awaited by a
// task (asyncio's futures.py; threads are in threads.hpp, the Boost.Asio token in
// use_await.hpp, all three in bridge.hpp).
//
// - af::Promise<T> / af::Future<T>: a one-shot value set from any thread, awaited by a task.
// - af::await_callback<T>(start): awaits a callback-style API (start(cb) hands cb over).
//
// The awaiting task and the completing side share one reference-counted heap block and
// nothing else, so a completion that arrives late (after the task was cancelled or finished),
// on any thread, never touches the task's memory; it is dropped. See
// docs/migrating-callbacks.md.
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/bridge_core.hpp>
#include <asyncfiber/detail/callback.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/errors.hpp>

#include <exception>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

// A callback may report a boost::system::error_code; naming it needs no Boost header (Boost
// declares it the same way in boost/system/error_code.hpp).
namespace boost {
namespace system {
class error_code;
}  // namespace system
}  // namespace boost

namespace asyncfiber {

// ======================================================================================
// Promise / Future
// ======================================================================================

template <class T>
class Future;

/// The producing side of a one-shot value. set_value / set_exception may be called from any
/// thread (one call in all: a second throws InvalidStateError; one after the future was
/// cancelled is ignored and reported on stderr, as legacy code cannot know). Destroyed unset,
/// it makes the await of its future throw BrokenPromise. Move-only.
template <class T>
class Promise {
public:
    Promise() : core_(detail::IntrusivePtr<detail::Shared<T>>::adopt(new detail::Shared<T>)) {}
    Promise(Promise&&) noexcept = default;
    Promise& operator=(Promise&& o) noexcept;
    Promise(const Promise&) = delete;
    Promise& operator=(const Promise&) = delete;
    ~Promise() { abandon(); }

    /// The future that receives the value; once only (InvalidStateError after).
    Future<T> get_future();
    /// Any thread. For Promise<void>: set_value().
    template <class... A>
    void set_value(A&&... a);
    /// Any thread.
    void set_exception(std::exception_ptr e);

private:
    void already_set() const;
    void check() const;
    void abandon() noexcept;
    detail::IntrusivePtr<detail::Shared<T>> core_;
    bool future_taken_ = false;
};

/// The awaiting side: `T v = af::await(fut);` in a task, `fut.get()` on a plain thread. One
/// task may wait at a time; the value is moved out by the first successful await or get (a
/// second throws InvalidStateError). Cancelling the awaiting task does not affect the
/// promise: a value set later stays in the future and a new await gets it.
///
/// A future from Runtime::spawn_on stands for a task on another loop: cancel(), or cancelling
/// the task that awaits it, cancels that task, and the await ends when it has ended.
template <class T>
class Future {
public:
    Future() noexcept = default;
    bool valid() const noexcept { return core_.get() != nullptr; }
    /// Any thread: whether a value, an exception or a broken promise is there.
    bool ready() const { return valid() && core_->ready(); }
    /// Any thread: the same as ready() (concurrent.futures' name).
    bool done() const { return ready(); }

    /// On a plain thread: blocks until the future is done, then returns (moves out) its value
    /// or rethrows its exception (CancelledError once cancelled, BrokenPromise). Throws
    /// RuntimeError on a thread that runs a loop (in a task, af::await(fut) is the way).
    T get();

    /// Any thread. A pending future of a Promise is done at once with CancelledError (a
    /// later set on the promise is ignored and reported); one from Runtime::spawn_on asks its
    /// task to stop, and is done, with CancelledError, once that task has ended. Returns true
    /// when the future is (or will be) cancelled, false (changing nothing) when it is done
    /// otherwise.
    bool cancel();

    /// Any thread: `fn()` runs once the future is done, on the thread that completes it (the
    /// promise's, the remote loop's), or at once on this thread if it is done already. fn
    /// must not block; an exception from it is reported on stderr.
    void add_done_callback(detail::Callback<void()> fn);

private:
    friend class Promise<T>;
    friend struct detail::Access;
    explicit Future(detail::IntrusivePtr<detail::Shared<T>> c) noexcept : core_(std::move(c)) {}
    /// af::await(future).
    T await_value();
    void check(const char* what) const;
    detail::IntrusivePtr<detail::Shared<T>> core_;
};

/// Suspends the calling task until the future's promise is set; returns (moves out) its
/// value, rethrows its exception, or throws BrokenPromise.
template <class T>
T await(Future<T>& f) {
    return detail::Access::await_value(f);
}
template <class T>
T await(Future<T>&& f) {
    return detail::Access::await_value(f);
}

// ======================================================================================
// await_callback
// ======================================================================================

/// The callback af::await_callback<T> hands to `start`. Copyable; callable once from any
/// thread with one of the shapes: (value), (values...) for a tuple T, () for T = void, or
/// any of these preceded by a std::error_code, a boost::system::error_code or a
/// std::exception_ptr (a set error throws std::system_error, boost::system::system_error or
/// the exception at the await; the values are then ignored).
template <class T>
class Callback {
public:
    explicit Callback(detail::Shared<T>* core) : ref_(core) {}

    template <class... A>
    void operator()(A&&... a) const;

private:
    template <class E, class... A>
    void call(std::true_type, E&& e, A&&... a) const;
    template <class... A>
    void call(std::false_type, A&&... a) const;
    static void done(bool first);
    detail::CompleterRef<detail::Shared<T>> ref_;
};

/// Calls start(cb) and suspends the calling task until cb is called (on any thread, possibly
/// before start returns); returns the value cb was given. cb dropped uncalled (every copy
/// destroyed): BrokenPromise. A second call: ignored, reported on stderr. If the task is
/// cancelled it wakes with CancelledError at once; a later call of cb is dropped.
/// Exceptions from start propagate (cb may then still be called; it is ignored).
template <class T, class Start>
T await_callback(Start&& start);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/promise_inl.hpp>

// asyncfiber/use_await.hpp - af::use_await, the Boost.Asio completion token that suspends
// only the calling task. The one header of the thread bridge that includes Boost.Asio.
//
// The awaiting task and the operation's handler share one reference-counted heap block and
// nothing else, so a handler that runs after the task stopped waiting never touches the
// task's memory; its result is dropped and reported when there was one.
#pragma once

#include <asyncfiber/detail/bridge_core.hpp>
#include <asyncfiber/detail/loop_executor.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/loop.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace asyncfiber {

// ======================================================================================
// use_await: the Boost.Asio completion token
// ======================================================================================

namespace detail {
struct UseAwaitCancel {
    bool (*fn)(void*) = nullptr;
    void* obj = nullptr;
};
}  // namespace detail

/// `n = boost::asio::async_read(sock, buf, af::use_await);` inside a task suspends that task
/// only. A failed operation throws boost::system::system_error; with `af::use_await[ec]` the
/// error is stored in ec instead (and ec is cleared on success).
///
/// Cancellation and timeouts: cancelling the task wakes it with CancelledError at once,
/// always. Whether the operation stops too depends on the token, because Boost 1.74 has no
/// per-operation cancellation slots and the token cannot see the I/O object the operation
/// belongs to:
/// - `af::use_await.cancels(sock)` names it: cancelling the task calls sock.cancel(), which,
///   as Asio defines it, aborts every pending operation of that object. Use it for every
///   operation under af::timeout / wait_for or in a task that may be cancelled, when the
///   object lives on after the task stops waiting (a member, a connection read again).
/// - Without it the operation runs on: it still reads, accepts or resolves, and its result
///   goes nowhere. A read left behind by a timeout takes the next reply from the socket, and
///   the following read misses it. That loss is never silent: an operation that completes
///   with a result after its task stopped waiting is reported to the loop's exception
///   handler (stderr by default), naming the remedy; in debug mode every completion of an
///   operation left behind is reported except an aborted one (operation_aborted). Buffers
///   the operation writes into must outlive it. (An I/O object destroyed by the unwinding
///   task aborts its operations itself, so a local socket or timer loses nothing.)
/// The object must outlive the await. Completion handlers run on the loop's thread through
/// its io_context, whatever executor the I/O object uses.
class use_await_t {
public:
    constexpr use_await_t() noexcept = default;
    /// Stores the error in `ec` instead of throwing.
    use_await_t operator[](boost::system::error_code& ec) const noexcept;
    /// Cancelling the awaiting task calls `obj.cancel()` (socket, timer, resolver, signal set,
    /// or anything with a cancel() member).
    template <class IoObject>
    use_await_t cancels(IoObject& obj) const noexcept;

    boost::system::error_code* ec_ = nullptr;
    detail::UseAwaitCancel cancel_;
};

/// The token. `af::use_await`, `af::use_await[ec]`, `af::use_await.cancels(obj)`.
constexpr use_await_t use_await{};

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/use_await_inl.hpp>

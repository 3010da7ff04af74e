// asyncfiber/timeouts.hpp - deadlines on a block of a task: af::timeout, af::timeout_at and
// their scope object af::Timeout (asyncio's timeouts.py, kept apart from the waiting half of
// tasks in wait.hpp as asyncio keeps it apart from tasks.py; wait.hpp includes it, and its
// wait_for is built on it).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/deadline.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/task.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

namespace asyncfiber {

namespace detail {
class TimeoutScope;
/// The reference count of a scope shared by Timeout handles (lib/compose/timeouts.cpp).
void intrusive_add_ref(TimeoutScope* s) noexcept;
void intrusive_release(TimeoutScope* s) noexcept;
}  // namespace detail

/// asyncio.Timeout, the scope object of timeout()/timeout_at(): given to a body that takes an
/// `af::Timeout&`. A cheap shared handle: a copy kept after the scope still answers when()
/// and expired(). Belongs to the thread of the loop that runs the scope's task.
class Timeout {
public:
    /// An empty handle (to assign a scope's to): its calls throw InvalidStateError.
    Timeout() noexcept = default;

    /// The deadline; Clock::time_point::max() when the scope never expires (asyncio's None).
    Clock::time_point when() const;
    /// Moves the deadline (asyncio's reschedule): a time already past expires the scope at
    /// the loop's next look at its timers, Clock::time_point::max() disables it. Throws
    /// RuntimeError once the scope has expired ("expiring" while its body still runs,
    /// "expired" after) or has finished, as asyncio; and from another thread while its loop
    /// runs.
    void reschedule(Clock::time_point when);
    /// Whether the deadline passed and the scope cancelled its body (asyncio's expired()),
    /// also after the scope has ended.
    bool expired() const;

private:
    friend struct detail::Access;
    /// Arms a scope in the calling task (timeout_at does).
    static Timeout enter(Clock::time_point when);
    detail::TimeoutScope& scope() const noexcept { return *scope_.get(); }
    detail::TimeoutScope& checked() const;
    detail::IntrusivePtr<detail::TimeoutScope> scope_;
};

/// asyncio.timeout_at: runs fn() in the calling task; if `when` passes first, fn's current
/// suspension point is cancelled and, once fn has unwound, the call throws TimeoutError
/// (with the CancelledError nested, as asyncio's `__cause__`). A cancellation that does not
/// come from this scope (Task::cancel, an outer scope) stays a CancelledError, so nested
/// scopes each report only their own expiry. Clock::time_point::max() disables the deadline.
template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn());

/// As above, with the scope object (`async with asyncio.timeout_at(when) as cm:`): fn is
/// called as fn(cm) with an af::Timeout& whose deadline it may read and move. Costs one
/// allocation (the shared scope) that the plain overload does not.
template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn(std::declval<Timeout&>()));

/// asyncio.timeout: timeout_at(now + d, fn). A duration <= 0 expires at the first suspension
/// point of fn; one beyond the clock's range (hours::max(), infinity) never expires; NaN throws
/// std::invalid_argument (as for every duration: detail/deadline.hpp). fn may take an
/// af::Timeout& (see timeout_at).
template <class Rep, class Period, class F>
auto timeout(std::chrono::duration<Rep, Period> d, F&& fn) -> decltype(fn()) {
    return timeout_at(detail::deadline_after(d), std::forward<F>(fn));
}
template <class Rep, class Period, class F>
auto timeout(std::chrono::duration<Rep, Period> d, F&& fn)
    -> decltype(fn(std::declval<Timeout&>())) {
    return timeout_at(detail::deadline_after(d), std::forward<F>(fn));
}

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/timeouts_inl.hpp>

// asyncfiber/timeouts.hpp - deadlines on a block of a task: af::timeout, af::timeout_at and
// their scope object af::Timeout (asyncio's timeouts.py, kept apart from the waiting half of
// tasks in wait.hpp as asyncio keeps it apart from tasks.py; wait.hpp includes it, and its
// wait_for is built on it).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/deadline.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/task.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

namespace asyncfiber {

namespace detail {

/// The state of one timeout()/timeout_at() scope (asyncio.Timeout): a timer that cancels the
/// current task at the deadline, and the bookkeeping that tells this scope's expiry apart from
/// any other cancellation (cancelling() at entry, uncancel() at exit).
class TimeoutScope {
public:
    /// Arms the scope in the calling task; Clock::time_point::max() never expires.
    explicit TimeoutScope(Clock::time_point when);
    TimeoutScope(const TimeoutScope&) = delete;
    TimeoutScope& operator=(const TimeoutScope&) = delete;
    /// Disarms the timer; takes this scope's cancellation back if it fired.
    ~TimeoutScope();

    /// Call in the handler of a CancelledError that left the scope's body: throws
    /// TimeoutError (nesting the CancelledError) when this scope's own expiry caused it,
    /// otherwise rethrows the CancelledError.
    [[noreturn]] void on_cancelled();
    /// Ends the scope (what the destructor does; idempotent): disarms the timer and takes
    /// this scope's cancellation back if it fired.
    void finish() noexcept;
    /// asyncio's Timeout.expired(): its deadline passed (the scope may still be unwinding).
    bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }
    Clock::time_point when() const noexcept { return when_; }
    /// Moves the deadline (af::Timeout::reschedule).
    void reschedule(Clock::time_point when);

private:
    struct Timer : TimerNode {
        TimeoutScope* scope = nullptr;
    };
    static void fire(TimerNode* n);

    /// asyncio's timeouts.py states (a scope is entered when it is made): entered, then
    /// exited; or entered, expiring (the deadline passed and the body was cancelled), then
    /// expired.
    enum class State : std::uint8_t { entered, expiring, expired, exited };
    bool ended() const noexcept { return state_ == State::expired || state_ == State::exited; }
    /// Leaves the scope: true when it was expiring (its cancellation is then to be taken back).
    bool end() noexcept;

    Timer timer_;
    TaskBase* task_;
    Clock::time_point when_;
    std::uint32_t cancelling_at_entry_;
    State state_ = State::entered;
};

template <class F>
auto run_scoped(TimeoutScope& scope, F& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const CancelledError&) {
        scope.on_cancelled();
    }
}

}  // namespace detail

/// asyncio.Timeout, the scope object of timeout()/timeout_at(): given to a body that takes an
/// `af::Timeout&`. A cheap shared handle: a copy kept after the scope still answers when()
/// and expired(). Belongs to the thread of the loop that runs the scope's task.
class Timeout {
public:
    /// An empty handle (to assign a scope's to): its calls throw InvalidStateError.
    Timeout() noexcept = default;

    /// The deadline; Clock::time_point::max() when the scope never expires (asyncio's None).
    Clock::time_point when() const { return checked().when(); }
    /// Moves the deadline (asyncio's reschedule): a time already past expires the scope at
    /// the loop's next look at its timers, Clock::time_point::max() disables it. Throws
    /// RuntimeError once the scope has expired ("expiring" while its body still runs,
    /// "expired" after) or has finished, as asyncio; and from another thread while its loop
    /// runs.
    void reschedule(Clock::time_point when) { checked().reschedule(when); }
    /// Whether the deadline passed and the scope cancelled its body (asyncio's expired()),
    /// also after the scope has ended.
    bool expired() const { return checked().expired(); }

private:
    friend struct detail::Access;
    /// Arms a scope in the calling task (timeout_at does).
    static Timeout enter(Clock::time_point when) {
        Timeout t;
        t.scope_ = std::make_shared<detail::TimeoutScope>(when);
        return t;
    }
    detail::TimeoutScope& scope() const noexcept { return *scope_; }
    detail::TimeoutScope& checked() const {
        if (!scope_) throw InvalidStateError("asyncfiber: use of an empty af::Timeout handle");
        return *scope_;
    }
    std::shared_ptr<detail::TimeoutScope> scope_;
};

namespace detail {
/// Ends a shared scope when its timeout_at() call ends, whoever keeps a copy of the handle.
struct TimeoutScopeEnd {
    TimeoutScope& scope;
    ~TimeoutScopeEnd() { scope.finish(); }
};
}  // namespace detail

/// asyncio.timeout_at: runs fn() in the calling task; if `when` passes first, fn's current
/// suspension point is cancelled and, once fn has unwound, the call throws TimeoutError
/// (with the CancelledError nested, as asyncio's `__cause__`). A cancellation that does not
/// come from this scope (Task::cancel, an outer scope) stays a CancelledError, so nested
/// scopes each report only their own expiry. Clock::time_point::max() disables the deadline.
template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn()) {
    detail::TimeoutScope scope(when);
    return detail::run_scoped(scope, fn);
}

/// As above, with the scope object (`async with asyncio.timeout_at(when) as cm:`): fn is
/// called as fn(cm) with an af::Timeout& whose deadline it may read and move. Costs one
/// allocation (the shared scope) that the plain overload does not.
template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn(std::declval<Timeout&>())) {
    Timeout cm = detail::Access::enter_timeout<Timeout>(when);
    detail::TimeoutScopeEnd end{detail::Access::scope(cm)};
    auto body = [&]() -> decltype(fn(cm)) { return fn(cm); };
    return detail::run_scoped(detail::Access::scope(cm), body);
}

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

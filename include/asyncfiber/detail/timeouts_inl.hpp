// asyncfiber/detail/timeouts_inl.hpp - the definitions behind asyncfiber/timeouts.hpp: the
// scope that timeout()/timeout_at() arm in the calling task (TimeoutScope), af::Timeout's
// members and timeout_at.
#pragma once

#include <asyncfiber/detail/atomic_count.hpp>
#include <asyncfiber/timeouts.hpp>

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

    friend void intrusive_add_ref(TimeoutScope* s) noexcept;
    friend void intrusive_release(TimeoutScope* s) noexcept;

    Timer timer_;
    TaskBase* task_;
    Clock::time_point when_;
    std::uint32_t cancelling_at_entry_;
    State state_ = State::entered;
    AtomicCount refs_;  // the Timeout handles' (a copy may end on another thread)
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

inline Clock::time_point Timeout::when() const { return checked().when(); }
inline void Timeout::reschedule(Clock::time_point when) { checked().reschedule(when); }
inline bool Timeout::expired() const { return checked().expired(); }
inline Timeout Timeout::enter(Clock::time_point when) {
    Timeout t;
    t.scope_ = detail::IntrusivePtr<detail::TimeoutScope>::adopt(new detail::TimeoutScope(when));
    return t;
}
inline detail::TimeoutScope& Timeout::checked() const {
    if (!scope_) throw InvalidStateError("asyncfiber: use of an empty af::Timeout handle");
    return *scope_.get();
}

namespace detail {
/// Ends a shared scope when its timeout_at() call ends, whoever keeps a copy of the handle.
struct TimeoutScopeEnd {
    TimeoutScope& scope;
    ~TimeoutScopeEnd() { scope.finish(); }
};
}  // namespace detail

template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn()) {
    detail::TimeoutScope scope(when);
    return detail::run_scoped(scope, fn);
}

template <class F>
auto timeout_at(Clock::time_point when, F&& fn) -> decltype(fn(std::declval<Timeout&>())) {
    Timeout cm = detail::Access::enter_timeout<Timeout>(when);
    detail::TimeoutScopeEnd end{detail::Access::scope(cm)};
    auto body = [&]() -> decltype(fn(cm)) { return fn(cm); };
    return detail::run_scoped(detail::Access::scope(cm), body);
}

}  // namespace asyncfiber

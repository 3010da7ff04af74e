// af::timeout / af::timeout_at scopes (asyncio.Timeout).
//
// A scope is a timer that cancels its task at the deadline. Whether a CancelledError that
// leaves the scope is "ours" is decided as asyncio does: at exit the scope takes its own
// request back (uncancel) and converts the error into TimeoutError only if no other request
// is left above the count seen at entry. That is what makes nested scopes report only their
// own expiry and keeps a real Task::cancel() a CancelledError.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/timeouts.hpp>

namespace asyncfiber {
namespace detail {

TimeoutScope::TimeoutScope(Clock::time_point when)
    : task_(current_task_checked("af::timeout")),
      when_(when),
      cancelling_at_entry_(task_->cancel_requests) {
    timer_.scope = this;
    timer_.fire = &TimeoutScope::fire;
    if (when != Clock::time_point::max()) add_timer(timer_, when);
}

TimeoutScope::~TimeoutScope() { finish(); }

void intrusive_add_ref(TimeoutScope* s) noexcept { s->refs_.add(); }

void intrusive_release(TimeoutScope* s) noexcept {
    if (s->refs_.drop()) delete s;
}

void TimeoutScope::fire(TimerNode* n) {
    TimeoutScope* s = static_cast<Timer*>(n)->scope;
    s->state_ = State::expiring;
    cancel_task(s->task_, std::string());
}

bool TimeoutScope::end() noexcept {
    const bool was_expiring = state_ == State::expiring;
    state_ = was_expiring ? State::expired : State::exited;
    remove_timer(timer_);
    return was_expiring;
}

void TimeoutScope::finish() noexcept {
    if (ended()) return;
    if (end()) uncancel_task(task_);
}

void TimeoutScope::reschedule(Clock::time_point when) {
    // asyncio's Timeout refuses any change once it left its active state.
    if (ended())
        throw RuntimeError(std::string("asyncfiber: Timeout::reschedule: cannot change state of ") +
                           (state_ == State::expired ? "expired" : "finished") +
                           " Timeout (its scope has ended)");
    if (state_ == State::expiring)
        throw RuntimeError(
            "asyncfiber: Timeout::reschedule: cannot change state of expiring Timeout "
            "(its deadline passed and its body was cancelled)");
    LoopImpl* L = task_->loop;
    check_loop_thread(L, "af::Timeout::reschedule", LoopUse::act);
    // The scope's own loop's timers, whichever loop (if any) this thread runs.
    if (timer_.scheduled()) L->timers.remove(&timer_);
    when_ = when;
    if (when != Clock::time_point::max()) L->timers.push(&timer_, when);
}

void TimeoutScope::on_cancelled() {
    bool ours = false;
    if (!ended() && end())
        ours = static_cast<std::uint32_t>(uncancel_task(task_)) <= cancelling_at_entry_;
    if (ours) std::throw_with_nested(TimeoutError());
    throw;
}

}  // namespace detail
}  // namespace asyncfiber

#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/sync.hpp>

namespace asyncfiber {

// A waiter never touches the event once woken, so only those still waiting are orphaned.
Event::~Event() { detail::orphan_waiters(waiters_); }

void Event::set() {
    affinity_.check("Event::set");
    if (set_) return;
    set_ = true;
    detail::notify_all(waiters_);
}

void Event::wait() {
    detail::TaskBase* self = detail::current_task_checked("Event::wait");
    affinity_.check(self->loop, "Event::wait");
    detail::cooperate(self);
    if (set_) return;
    detail::Waiter w(self);
    waiters_.push_back(&w);
    detail::park(w, "Event");
}

}  // namespace asyncfiber

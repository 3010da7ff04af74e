// af::Lock (asyncio.Lock) with direct hand-off to the first waiter.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/sync.hpp>

namespace asyncfiber {

Lock::~Lock() {
    detail::orphan_waiters(waiters_);
    detail::orphan_waiters(leaving_);
}

void Lock::lock() {
    detail::TaskBase* self = detail::current_task_checked("Lock::lock");
    affinity_.check(self->loop, "Lock");
    detail::cooperate(self);
    if (!locked_ && (waiters_.empty() || only_cancelled_waiters())) {
        locked_ = true;  // uncontended: not a suspension point (unless the budget is spent)
        return;
    }
    detail::Waiter w(self, &leaving_);
    w.keep_linked_on_cancel = true;  // see hand_on()
    waiters_.push_back(&w);
    try {
        detail::park(w, "Lock");
    } catch (const CancelledError&) {
        // Handed the lock just before the cancellation landed: pass it on, or the lock would
        // stay held by a task that never got it. Not handed it, but the lock is free (an
        // unlock found this cancelled waiter first): pass the turn on likewise.
        if (w.notified || !locked_) hand_on();
        throw;
    }
    // unlock() left locked_ set: the lock is ours.
}

bool Lock::try_lock() {
    affinity_.check("Lock");
    if (locked_ || !(waiters_.empty() || only_cancelled_waiters())) return false;
    locked_ = true;
    return true;
}

void Lock::unlock() {
    affinity_.check("Lock");
    if (!locked_) throw RuntimeError("asyncfiber: Lock::unlock of a lock that is not acquired");
    hand_on();
}

// As asyncio.Lock's _wake_up_first(), only the first waiter is looked at: one whose task was
// cancelled (and has not run yet) takes nothing, the lock becomes free, and that task passes
// the turn on when it runs. The fairness asyncio documents is kept either way; this keeps
// the order of events identical to asyncio's (checked by the differential test).
void Lock::hand_on() noexcept {
    detail::ListNode* n = waiters_.first();
    if (n != waiters_.end() && !static_cast<detail::Waiter*>(n)->cancelled) {
        detail::notify(*static_cast<detail::Waiter*>(n));
        locked_ = true;
    } else {
        locked_ = false;
    }
}

bool Lock::only_cancelled_waiters() const noexcept {
    for (const detail::ListNode* n = waiters_.first(); n != waiters_.end(); n = n->next)
        if (!static_cast<const detail::Waiter*>(n)->cancelled) return false;
    return true;
}

}  // namespace asyncfiber

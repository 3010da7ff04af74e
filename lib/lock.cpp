// af::Lock (asyncio.Lock) with direct hand-off to the first waiter.
#include "loop_impl.hpp"

#include <asyncfiber/detail/wait.hpp>
#include <asyncfiber/sync.hpp>

namespace asyncfiber {

Lock::~Lock() {
    waiters_.clear();
}

void Lock::lock() {
    detail::TaskBase* self = detail::current_task_checked("Lock::lock");
    affinity_.check(self->loop, "Lock");
    if (!locked_ && waiters_.empty()) {
        locked_ = true;  // uncontended: not a suspension point, as in asyncio
        return;
    }
    detail::Waiter w(self);
    waiters_.push_back(&w);
    try {
        detail::park(w, "Lock");
    } catch (const CancelledError&) {
        // Handed the lock just before the cancellation landed: pass it on, or the lock would
        // stay held by a task that never got it.
        if (w.notified) hand_on();
        throw;
    }
    // unlock() left locked_ set: the lock is ours.
}

bool Lock::try_lock() {
    affinity_.check("Lock");
    if (locked_ || !waiters_.empty()) return false;
    locked_ = true;
    return true;
}

void Lock::unlock() {
    affinity_.check("Lock");
    if (!locked_) throw RuntimeError("asyncfiber: Lock::unlock of a lock that is not acquired");
    hand_on();
}

void Lock::hand_on() noexcept {
    if (!detail::notify_first(waiters_)) locked_ = false;
}

}  // namespace asyncfiber

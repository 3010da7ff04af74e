// af::Condition (asyncio.Condition).
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/sync.hpp>

namespace asyncfiber {

Condition::~Condition() {
    detail::orphan_waiters(waiters_);
    detail::orphan_waiters(leaving_);
}

void Condition::wait() {
    detail::TaskBase* self = detail::current_task_checked("Condition::wait");
    affinity_.check(self->loop, "Condition");
    if (!lock_->locked())
        throw RuntimeError("asyncfiber: Condition::wait without holding the condition's lock");
    Lock* const lock = lock_;  // the condition may be destroyed while this task re-locks
    lock->unlock();
    bool cancelled = false;
    CancelledError error;
    // Stays in leaving_ (once woken) until the lock is back, so that a condition destroyed
    // meanwhile marks it orphaned instead of being touched below.
    detail::Waiter w(self, &leaving_);
    waiters_.push_back(&w);
    try {
        detail::park(w, "Condition");
    } catch (const CancelledError& e) {
        cancelled = true;
        error = e;
    } catch (const RuntimeError&) {
        // Destroyed while waiting: a lock given to it is taken again below, as after any
        // wait; its own lock went with it.
        if (!w.orphaned || lock == &own_) throw;
    }
    // The lock must be held again whatever happened; cancellations meanwhile are remembered
    // and the last one is thrown once the lock is back.
    for (;;) {
        try {
            lock->lock();
            break;
        } catch (const CancelledError& e) {
            cancelled = true;
            error = e;
        }
    }
    if (w.orphaned) {
        if (cancelled) throw error;
        detail::throw_primitive_destroyed("Condition");
    }
    if (cancelled) {
        // The cancellation may have come after this task was notified, while it waited for
        // the notification or for the lock again: a notification it cannot act on goes to
        // the next waiter (Python 3.13, gh-112202). A spurious wake-up is allowed, a lost
        // one is not.
        wake(1);
        throw error;
    }
}

void Condition::wait(std::unique_lock<Lock>& lk) {
    if (lk.mutex() != lock_)
        throw RuntimeError(
            "asyncfiber: Condition::wait(unique_lock) with a lock that is not the condition's "
            "(build the condition on that lock: af::Condition cond(lock))");
    if (!lk.owns_lock())
        throw RuntimeError(
            "asyncfiber: Condition::wait(unique_lock) with a unique_lock that does not own the "
            "lock");
    // wait() holds the lock again whenever it returns or throws, so `lk` keeps owning it.
    wait();
}

void Condition::notify(std::size_t n) {
    affinity_.check("Condition");
    if (!lock_->locked())
        throw RuntimeError("asyncfiber: Condition::notify without holding the condition's lock");
    wake(n);
}

void Condition::notify_all() {
    affinity_.check("Condition");
    if (!lock_->locked())
        throw RuntimeError(
            "asyncfiber: Condition::notify_all without holding the condition's lock");
    wake(static_cast<std::size_t>(-1));
}

void Condition::wake(std::size_t n) noexcept {
    while (n > 0 && detail::notify_first(waiters_)) --n;
}

}  // namespace asyncfiber

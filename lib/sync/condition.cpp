// af::Condition (asyncio.Condition).
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/wait.hpp>
#include <asyncfiber/sync.hpp>

namespace asyncfiber {

Condition::~Condition() {
    waiters_.clear();
}

void Condition::wait() {
    detail::TaskBase* self = detail::current_task_checked("Condition::wait");
    affinity_.check(self->loop, "Condition");
    if (!lock_->locked())
        throw RuntimeError("asyncfiber: Condition::wait without holding the condition's lock");
    lock_->unlock();
    bool cancelled = false;
    CancelledError error;
    bool lost_notification = false;
    {
        detail::Waiter w(self);
        waiters_.push_back(&w);
        try {
            detail::park(w, "Condition");
        } catch (const CancelledError& e) {
            cancelled = true;
            error = e;
            lost_notification = w.notified;
        }
    }
    // The lock must be held again whatever happened; cancellations meanwhile are remembered
    // and the last one is thrown once the lock is back.
    for (;;) {
        try {
            lock_->lock();
            break;
        } catch (const CancelledError& e) {
            cancelled = true;
            error = e;
        }
    }
    if (cancelled) {
        // A notification this task received but cannot act on goes to the next waiter
        // (Python 3.13, gh-112202); a spurious wake-up is allowed, a lost one is not.
        if (lost_notification) wake(1);
        throw error;
    }
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
        throw RuntimeError("asyncfiber: Condition::notify_all without holding the condition's lock");
    wake(static_cast<std::size_t>(-1));
}

void Condition::wake(std::size_t n) noexcept {
    while (n > 0 && detail::notify_first(waiters_)) --n;
}

}  // namespace asyncfiber

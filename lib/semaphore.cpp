// af::Semaphore and af::BoundedSemaphore (asyncio's), with direct hand-off of a released unit
// to the first waiter.
#include "loop_impl.hpp"

#include <asyncfiber/detail/wait.hpp>
#include <asyncfiber/sync.hpp>

#include <limits>
#include <stdexcept>

namespace asyncfiber {

Semaphore::Semaphore(int value) : value_(value) {
    if (value < 0) throw std::invalid_argument("asyncfiber: Semaphore initial value must be >= 0");
}

Semaphore::~Semaphore() {
    waiters_.clear();
}

void Semaphore::acquire() {
    detail::TaskBase* self = detail::current_task_checked("Semaphore::acquire");
    affinity_.check(self->loop, "Semaphore");
    if (value_ > 0 && waiters_.empty()) {
        --value_;
        return;
    }
    detail::Waiter w(self);
    waiters_.push_back(&w);
    try {
        detail::park(w, "Semaphore");
    } catch (const CancelledError&) {
        if (w.notified) {
            --handed_;
            release_unit();  // the unit we were handed goes to the next one
        }
        throw;
    }
    --handed_;
}

bool Semaphore::try_acquire() {
    affinity_.check("Semaphore");
    if (value_ == 0 || !waiters_.empty()) return false;
    --value_;
    return true;
}

void Semaphore::release() {
    affinity_.check("Semaphore");
    // Bounded by the units in hand-over too, so that a handed unit that comes back (its
    // waiter cancelled) always fits in value_.
    if (waiters_.empty() && units() >= std::numeric_limits<int>::max())
        throw std::overflow_error("asyncfiber: Semaphore::release() beyond INT_MAX free units");
    release_unit();
}

void Semaphore::release_unit() noexcept {
    if (detail::notify_first(waiters_))
        ++handed_;
    else
        ++value_;
}

void BoundedSemaphore::release() {
    affinity_.check("BoundedSemaphore");
    // While tasks wait no unit is free, so only a release with no waiter can overflow; a unit
    // handed to a waiter that has not run yet still counts (asyncio's value includes it).
    if (waiters_.empty() && units() >= bound_)
        throw InvalidStateError("asyncfiber: BoundedSemaphore released too many times");
    release_unit();
}

}  // namespace asyncfiber

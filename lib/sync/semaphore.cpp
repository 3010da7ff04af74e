// af::Semaphore and af::BoundedSemaphore (asyncio's), with direct hand-off of a released unit
// to the first waiter.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/sync.hpp>

#include <limits>
#include <stdexcept>

namespace asyncfiber {

Semaphore::Semaphore(int value) : value_(value) {
    if (value < 0) throw std::invalid_argument("asyncfiber: Semaphore initial value must be >= 0");
}

Semaphore::~Semaphore() {
    detail::orphan_waiters(waiters_);
    detail::orphan_waiters(leaving_);
}

void Semaphore::acquire() {
    detail::TaskBase* self = detail::current_task_checked("Semaphore::acquire");
    affinity_.check(self->loop, "Semaphore");
    detail::cooperate(self);
    if (!locked()) {
        --value_;
        return;
    }
    detail::Waiter w(self, &leaving_);
    waiters_.push_back(&w);
    try {
        detail::park(w, "Semaphore");
    } catch (const CancelledError&) {
        if (w.notified) {  // the unit we were handed goes to the next one
            --handed_;
            release_unit();
            serve_queued();
        }
        throw;
    }
    --handed_;
    serve_queued();
}

void Semaphore::serve_queued() noexcept {
    // Tasks that came while a waiter was woken but had not run queued behind it (FIFO); the
    // units released meanwhile are theirs (asyncio's acquire() ends the same way).
    while (value_ > 0 && hand_unit()) --value_;
}

bool Semaphore::try_acquire() {
    affinity_.check("Semaphore");
    if (locked()) return false;
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

bool Semaphore::hand_unit() noexcept {
    if (!detail::notify_first(waiters_)) return false;
    ++handed_;
    return true;
}

void Semaphore::release_unit() noexcept {
    if (!hand_unit()) ++value_;
}

void BoundedSemaphore::release() {
    affinity_.check("BoundedSemaphore");
    // A release with a waiter hands its unit over, so only one with no waiter can overflow;
    // a unit handed to a waiter that has not run yet still counts (asyncio's value includes it).
    if (waiters_.empty() && units() >= bound_)
        throw std::invalid_argument("asyncfiber: BoundedSemaphore released too many times");
    release_unit();
}

}  // namespace asyncfiber

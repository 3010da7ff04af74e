// af::Barrier (asyncio.Barrier, Python 3.11): filling -> draining -> filling rounds, with
// resetting and broken states.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/sync.hpp>

#include <stdexcept>

namespace asyncfiber {

Barrier::Barrier(std::ptrdiff_t parties) : parties_(static_cast<std::size_t>(parties)) {
    if (parties <= 0) throw std::invalid_argument("asyncfiber: Barrier needs at least one party");
}

Barrier::~Barrier() {
    detail::orphan_waiters(arriving_);
    detail::orphan_waiters(waiting_);
    detail::orphan_waiters(leaving_);
}

std::size_t Barrier::wait() {
    detail::TaskBase* self = detail::current_task_checked("Barrier::wait");
    affinity_.check(self->loop, "Barrier");
    // A previous round still drains (or resets): wait for the next one.
    while (state_ == State::draining || state_ == State::resetting) {
        detail::Waiter w(self, &leaving_);
        arriving_.push_back(&w);
        detail::park(w, "Barrier (next round)");
    }
    if (state_ == State::broken) throw BrokenBarrierError();
    std::size_t index = count_++;
    if (index + 1 == parties_) {
        state_ = State::draining;
        detail::notify_all(waiting_);
        --count_;
        leave();
        return index;
    }
    {
        detail::Waiter w(self, &leaving_);
        waiting_.push_back(&w);
        try {
            while (state_ == State::filling) {
                if (w.notified) {  // woken, but the round is still filling: wait again
                    w.unlink();
                    w.notified = false;
                    waiting_.push_back(&w);
                }
                detail::park(w, "Barrier");
            }
        } catch (const CancelledError&) {
            --count_;
            leave();
            throw;
        }
    }
    --count_;
    State seen = state_;
    leave();
    if (seen == State::broken || seen == State::resetting) throw BrokenBarrierError();
    return index;
}

void Barrier::leave() noexcept {
    if (count_ == 0) {
        if (state_ == State::resetting || state_ == State::draining) state_ = State::filling;
        detail::notify_all(arriving_);
    }
}

void Barrier::reset() {
    affinity_.check("Barrier");
    if (count_ > 0)
        state_ = State::resetting;
    else
        state_ = State::filling;
    detail::notify_all(waiting_);
    detail::notify_all(arriving_);
}

void Barrier::abort() {
    affinity_.check("Barrier");
    state_ = State::broken;
    detail::notify_all(waiting_);
    detail::notify_all(arriving_);
}

}  // namespace asyncfiber

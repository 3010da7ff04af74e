// asyncfiber/sync.hpp - synchronisation primitives for tasks (asyncio's locks module).
//
// Every blocking call is a suspension point only when it has to wait: it is cancellable and
// works under af::timeout()/af::wait_for(). Waiters are served first come, first served, and
// a waiter cancelled while queued (even one that had just been handed the resource) leaves
// the primitive consistent: what it was given is passed on to the next waiter.
//
// None of them is thread-safe: like asyncio's, they belong to one loop. Using one from
// another thread's loop throws RuntimeError instead of corrupting it.
//
// Destroying one while tasks still wait on it is a bug in the caller, but never a dangling
// pointer or a silent hang: each waiting task (and each one woken but not yet out of the
// primitive's code) wakes up with RuntimeError ("... the primitive was destroyed while this
// task waited on it") without touching the destroyed object.
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/detail/loop_affinity.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/task.hpp>

#include <cstddef>
#include <mutex>

namespace asyncfiber {

/// asyncio.Event: wait() suspends until set() is called; set() wakes every waiter (FIFO).
class Event {
public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event();

    bool is_set() const noexcept { return set_; }
    void set();
    void clear() noexcept { set_ = false; }
    /// Returns at once if set; otherwise suspends until set(). Cancellable.
    void wait();

private:
    detail::LoopAffinity affinity_;
    detail::List waiters_;
    bool set_ = false;
};

/// asyncio.Lock, usable with std::lock_guard / std::unique_lock (BasicLockable + try_lock).
/// Not reentrant and not owned: like asyncio's, any task may unlock it. unlock() of a lock
/// that is not locked throws RuntimeError. On unlock the lock passes straight to the first
/// waiter, so a task that calls lock() meanwhile queues behind it.
class Lock {
public:
    Lock() = default;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock();

    /// Takes the lock, suspending (cancellably) while another task holds it.
    void lock();
    /// Takes the lock if it is free and nobody waits; never suspends.
    bool try_lock();
    void unlock();
    bool locked() const noexcept { return locked_; }

private:
    friend class Condition;
    void hand_on() noexcept;
    bool only_cancelled_waiters() const noexcept;

    detail::LoopAffinity affinity_;
    detail::List waiters_;
    detail::List leaving_;  // woken waiters whose tasks have not left lock() yet
    bool locked_ = false;
};

/// asyncio.Condition: a Lock (its own, or one given) plus a list of waiting tasks. wait(),
/// notify() and notify_all() throw RuntimeError unless the lock is held.
class Condition {
public:
    Condition() : lock_(&own_) {}
    /// Shares `lock` (which must outlive the condition).
    explicit Condition(Lock& lock) : lock_(&lock) {}
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;
    ~Condition();

    void lock() { lock_->lock(); }
    bool try_lock() { return lock_->try_lock(); }
    void unlock() { lock_->unlock(); }
    bool locked() const noexcept { return lock_->locked(); }

    /// Releases the lock, suspends until notified, takes the lock again (even when
    /// cancelled: the lock is always held when wait() returns or throws; also when the
    /// condition is destroyed meanwhile, if the lock was given to the constructor).
    void wait();
    /// std::condition_variable style: waits until pred() is true.
    template <class Pred>
    void wait(Pred pred) {
        while (!pred()) wait();
    }
    /// std::condition_variable_any style, for code that holds the lock through a
    /// std::unique_lock: `lk` must own the lock this condition was built on (RuntimeError
    /// otherwise, also for a lock not held). As wait(), the lock is held again when it returns
    /// or throws (CancelledError included), and `lk` still owns it.
    void wait(std::unique_lock<Lock>& lk);
    /// As wait(lk), until pred() is true (std::condition_variable_any::wait(lk, pred)).
    template <class Pred>
    void wait(std::unique_lock<Lock>& lk, Pred pred) {
        while (!pred()) wait(lk);
    }
    /// asyncio's wait_for(predicate): waits until pred() is true and returns its value.
    template <class Pred>
    auto wait_for(Pred pred) -> decltype(pred());
    /// Wakes up to n waiting tasks (FIFO).
    void notify(std::size_t n = 1);
    void notify_all();

private:
    void wake(std::size_t n) noexcept;

    detail::LoopAffinity affinity_;
    Lock own_;
    Lock* lock_;
    detail::List waiters_;
    detail::List leaving_;  // woken waiters whose tasks have not left wait() yet
};

/// asyncio.Semaphore: a counter; acquire() suspends while it is zero. release() hands a unit
/// straight to the first waiter, if any. Waiters are served in order: until a waiter that was
/// handed a unit has run, the semaphore stays locked(), so a task that releases and at once
/// acquires again queues behind it instead of taking the unit back (as asyncio's does).
class Semaphore {
public:
    /// Throws std::invalid_argument for a negative value.
    explicit Semaphore(int value = 1);
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;
    ~Semaphore();

    void acquire();
    /// Takes a unit if acquire() would not wait (see locked()); never suspends.
    bool try_acquire();
    /// Throws std::overflow_error (and changes nothing) when the free units, counting those
    /// handed to waiters that have not run yet, are already INT_MAX.
    void release();
    /// True if acquire() would have to wait: no free unit, or tasks waiting or woken and
    /// not yet run (asyncio: any waiter not cancelled).
    bool locked() const noexcept { return value_ == 0 || !waiters_.empty() || handed_ > 0; }
    /// The free units.
    int value() const noexcept { return value_; }

protected:
    /// Hands a unit to the first waiter; false if nobody waits.
    bool hand_unit() noexcept;
    void release_unit() noexcept;
    void serve_queued() noexcept;
    /// Free units plus units handed to waiters that have not run yet: what a cancellation of
    /// those waiters would bring the value back to (asyncio counts them in its value).
    long long units() const noexcept { return static_cast<long long>(value_) + handed_; }
    detail::LoopAffinity affinity_;
    detail::List waiters_;
    detail::List leaving_;  // woken waiters whose tasks have not left acquire() yet
    int value_;
    int handed_ = 0;  // waiters handed a unit that have not run yet
};

/// asyncio.BoundedSemaphore: release() beyond the initial value throws std::invalid_argument
/// (asyncio raises ValueError).
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(int value = 1) : Semaphore(value), bound_(value) {}
    void release();

private:
    int bound_;
};

/// Raised by Barrier::wait() when the barrier is broken (abort()) or reset() while waiting
/// (asyncio.BrokenBarrierError, a RuntimeError there too).
class BrokenBarrierError : public RuntimeError {
public:
    BrokenBarrierError() : RuntimeError("asyncfiber: the barrier is broken") {}
    using RuntimeError::RuntimeError;
};

/// asyncio.Barrier (3.11): `parties` tasks meet; wait() returns each one's arrival index
/// (0 .. parties-1). Tasks arriving while the previous round drains wait for the next round.
/// A task cancelled while it waits leaves the round (the count goes down by one).
class Barrier {
public:
    /// Throws std::invalid_argument unless parties > 0. Signed, so that a negative count is
    /// refused instead of wrapping round to a huge one (asyncio raises ValueError for both).
    explicit Barrier(std::ptrdiff_t parties);
    Barrier(const Barrier&) = delete;
    Barrier& operator=(const Barrier&) = delete;
    ~Barrier();

    std::size_t wait();
    /// Returns the barrier to its empty state; tasks waiting get BrokenBarrierError. Does not
    /// suspend (asyncio's reset() is a coroutine only because it takes the condition's lock).
    void reset();
    /// Breaks the barrier: current and future wait() calls throw BrokenBarrierError until
    /// reset().
    void abort();

    std::size_t parties() const noexcept { return parties_; }
    /// Tasks waiting in the current filling round.
    std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }
    bool broken() const noexcept { return state_ == State::broken; }

private:
    enum class State { filling, draining, resetting, broken };
    void leave() noexcept;

    detail::LoopAffinity affinity_;
    detail::List arriving_;  // waiting for a draining/resetting round to end
    detail::List waiting_;   // in the filling round
    detail::List leaving_;   // woken waiters whose tasks have not left wait() yet
    std::size_t parties_;
    std::size_t count_ = 0;
    State state_ = State::filling;
};

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/sync_inl.hpp>

// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier, mirroring CPython's
// Lib/test/test_asyncio/test_locks.py (each test names the CPython test it follows).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

// ======================= Lock =======================

// test_locks.py LockTests.test_lock / test_lock_by_with_statement (std::lock_guard)
TEST(Lock, LockGuard) {
    af::run([] {
        af::Lock lock;
        EXPECT_FALSE(lock.locked());
        {
            std::lock_guard<af::Lock> g(lock);
            EXPECT_TRUE(lock.locked());
        }
        EXPECT_FALSE(lock.locked());
        {
            std::unique_lock<af::Lock> u(lock, std::try_to_lock);
            EXPECT_TRUE(u.owns_lock());
        }
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_acquire (FIFO hand-over among waiters)
TEST(Lock, AcquireFifo) {
    af::run([] {
        af::Lock lock;
        std::vector<int> order;
        lock.lock();
        std::vector<af::Task<void>> ts;
        for (int i = 1; i <= 3; ++i)
            ts.push_back(af::async([&, i] {
                lock.lock();
                order.push_back(i);
                lock.unlock();
            }));
        af::sleep(0s);
        EXPECT_TRUE(order.empty());
        lock.unlock();
        af::gather(ts);
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_acquire_cancel
TEST(Lock, AcquireCancel) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        auto t = af::async([&] { lock.lock(); });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(lock.locked());  // still ours
        lock.unlock();
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_cancel_race (a waiter cancelled while queued is skipped)
TEST(Lock, CancelRace) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        std::vector<int> got;
        auto ta = af::async([&] { lock.lock(); got.push_back(1); lock.unlock(); });
        auto tb = af::async([&] { lock.lock(); got.push_back(2); lock.unlock(); });
        auto tc = af::async([&] { lock.lock(); got.push_back(3); lock.unlock(); });
        af::sleep(0s);
        tb.cancel();
        lock.unlock();
        af::wait({ta, tb, tc});
        EXPECT_EQ(got, (std::vector<int>{1, 3}));
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_cancel_release_race (cancelled right after being handed the
// lock: it must pass it on, not keep it)
TEST(Lock, CancelReleaseRace) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        bool b_got = false;
        auto ta = af::async([&] { lock.lock(); lock.unlock(); });
        auto tb = af::async([&] {
            lock.lock();
            b_got = true;
            lock.unlock();
        });
        af::sleep(0s);
        lock.unlock();  // hands it to ta ...
        ta.cancel();    // ... which is cancelled before it runs
        af::wait({ta, tb});
        EXPECT_TRUE(ta.cancelled());
        EXPECT_TRUE(b_got);
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_finished_waiter_cancelled
TEST(Lock, FinishedWaiterCancelled) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        auto ta = af::async([&] { lock.lock(); });
        af::sleep(0s);
        lock.unlock();
        ta.cancel();
        EXPECT_THROW(af::await(ta), af::CancelledError);
        EXPECT_FALSE(lock.locked());
        EXPECT_TRUE(lock.try_lock());
        lock.unlock();
    });
}

// test_locks.py LockTests.test_release_not_acquired
TEST(Lock, ReleaseNotAcquired) {
    af::run([] {
        af::Lock lock;
        EXPECT_THROW(lock.unlock(), af::RuntimeError);
    });
}

// test_locks.py LockTests.test_release_no_waiters
TEST(Lock, ReleaseNoWaiters) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        EXPECT_TRUE(lock.locked());
        lock.unlock();
        EXPECT_FALSE(lock.locked());
    });
}

// test_locks.py LockTests.test_lock_fairness-like: try_lock does not jump the queue
TEST(Lock, TryLockDoesNotBarge) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        auto t = af::async([&] { lock.lock(); lock.unlock(); });
        af::sleep(0s);
        lock.unlock();  // handed to t
        EXPECT_FALSE(lock.try_lock());
        af::await(t);
        EXPECT_TRUE(lock.try_lock());
        lock.unlock();
    });
}

// Lock acquisition works under af::timeout (asyncio: wait_for(lock.acquire(), ...)).
TEST(Lock, AcquireUnderTimeout) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        EXPECT_THROW(af::timeout(5ms, [&] { lock.lock(); }), af::TimeoutError);
        lock.unlock();
        EXPECT_FALSE(lock.locked());
    });
}

// A primitive bound to one loop refuses another thread's loop.
TEST(Lock, OtherLoopThrows) {
    af::Lock lock;
    af::run([&] {
        lock.lock();
        lock.unlock();
    });
    bool threw = false;
    std::thread th([&] {
        af::run([&] {
            try {
                lock.lock();
            } catch (const af::RuntimeError&) {
                threw = true;
            }
        });
    });
    th.join();
    EXPECT_TRUE(threw);
}

// Outside a task: a clear error.
TEST(Lock, OutsideTask) {
    af::Lock lock;
    EXPECT_THROW(lock.lock(), af::RuntimeError);
}

// ======================= Event =======================

// test_locks.py EventTests.test_wait
TEST(Event, Wait) {
    af::run([] {
        af::Event ev;
        std::vector<int> order;
        auto a = af::async([&] { ev.wait(); order.push_back(1); });
        auto b = af::async([&] { ev.wait(); order.push_back(2); });
        af::sleep(0s);
        EXPECT_TRUE(order.empty());
        ev.set();
        af::gather(a, b);
        EXPECT_EQ(order, (std::vector<int>{1, 2}));
    });
}

// test_locks.py EventTests.test_wait_on_set
TEST(Event, WaitOnSet) {
    af::run([] {
        af::Event ev;
        ev.set();
        ev.wait();
        EXPECT_TRUE(ev.is_set());
    });
}

// test_locks.py EventTests.test_wait_cancel
TEST(Event, WaitCancel) {
    af::run([] {
        af::Event ev;
        auto t = af::async([&] { ev.wait(); });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        ev.set();  // no dangling waiter
    });
}

// test_locks.py EventTests.test_clear
TEST(Event, Clear) {
    af::run([] {
        af::Event ev;
        EXPECT_FALSE(ev.is_set());
        ev.set();
        EXPECT_TRUE(ev.is_set());
        ev.clear();
        EXPECT_FALSE(ev.is_set());
    });
}

// test_locks.py EventTests.test_clear_with_waiters (set then clear: waiters still wake)
TEST(Event, ClearWithWaiters) {
    af::run([] {
        af::Event ev;
        bool woke = false;
        auto t = af::async([&] { ev.wait(); woke = true; });
        af::sleep(0s);
        ev.set();
        ev.clear();
        af::await(t);
        EXPECT_TRUE(woke);
        EXPECT_FALSE(ev.is_set());
    });
}

// Event::wait under wait_for.
TEST(Event, WaitForTimeout) {
    af::run([] {
        af::Event ev;
        EXPECT_THROW(af::wait_for([&] { ev.wait(); }, 5ms), af::TimeoutError);
    });
}

// ======================= Condition =======================

// test_locks.py ConditionTests.test_wait
TEST(Condition, Wait) {
    af::run([] {
        af::Condition cond;
        std::vector<int> got;
        auto waiter = [&](int i) {
            std::lock_guard<af::Condition> g(cond);
            cond.wait();
            got.push_back(i);
        };
        auto a = af::async(waiter, 1), b = af::async(waiter, 2), c = af::async(waiter, 3);
        af::sleep(0s);
        EXPECT_TRUE(got.empty());
        EXPECT_FALSE(cond.locked());
        cond.lock();
        cond.notify();
        cond.unlock();
        af::sleep(0s);
        EXPECT_EQ(got, std::vector<int>{1});
        cond.lock();
        cond.notify(2);
        cond.unlock();
        af::gather(a, b, c);
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    });
}

// test_locks.py ConditionTests.test_wait_cancel (the lock is held again after cancellation)
TEST(Condition, WaitCancel) {
    af::run([] {
        af::Condition cond;
        bool held_after = false;
        auto t = af::async([&] {
            cond.lock();
            try {
                cond.wait();
            } catch (const af::CancelledError&) {
                held_after = cond.locked();
                cond.unlock();
                throw;
            }
        });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(held_after);
        EXPECT_FALSE(cond.locked());
    });
}

// test_locks.py ConditionTests.test_wait_cancel_contested (cancelled while re-acquiring)
TEST(Condition, WaitCancelContested) {
    af::run([] {
        af::Condition cond;
        bool held_after = false;
        auto t = af::async([&] {
            cond.lock();
            try {
                cond.wait();
            } catch (const af::CancelledError&) {
                held_after = cond.locked();
                cond.unlock();
                throw;
            }
        });
        af::sleep(0s);
        cond.lock();
        cond.notify();      // t now waits for the lock we hold
        af::sleep(0s);
        t.cancel();         // cancelled while waiting to re-acquire
        af::sleep(0s);
        EXPECT_FALSE(t.done());  // still needs the lock
        cond.unlock();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(held_after);
        EXPECT_FALSE(cond.locked());
    });
}

// test_locks.py ConditionTests.test_wait_cancel_after_notify / test_cancelled_wakeup (a
// notification to a task cancelled before it ran goes to the next waiter)
TEST(Condition, WaitCancelAfterNotify) {
    af::run([] {
        af::Condition cond;
        int woken = 0;
        auto waiter = [&] {
            std::lock_guard<af::Condition> g(cond);
            cond.wait();
            ++woken;
        };
        auto a = af::async(waiter), b = af::async(waiter);
        af::sleep(0s);
        cond.lock();
        cond.notify(1);  // to a
        a.cancel();      // a cannot use it: b must get it
        cond.unlock();
        af::sleep(1ms);
        EXPECT_TRUE(a.cancelled());
        EXPECT_EQ(woken, 1);
        EXPECT_TRUE(b.done());
    });
}

// test_locks.py ConditionTests.test_wait_unacquired
TEST(Condition, WaitUnacquired) {
    af::run([] {
        af::Condition cond;
        EXPECT_THROW(cond.wait(), af::RuntimeError);
    });
}

// test_locks.py ConditionTests.test_wait_for
TEST(Condition, WaitForPredicate) {
    af::run([] {
        af::Condition cond;
        int presult = 0;
        int calls = 0;
        auto t = af::async([&] {
            std::lock_guard<af::Condition> g(cond);
            return cond.wait_for([&] {
                ++calls;
                return presult;
            });
        });
        af::sleep(0s);
        cond.lock();
        cond.notify();
        cond.unlock();
        af::sleep(0s);
        EXPECT_FALSE(t.done());
        presult = 5;
        cond.lock();
        cond.notify();
        cond.unlock();
        EXPECT_EQ(af::await(t), 5);
        EXPECT_EQ(calls, 3);
    });
}

// test_locks.py ConditionTests.test_wait_for_unacquired
TEST(Condition, WaitForUnacquired) {
    af::run([] {
        af::Condition cond;
        EXPECT_TRUE(cond.wait_for([] { return true; }));  // true at once: no wait, no check
        EXPECT_THROW(cond.wait_for([] { return false; }), af::RuntimeError);
    });
}

// test_locks.py ConditionTests.test_notify_all
TEST(Condition, NotifyAll) {
    af::run([] {
        af::Condition cond;
        std::vector<int> got;
        std::vector<af::Task<void>> ts;
        for (int i = 1; i <= 3; ++i)
            ts.push_back(af::async([&, i] {
                std::lock_guard<af::Condition> g(cond);
                cond.wait();
                got.push_back(i);
            }));
        af::sleep(0s);
        cond.lock();
        cond.notify_all();
        cond.unlock();
        af::gather(ts);
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    });
}

// test_locks.py ConditionTests.test_notify_unacquired / test_notify_all_unacquired
TEST(Condition, NotifyUnacquired) {
    af::run([] {
        af::Condition cond;
        EXPECT_THROW(cond.notify(), af::RuntimeError);
        EXPECT_THROW(cond.notify_all(), af::RuntimeError);
    });
}

// test_locks.py ConditionTests.test_explicit_lock
TEST(Condition, ExplicitLock) {
    af::run([] {
        af::Lock lock;
        af::Condition cond(lock);
        cond.lock();
        EXPECT_TRUE(lock.locked());
        cond.unlock();
        lock.lock();
        EXPECT_TRUE(cond.locked());
        lock.unlock();
    });
}

// test_locks.py ConditionTests.test_timeout_in_block (wait under a timeout re-acquires)
TEST(Condition, TimeoutInBlock) {
    af::run([] {
        af::Condition cond;
        std::lock_guard<af::Condition> g(cond);
        EXPECT_THROW(af::timeout(5ms, [&] { cond.wait(); }), af::TimeoutError);
        EXPECT_TRUE(cond.locked());
    });
}

// test_locks.py ConditionTests.test_cancelled_error_wakeup (cancelled after notify: still
// re-acquires before CancelledError)
TEST(Condition, CancelledErrorWakeup) {
    af::run([] {
        af::Condition cond;
        bool locked_in_handler = false;
        auto t = af::async([&] {
            std::lock_guard<af::Condition> g(cond);
            try {
                cond.wait();
            } catch (const af::CancelledError&) {
                locked_in_handler = cond.locked();
                throw;
            }
        });
        af::sleep(0s);
        cond.lock();
        cond.notify();
        t.cancel();
        cond.unlock();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(locked_in_handler);
        EXPECT_FALSE(cond.locked());
    });
}

// ======================= Semaphore =======================

// test_locks.py SemaphoreTests.test_initial_value_zero / test_semaphore_value
TEST(Semaphore, InitialValue) {
    af::run([] {
        af::Semaphore s0(0);
        EXPECT_TRUE(s0.locked());
        EXPECT_FALSE(s0.try_acquire());
        EXPECT_THROW(af::Semaphore(-1), std::invalid_argument);
        af::Semaphore s;
        EXPECT_EQ(s.value(), 1);
    });
}

// test_locks.py SemaphoreTests.test_semaphore
TEST(Semaphore, Basic) {
    af::run([] {
        af::Semaphore s(2);
        s.acquire();
        EXPECT_EQ(s.value(), 1);
        s.acquire();
        EXPECT_TRUE(s.locked());
        s.release();
        EXPECT_FALSE(s.locked());
        s.release();
        EXPECT_EQ(s.value(), 2);
    });
}

// test_locks.py SemaphoreTests.test_acquire (three waiters, released one by one, FIFO)
TEST(Semaphore, Acquire) {
    af::run([] {
        af::Semaphore s(1);
        std::vector<int> got;
        s.acquire();
        std::vector<af::Task<void>> ts;
        for (int i = 1; i <= 3; ++i)
            ts.push_back(af::async([&, i] {
                s.acquire();
                got.push_back(i);
            }));
        af::sleep(0s);
        EXPECT_TRUE(got.empty());
        s.release();
        af::sleep(0s);
        EXPECT_EQ(got, std::vector<int>{1});
        s.release();
        s.release();
        af::gather(ts);
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
        EXPECT_EQ(s.value(), 0);
    });
}

// test_locks.py SemaphoreTests.test_acquire_cancel
TEST(Semaphore, AcquireCancel) {
    af::run([] {
        af::Semaphore s(0);
        auto t = af::async([&] { s.acquire(); });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_EQ(s.value(), 0);
        s.release();
        EXPECT_EQ(s.value(), 1);  // not swallowed by the dead waiter
    });
}

// test_locks.py SemaphoreTests.test_acquire_cancel_before_awoken / test_acquire_hang
TEST(Semaphore, AcquireCancelBeforeAwoken) {
    af::run([] {
        af::Semaphore s(0);
        auto t1 = af::async([&] { s.acquire(); });
        auto t2 = af::async([&] { s.acquire(); });
        af::sleep(0s);
        s.release();  // handed to t1 ...
        t1.cancel();  // ... cancelled before it runs: the unit goes to t2
        af::wait({t1, t2});
        EXPECT_TRUE(t1.cancelled());
        EXPECT_TRUE(t2.done());
        EXPECT_FALSE(t2.cancelled());
        EXPECT_EQ(s.value(), 0);
    });
}

// test_locks.py SemaphoreTests.test_acquire_no_hang
TEST(Semaphore, AcquireNoHang) {
    af::run([] {
        af::Semaphore s(1);
        s.acquire();
        auto t1 = af::async([&] { s.acquire(); });
        auto t2 = af::async([&] { s.acquire(); });
        af::sleep(0s);
        t1.cancel();
        s.release();
        af::wait({t1, t2}, af::ReturnWhen::all_completed, 1s);
        EXPECT_TRUE(t2.done());
        EXPECT_TRUE(s.locked());
    });
}

// test_locks.py SemaphoreTests.test_acquire_fifo_order (and _2, _3: cancelled waiters do not
// break the order)
TEST(Semaphore, AcquireFifoOrder) {
    af::run([] {
        af::Semaphore s(1);
        std::vector<int> got;
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 5; ++i)
            ts.push_back(af::async([&, i] {
                s.acquire();
                got.push_back(i);
                af::sleep(0s);
                s.release();
            }));
        af::sleep(0s);
        ts[2].cancel();
        std::vector<af::TaskRef> refs(ts.begin(), ts.end());
        af::wait(refs);
        EXPECT_EQ(got, (std::vector<int>{0, 1, 3, 4}));
        EXPECT_EQ(s.value(), 1);
    });
}

// test_locks.py SemaphoreTests.test_release_not_acquired (BoundedSemaphore)
TEST(Semaphore, BoundedReleaseNotAcquired) {
    af::run([] {
        af::BoundedSemaphore s(1);
        EXPECT_THROW(s.release(), af::InvalidStateError);
        s.acquire();
        s.release();
        EXPECT_THROW(s.release(), af::InvalidStateError);
        EXPECT_EQ(s.value(), 1);
    });
}

// test_locks.py SemaphoreTests.test_release_no_waiters
TEST(Semaphore, ReleaseNoWaiters) {
    af::run([] {
        af::Semaphore s;
        s.acquire();
        EXPECT_TRUE(s.locked());
        s.release();
        EXPECT_FALSE(s.locked());
    });
}

// Semaphore acquire under wait_for.
TEST(Semaphore, AcquireUnderWaitFor) {
    af::run([] {
        af::Semaphore s(0);
        EXPECT_THROW(af::wait_for([&] { s.acquire(); }, 5ms), af::TimeoutError);
        s.release();
        EXPECT_EQ(s.value(), 1);
    });
}

// Releasing past INT_MAX free units cannot be counted: it throws std::overflow_error and
// leaves the count as it was (it used to overflow the int, undefined behaviour).
TEST(Semaphore, ReleaseBeyondIntMaxThrowsOverflowError) {
    af::run([] {
        af::Semaphore s(std::numeric_limits<int>::max());
        EXPECT_THROW(s.release(), std::overflow_error);
        EXPECT_EQ(s.value(), std::numeric_limits<int>::max());
        af::wait_for([&] { s.acquire(); }, 1s);  // a unit is free (a wrapped count had none)
        s.release();  // back to the maximum: fine
        EXPECT_EQ(s.value(), std::numeric_limits<int>::max());
        af::BoundedSemaphore b(std::numeric_limits<int>::max());
        EXPECT_THROW(b.release(), af::InvalidStateError);  // the bound comes first
    });
}

// A unit handed to a waiter that has not run yet is not free, but it is no longer held by
// the releaser either: asyncio counts it in the value until the waiter takes it, so a second
// release of a BoundedSemaphore(1) raises at once. It used to be accepted, and the waiter's
// cancellation then pushed the value to 2, past the bound.
TEST(Semaphore, BoundedCountsAUnitHandedToAWaiterThatHasNotRunYet) {
    af::run([] {
        af::BoundedSemaphore s(1);
        s.acquire();
        auto waiter = af::async([&] { s.acquire(); });
        af::sleep(0s);
        s.release();  // handed to the waiter, which has not run yet
        EXPECT_THROW(s.release(), af::InvalidStateError);
        waiter.cancel();  // it gives the unit back
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        EXPECT_EQ(s.value(), 1);
        EXPECT_THROW(s.release(), af::InvalidStateError);
    });
}

// ======================= Barrier =======================

// test_locks.py BarrierTests.test_barrier_parties / test_filling_one_task
TEST(Barrier, OneParty) {
    af::run([] {
        EXPECT_THROW(af::Barrier(0), std::invalid_argument);
        af::Barrier b(1);
        EXPECT_EQ(b.parties(), 1u);
        EXPECT_EQ(b.wait(), 0u);
        EXPECT_EQ(b.wait(), 0u);  // test_filling_one_task_twice
        EXPECT_FALSE(b.broken());
    });
}

// test_locks.py BarrierTests.test_filling_tasks_check_return_value
TEST(Barrier, ReturnValues) {
    af::run([] {
        af::Barrier b(3);
        std::vector<af::Task<std::size_t>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(af::async([&] { return b.wait(); }));
        auto r = af::gather(ts);
        std::sort(r.begin(), r.end());
        EXPECT_EQ(r, (std::vector<std::size_t>{0, 1, 2}));
        EXPECT_EQ(b.n_waiting(), 0u);
    });
}

// test_locks.py BarrierTests.test_filling_task_by_task (n_waiting grows)
TEST(Barrier, FillingTaskByTask) {
    af::run([] {
        af::Barrier b(3);
        auto t1 = af::async([&] { b.wait(); });
        af::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 1u);
        auto t2 = af::async([&] { b.wait(); });
        af::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 2u);
        EXPECT_FALSE(t1.done());
        b.wait();
        af::gather(t1, t2);
        EXPECT_EQ(b.n_waiting(), 0u);
    });
}

// test_locks.py BarrierTests.test_filling_tasks_wait_twice
TEST(Barrier, WaitTwice) {
    af::run([] {
        af::Barrier b(2);
        int rounds = 0;
        auto f = [&] {
            b.wait();
            b.wait();
            ++rounds;
        };
        af::gather(af::async(f), af::async(f));
        EXPECT_EQ(rounds, 2);
    });
}

// test_locks.py BarrierTests.test_blocking_tasks_while_draining (late arrivals wait for the
// next round)
TEST(Barrier, BlockingWhileDraining) {
    af::run([] {
        af::Barrier b(2);
        std::vector<int> order;
        auto t1 = af::async([&] { b.wait(); order.push_back(1); });
        af::sleep(0s);
        auto t2 = af::async([&] { b.wait(); order.push_back(2); });   // releases the round
        auto t3 = af::async([&] { b.wait(); order.push_back(3); });   // next round
        af::sleep(0s);
        af::sleep(0s);
        af::sleep(0s);
        EXPECT_FALSE(t3.done());
        EXPECT_EQ(b.n_waiting(), 1u);
        b.wait();  // completes round two with t3
        af::gather(t1, t2, t3);
        EXPECT_EQ(order.size(), 3u);
    });
}

// test_locks.py BarrierTests.test_filling_tasks_cancel_one
TEST(Barrier, CancelOne) {
    af::run([] {
        af::Barrier b(3);
        auto t1 = af::async([&] { b.wait(); });
        auto t2 = af::async([&] { b.wait(); });
        af::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 2u);
        t1.cancel();
        EXPECT_THROW(af::await(t1), af::CancelledError);
        EXPECT_EQ(b.n_waiting(), 1u);
        auto t3 = af::async([&] { b.wait(); });
        af::sleep(0s);
        EXPECT_FALSE(t2.done());
        b.wait();  // the third party
        af::gather(t2, t3);
        EXPECT_FALSE(b.broken());
    });
}

// test_locks.py BarrierTests.test_reset_barrier / test_reset_barrier_while_tasks_waiting
TEST(Barrier, ResetWhileWaiting) {
    af::run([] {
        af::Barrier b(3);
        int broken = 0;
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 2; ++i)
            ts.push_back(af::async([&] {
                try {
                    b.wait();
                } catch (const af::BrokenBarrierError&) {
                    ++broken;
                }
            }));
        af::sleep(0s);
        b.reset();
        af::gather(ts);
        EXPECT_EQ(broken, 2);
        EXPECT_FALSE(b.broken());
        EXPECT_EQ(b.n_waiting(), 0u);
        // usable again
        auto t = af::async([&] { return b.wait(); });
        auto u = af::async([&] { return b.wait(); });
        b.wait();
        af::gather(t, u);
    });
}

// test_locks.py BarrierTests.test_abort_barrier
TEST(Barrier, Abort) {
    af::run([] {
        af::Barrier b(3);
        auto t = af::async([&] { b.wait(); });
        af::sleep(0s);
        b.abort();
        EXPECT_THROW(af::await(t), af::BrokenBarrierError);
        EXPECT_TRUE(b.broken());
        EXPECT_THROW(b.wait(), af::BrokenBarrierError);
        b.reset();  // test_abort_barrier_when_exception_then_resetting
        EXPECT_FALSE(b.broken());
        af::Barrier one(1);
        EXPECT_EQ(one.wait(), 0u);
    });
}

// Barrier::wait under a timeout leaves the round consistent.
TEST(Barrier, WaitUnderTimeout) {
    af::run([] {
        af::Barrier b(2);
        EXPECT_THROW(af::timeout(5ms, [&] { b.wait(); }), af::TimeoutError);
        EXPECT_EQ(b.n_waiting(), 0u);
        auto t = af::async([&] { b.wait(); });
        b.wait();
        af::await(t);
    });
}

// ---- a waiter cancelled before it runs, at the head of the queue (asyncio.Lock's order) ----

TEST(Lock, CancelledHeadWaiterPassesTheTurnWhenItRuns) {
    af::run([] {
        af::Lock lock;
        std::vector<std::string> log;
        lock.lock();
        auto w1 = af::async([&] {
            try {
                std::lock_guard<af::Lock> g(lock);
            } catch (const af::CancelledError&) {
                log.push_back("w1 cancelled");
                throw;
            }
        });
        auto w2 = af::async([&] {
            std::lock_guard<af::Lock> g(lock);
            log.push_back("w2 locked");
        });
        af::sleep(0s);  // both wait, w1 first
        w1.cancel();
        lock.unlock();
        // As asyncio: the head waiter is cancelled, so nobody is woken and the lock is free
        // until w1 runs and passes the turn to w2.
        EXPECT_FALSE(lock.locked());
        af::sleep(0s);
        EXPECT_EQ(log, (std::vector<std::string>{"w1 cancelled"}));
        EXPECT_TRUE(lock.locked());  // handed to w2
        af::await(w2);
        EXPECT_EQ(log, (std::vector<std::string>{"w1 cancelled", "w2 locked"}));
        EXPECT_THROW(af::await(w1), af::CancelledError);
        EXPECT_FALSE(lock.locked());
    });
}

TEST(Lock, OnlyCancelledWaitersDoNotBlockANewLocker) {
    af::run([] {
        af::Lock lock;
        lock.lock();
        auto w1 = af::async([&] { std::lock_guard<af::Lock> g(lock); });
        af::sleep(0s);
        w1.cancel();
        lock.unlock();
        EXPECT_TRUE(lock.try_lock());  // w1's cancelled wait does not count (asyncio: all cancelled)
        EXPECT_THROW(af::await(w1), af::CancelledError);
        EXPECT_TRUE(lock.locked());  // w1 took nothing and gave nothing away
        lock.unlock();
        EXPECT_FALSE(lock.locked());
    });
}

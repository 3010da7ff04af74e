// A primitive destroyed while tasks wait on it (a bug in the caller) must never leave a
// dangling pointer or a task hanging for ever: each waiter, and each one already woken whose
// task has not run yet, wakes with RuntimeError without touching the destroyed object. Run
// under AddressSanitizer in CI (.ci/extra/10-asan-ubsan.sh), which sees any touch.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

enum class Ended { value, runtime_error, cancelled, other };

struct Outcome {
    Ended how = Ended::other;
    std::string what;
};

// Spawns a task that runs `wait` and records how it ended.
af::Task<void> waiter(std::function<void()> wait, Outcome& out) {
    return af::async([wait, &out] {
        try {
            wait();
            out.how = Ended::value;
        } catch (const af::RuntimeError& e) {
            out.how = Ended::runtime_error;
            out.what = e.what();
        } catch (const af::CancelledError&) {
            out.how = Ended::cancelled;
            throw;
        }
    });
}

// Waits (boundedly: a waiter left hanging fails the test instead of hanging it) for the
// waiters to end.
void expect_ended(std::vector<af::TaskRef> tasks) {
    af::WaitResult r = af::wait(tasks, af::ReturnWhen::all_completed, 2s);
    EXPECT_TRUE(r.pending.empty()) << r.pending.size() << " waiter(s) still hanging";
}

void expect_told(const Outcome& o) {
    EXPECT_EQ(static_cast<int>(o.how), static_cast<int>(Ended::runtime_error));
    EXPECT_NE(o.what.find("was destroyed while this task waited on it"), std::string::npos)
        << o.what;
}

// Each primitive: a task waits on it, then it is destroyed.
template <class P>
void destroyed_while_waited(std::function<P*()> make, std::function<void(P&)> wait) {
    af::run([&] {
        std::unique_ptr<P> p(make());
        Outcome a, b;
        P* raw = p.get();
        auto ta = waiter([raw, wait] { wait(*raw); }, a);
        auto tb = waiter([raw, wait] { wait(*raw); }, b);
        af::sleep(0s);
        af::sleep(0s);
        p.reset();
        expect_ended({ta, tb});
        expect_told(a);
        expect_told(b);
    });
}

}  // namespace

TEST(DestroyedPrimitive, EventWaitersWake) {
    destroyed_while_waited<af::Event>([] { return new af::Event; }, [](af::Event& e) { e.wait(); });
}

TEST(DestroyedPrimitive, LockWaitersWake) {
    destroyed_while_waited<af::Lock>(
        [] {
            auto* l = new af::Lock;
            EXPECT_TRUE(l->try_lock());
            return l;
        },
        [](af::Lock& l) { l.lock(); });
}

TEST(DestroyedPrimitive, SemaphoreWaitersWake) {
    destroyed_while_waited<af::Semaphore>([] { return new af::Semaphore(0); },
                                          [](af::Semaphore& s) { s.acquire(); });
    destroyed_while_waited<af::BoundedSemaphore>([] { return new af::BoundedSemaphore(0); },
                                                 [](af::BoundedSemaphore& s) { s.acquire(); });
}

TEST(DestroyedPrimitive, ConditionWaitersWake) {
    af::Lock lock;  // outlives the condition: the waiters' guards unlock it afterwards
    destroyed_while_waited<af::Condition>([&lock] { return new af::Condition(lock); },
                                          [&lock](af::Condition& c) {
                                              std::unique_lock<af::Lock> g(lock);
                                              c.wait();
                                          });
    EXPECT_FALSE(lock.locked());
}

TEST(DestroyedPrimitive, BarrierWaitersWake) {
    destroyed_while_waited<af::Barrier>([] { return new af::Barrier(3); },
                                        [](af::Barrier& b) { b.wait(); });
}

TEST(DestroyedPrimitive, QueueGettersPuttersAndJoinersWake) {
    destroyed_while_waited<af::Queue<int>>([] { return new af::Queue<int>; },
                                           [](af::Queue<int>& q) { q.get(); });
    destroyed_while_waited<af::LifoQueue<int>>([] { return new af::LifoQueue<int>; },
                                               [](af::LifoQueue<int>& q) { q.get(); });
    destroyed_while_waited<af::PriorityQueue<int>>([] { return new af::PriorityQueue<int>; },
                                                   [](af::PriorityQueue<int>& q) { q.get(); });
    destroyed_while_waited<af::Queue<int>>(
        [] {
            auto* q = new af::Queue<int>(1);
            q->put_nowait(1);
            return q;
        },
        [](af::Queue<int>& q) { q.put(2); });
    destroyed_while_waited<af::Queue<int>>(
        [] {
            auto* q = new af::Queue<int>;
            q->put_nowait(1);
            return q;
        },
        [](af::Queue<int>& q) { q.join(); });
}

// The report: a Lock destroyed while a task waits on it, then that waiter cancelled:
// the waiter's cancellation path handed the lock on through the destroyed object.
TEST(DestroyedPrimitive, LockWaiterCancelledThenLockDestroyed) {
    af::run([] {
        std::unique_ptr<af::Lock> lock(new af::Lock);
        lock->lock();
        Outcome o;
        af::Lock* raw = lock.get();
        auto t = waiter([raw] { raw->lock(); }, o);
        af::sleep(0s);
        t.cancel();  // its task has not run yet when the lock goes
        lock.reset();
        expect_ended({t});
        expect_told(o);
    });
}

// Woken (handed an item, a unit, the lock) but not yet run when the primitive goes: the task
// must not come back into it.
TEST(DestroyedPrimitive, WokenWaiterNotYetRunWhenDestroyed) {
    af::run([] {
        std::unique_ptr<af::Queue<int>> q(new af::Queue<int>);
        Outcome got;
        af::Queue<int>* rawq = q.get();
        auto getter = waiter([rawq] { rawq->get(); }, got);
        std::unique_ptr<af::Semaphore> sem(new af::Semaphore(0));
        Outcome acquired;
        af::Semaphore* raws = sem.get();
        auto acquirer = waiter([raws] { raws->acquire(); }, acquired);
        std::unique_ptr<af::Lock> lock(new af::Lock);
        lock->lock();
        Outcome locked;
        af::Lock* rawl = lock.get();
        auto locker = waiter([rawl] { rawl->lock(); }, locked);
        af::sleep(0s);
        q->put_nowait(1);   // wakes the getter
        sem->release();     // hands the unit to the acquirer
        lock->unlock();     // hands the lock to the locker
        acquirer.cancel();  // and this one is cancelled too: it would pass its unit on
        q.reset();
        sem.reset();
        lock.reset();
        expect_ended({getter, acquirer, locker});
        expect_told(got);
        expect_told(acquired);
        expect_told(locked);
    });
}

// A Barrier waiter cancelled (it left the wait list) then the barrier destroyed before the
// task ran: its cancellation path counted itself out of the destroyed barrier.
TEST(DestroyedPrimitive, BarrierWaiterCancelledThenBarrierDestroyed) {
    af::run([] {
        std::unique_ptr<af::Barrier> b(new af::Barrier(2));
        Outcome o;
        af::Barrier* raw = b.get();
        auto t = waiter([raw] { raw->wait(); }, o);
        af::sleep(0s);
        t.cancel();
        b.reset();
        expect_ended({t});
        expect_told(o);
    });
}

// A Condition waiter notified, now waiting to re-take a lock the notifier holds, when the
// condition is destroyed: it gets the lock back and is told, instead of going back into the
// destroyed condition (wait(pred) would call wait() on it again).
TEST(DestroyedPrimitive, ConditionDestroyedWhileANotifiedWaiterRelocks) {
    af::run([] {
        af::Lock lock;
        std::unique_ptr<af::Condition> c(new af::Condition(lock));
        Outcome o;
        bool held_after = false;
        af::Condition* raw = c.get();
        auto t = waiter(
            [raw, &lock, &held_after] {
                std::unique_lock<af::Lock> g(lock);
                try {
                    raw->wait([] { return false; });
                } catch (...) {
                    held_after = g.owns_lock() && lock.locked();
                    throw;
                }
            },
            o);
        af::sleep(0s);
        lock.lock();
        c->notify();
        af::sleep(0s);  // the waiter now waits for the lock, which this task holds
        c.reset();
        lock.unlock();
        expect_ended({t});
        expect_told(o);
        EXPECT_TRUE(held_after);  // as after any wait(): the lock is held again
        EXPECT_FALSE(lock.locked());
    });
}

// Queue, PriorityQueue, LifoQueue, mirroring CPython's Lib/test/test_asyncio/test_queues.py
// (each test names the CPython test it follows).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

// ---- basics ----

// test_queues.py QueueBasicTests.test_empty
TEST(Queue, Empty) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_TRUE(q.empty());
        q.put_nowait(1);
        EXPECT_FALSE(q.empty());
        EXPECT_EQ(q.get_nowait(), 1);
        EXPECT_TRUE(q.empty());
    });
}

// test_queues.py QueueBasicTests.test_full
TEST(Queue, Full) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_FALSE(q.full());
        af::Queue<int> q1(1);
        q1.put_nowait(1);
        EXPECT_TRUE(q1.full());
    });
}

// test_queues.py QueueBasicTests.test_order
TEST(Queue, Order) {
    af::run([] {
        af::Queue<int> q;
        for (int i : {1, 3, 2}) q.put_nowait(i);
        std::vector<int> got;
        for (int i = 0; i < 3; ++i) got.push_back(q.get_nowait());
        EXPECT_EQ(got, (std::vector<int>{1, 3, 2}));
    });
}

// test_queues.py QueueBasicTests.test_maxsize (a putter blocks when full)
TEST(Queue, Maxsize) {
    af::run([] {
        af::Queue<int> q(2);
        EXPECT_EQ(q.maxsize(), 2u);
        std::vector<int> have_been_put;
        auto putter = af::async([&] {
            for (int i = 0; i < 3; ++i) {
                q.put(i);
                have_been_put.push_back(i);
            }
        });
        af::sleep(0s);
        af::sleep(0s);
        EXPECT_EQ(have_been_put, (std::vector<int>{0, 1}));
        EXPECT_EQ(q.get_nowait(), 0);
        af::await(putter);
        EXPECT_EQ(have_been_put, (std::vector<int>{0, 1, 2}));
        EXPECT_EQ(q.qsize(), 2u);
    });
}

// test_queues.py QueueBasicTests (maxsize <= 0 is unbounded; float maxsize is n/a)
TEST(Queue, NonPositiveMaxsizeIsUnbounded) {
    af::run([] {
        af::Queue<int> q(-3);
        for (int i = 0; i < 1000; ++i) q.put_nowait(i);
        EXPECT_FALSE(q.full());
        EXPECT_EQ(q.qsize(), 1000u);
    });
}

// ---- get ----

// test_queues.py QueueGetTests.test_blocking_get
TEST(Queue, BlockingGet) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);
        EXPECT_EQ(q.get(), 1);
    });
}

// test_queues.py QueueGetTests.test_get_with_putters
TEST(Queue, GetWithPutters) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(1);
        auto p = af::async([&] { q.put(2); });
        af::sleep(0s);
        EXPECT_EQ(q.get(), 1);
        af::await(p);
        EXPECT_EQ(q.get(), 2);
    });
}

// test_queues.py QueueGetTests.test_blocking_get_wait
TEST(Queue, BlockingGetWait) {
    af::run([] {
        af::Queue<int> q;
        bool finished = false;
        auto g = af::async([&] {
            int v = q.get();
            finished = true;
            return v;
        });
        af::sleep(1ms);
        EXPECT_FALSE(finished);
        q.put_nowait(1);
        EXPECT_EQ(af::await(g), 1);
        EXPECT_TRUE(finished);
    });
}

// test_queues.py QueueGetTests.test_nonblocking_get / test_nonblocking_get_exception
TEST(Queue, NonblockingGet) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_THROW(q.get_nowait(), af::QueueEmpty);
        q.put_nowait(1);
        EXPECT_EQ(q.get_nowait(), 1);
    });
}

// test_queues.py QueueGetTests.test_get_cancelled_race (a getter cancelled after being woken
// does not lose the item)
TEST(Queue, GetCancelledRace) {
    af::run([] {
        af::Queue<std::string> q;
        auto t1 = af::async([&] { return q.get(); });
        auto t2 = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.put_nowait("a");  // wakes t1 ...
        t1.cancel();        // ... which is cancelled before it runs
        EXPECT_EQ(af::await(t2), "a");
        EXPECT_TRUE(t1.cancelled());
    });
}

// test_queues.py QueueGetTests.test_get_with_waiting_putters
TEST(Queue, GetWithWaitingPutters) {
    af::run([] {
        af::Queue<std::string> q(1);
        auto p1 = af::async([&] { q.put("a"); });
        auto p2 = af::async([&] { q.put("b"); });
        af::sleep(0s);
        EXPECT_EQ(q.get(), "a");
        EXPECT_EQ(q.get(), "b");
        af::gather(p1, p2);
    });
}

// test_queues.py QueueGetTests.test_why_are_getters_waiting (getters served FIFO)
TEST(Queue, GettersFifo) {
    af::run([] {
        af::Queue<int> q;
        std::vector<int> who;
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 3; ++i)
            ts.push_back(af::async([&, i] {
                q.get();
                who.push_back(i);
            }));
        af::sleep(0s);
        for (int i = 0; i < 3; ++i) q.put_nowait(i);
        af::gather(ts);
        EXPECT_EQ(who, (std::vector<int>{0, 1, 2}));
    });
}

// test_queues.py QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters
TEST(Queue, CancelledGettersNotHeld) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_THROW(af::wait_for([&] { return q.get(); }, 1ms), af::TimeoutError);
        q.put_nowait(5);  // nobody dead is woken for it
        EXPECT_EQ(q.get_nowait(), 5);
    });
}

// ---- put ----

// test_queues.py QueuePutTests.test_blocking_put
TEST(Queue, BlockingPut) {
    af::run([] {
        af::Queue<int> q;
        q.put(1);
        EXPECT_EQ(q.get(), 1);
    });
}

// test_queues.py QueuePutTests.test_blocking_put_wait
TEST(Queue, BlockingPutWait) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(0);
        bool finished = false;
        auto p = af::async([&] {
            q.put(1);
            finished = true;
        });
        af::sleep(1ms);
        EXPECT_FALSE(finished);
        EXPECT_EQ(q.get(), 0);
        af::await(p);
        EXPECT_TRUE(finished);
    });
}

// test_queues.py QueuePutTests.test_nonblocking_put / test_nonblocking_put_exception
TEST(Queue, NonblockingPut) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(1);
        EXPECT_THROW(q.put_nowait(2), af::QueueFull);
        EXPECT_EQ(q.get_nowait(), 1);
    });
}

// test_queues.py QueuePutTests.test_get_cancel_drop_one_pending_reader
TEST(Queue, GetCancelDropOnePendingReader) {
    af::run([] {
        af::Queue<int> q;
        auto reader = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.put_nowait(1);
        q.put_nowait(2);
        reader.cancel();
        EXPECT_THROW(af::await(reader), af::CancelledError);
        // nothing was taken by the cancelled reader
        EXPECT_EQ(q.qsize(), 2u);
        EXPECT_EQ(q.get_nowait(), 1);
    });
}

// test_queues.py QueuePutTests.test_get_cancel_drop_many_pending_readers
TEST(Queue, GetCancelDropManyPendingReaders) {
    af::run([] {
        af::Queue<int> q;
        auto r1 = af::async([&] { return q.get(); });
        auto r2 = af::async([&] { return q.get(); });
        auto r3 = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.put_nowait(1);
        q.put_nowait(2);
        r1.cancel();
        af::wait({r1, r2, r3}, af::ReturnWhen::all_completed, 20ms);
        EXPECT_TRUE(r1.cancelled());
        EXPECT_EQ(r2.result() + r3.result(), 3);
        EXPECT_TRUE(q.empty());
    });
}

// test_queues.py QueuePutTests.test_put_cancel_drop (a cancelled put puts nothing)
TEST(Queue, PutCancelDrop) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(1);
        auto writer = af::async([&] { q.put(2); });
        af::sleep(0s);
        writer.cancel();
        EXPECT_THROW(af::await(writer), af::CancelledError);
        EXPECT_EQ(q.get_nowait(), 1);
        EXPECT_TRUE(q.empty());
    });
}

// test_queues.py QueuePutTests.test_put_cancelled_race (a putter woken then cancelled passes
// the free slot on)
TEST(Queue, PutCancelledRace) {
    af::run([] {
        af::Queue<char> q(1);
        q.put_nowait('X');
        auto p1 = af::async([&] { q.put('a'); });
        auto p2 = af::async([&] { q.put('b'); });
        af::sleep(0s);
        EXPECT_EQ(q.get_nowait(), 'X');  // wakes p1
        p1.cancel();
        af::wait({p1, p2});
        EXPECT_TRUE(p1.cancelled());
        EXPECT_EQ(q.get_nowait(), 'b');
        EXPECT_TRUE(q.empty());
    });
}

// test_queues.py QueuePutTests.test_put_with_waiting_getters
TEST(Queue, PutWithWaitingGetters) {
    af::run([] {
        af::Queue<std::string> q;
        auto t = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.put("a");
        EXPECT_EQ(af::await(t), "a");
    });
}

// test_queues.py QueuePutTests.test_why_are_putters_waiting (putters served FIFO)
TEST(Queue, PuttersFifo) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(-1);
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(af::async([&, i] { q.put(i); }));
        af::sleep(0s);
        std::vector<int> got;
        for (int i = 0; i < 4; ++i) got.push_back(q.get());
        af::gather(ts);
        EXPECT_EQ(got, (std::vector<int>{-1, 0, 1, 2}));
    });
}

// test_queues.py QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters
TEST(Queue, CancelledPutsNotHeld) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(1);
        EXPECT_THROW(af::wait_for([&] { q.put(2); }, 1ms), af::TimeoutError);
        EXPECT_EQ(q.get_nowait(), 1);
        q.put_nowait(3);
        EXPECT_EQ(q.get_nowait(), 3);
    });
}

// test_queues.py QueuePutTests.test_cancelled_put_silence_value_error_exception
TEST(Queue, CancelledPutThenNowait) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(1);
        auto p = af::async([&] { q.put(2); });
        af::sleep(0s);
        p.cancel();
        af::sleep(0s);
        EXPECT_TRUE(p.cancelled());
        EXPECT_EQ(q.get_nowait(), 1);
        EXPECT_THROW(q.get_nowait(), af::QueueEmpty);
    });
}

// ---- LIFO / priority ----

// test_queues.py LifoQueueTests.test_order
TEST(Queue, LifoOrder) {
    af::run([] {
        af::LifoQueue<int> q;
        for (int i : {1, 3, 2}) q.put_nowait(i);
        std::vector<int> got;
        for (int i = 0; i < 3; ++i) got.push_back(q.get());
        EXPECT_EQ(got, (std::vector<int>{2, 3, 1}));
    });
}

// test_queues.py PriorityQueueTests.test_order
TEST(Queue, PriorityOrder) {
    af::run([] {
        af::PriorityQueue<int> q;
        for (int i : {1, 3, 2}) q.put_nowait(i);
        std::vector<int> got;
        for (int i = 0; i < 3; ++i) got.push_back(q.get());
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
        af::PriorityQueue<int, std::greater<int>> rev;
        for (int i : {1, 3, 2}) rev.put_nowait(i);
        EXPECT_EQ(rev.get_nowait(), 3);
    });
}

// Move-only elements in every kind of queue.
TEST(Queue, MoveOnlyElements) {
    af::run([] {
        using P = std::unique_ptr<int>;
        af::Queue<P> q(1);
        auto prod = af::async([&] {
            for (int i = 0; i < 3; ++i) q.put(P(new int(i)));
        });
        int sum = 0;
        for (int i = 0; i < 3; ++i) sum += *q.get();
        af::await(prod);
        EXPECT_EQ(sum, 3);
        struct Less {
            bool operator()(const P& a, const P& b) const { return *a < *b; }
        };
        af::PriorityQueue<P, Less> pq;
        pq.put_nowait(P(new int(2)));
        pq.put_nowait(P(new int(1)));
        EXPECT_EQ(*pq.get_nowait(), 1);
        af::LifoQueue<P> lq;
        lq.put_nowait(P(new int(7)));
        EXPECT_EQ(*lq.get(), 7);
    });
}

// ---- task_done / join ----

// test_queues.py _QueueJoinTestMixin.test_task_done_underflow
TEST(Queue, TaskDoneUnderflow) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_THROW(q.task_done(), af::InvalidStateError);
    });
}

// test_queues.py _QueueJoinTestMixin.test_task_done
TEST(Queue, TaskDone) {
    af::run([] {
        af::Queue<int> q;
        for (int i = 0; i < 100; ++i) q.put_nowait(i);
        long accumulator = 0;
        bool running = true;
        auto worker = [&] {
            while (running) {
                accumulator += q.get();
                q.task_done();
            }
        };
        auto w1 = af::async(worker), w2 = af::async(worker);
        q.join();
        EXPECT_EQ(accumulator, 4950);
        running = false;
        w1.cancel();
        w2.cancel();
        af::wait({w1, w2});
    });
}

// test_queues.py _QueueJoinTestMixin.test_join_empty_queue
TEST(Queue, JoinEmptyQueue) {
    af::run([] {
        af::Queue<int> q;
        q.join();
        q.join();
    });
}

// join() under a timeout and cancellation.
TEST(Queue, JoinCancellable) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);
        EXPECT_THROW(af::timeout(2ms, [&] { q.join(); }), af::TimeoutError);
        q.get_nowait();
        q.task_done();
        q.join();
    });
}

// ---- shutdown (Python 3.13) ----

// test_queues.py _QueueShutdownTestMixin.test_shutdown_empty
TEST(Queue, ShutdownEmpty) {
    af::run([] {
        af::Queue<int> q;
        auto getter = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.shutdown();
        EXPECT_THROW(af::await(getter), af::QueueShutDown);
        EXPECT_THROW(q.put(1), af::QueueShutDown);
        EXPECT_THROW(q.put_nowait(1), af::QueueShutDown);
        EXPECT_THROW(q.get(), af::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), af::QueueShutDown);
        EXPECT_TRUE(q.is_shutdown());
    });
}

// test_queues.py _QueueShutdownTestMixin.test_shutdown_nonempty (items remain gettable)
TEST(Queue, ShutdownNonempty) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);
        q.put_nowait(2);
        q.shutdown();
        EXPECT_EQ(q.get(), 1);
        EXPECT_EQ(q.get_nowait(), 2);
        EXPECT_THROW(q.get(), af::QueueShutDown);
    });
}

// test_queues.py _QueueShutdownTestMixin.test_shutdown_immediate
TEST(Queue, ShutdownImmediate) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);
        q.put_nowait(2);
        q.shutdown(true);
        EXPECT_TRUE(q.empty());
        EXPECT_THROW(q.get(), af::QueueShutDown);
        q.join();  // dropped items count as done
    });
}

// test_queues.py _QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished
TEST(Queue, ShutdownImmediateWithUnfinished) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);
        q.put_nowait(2);
        q.get_nowait();  // taken but not task_done
        bool joined = false;
        auto j = af::async([&] {
            q.join();
            joined = true;
        });
        af::sleep(0s);
        q.shutdown(true);
        af::sleep(0s);
        EXPECT_FALSE(joined);
        q.task_done();
        af::await(j);
        EXPECT_TRUE(joined);
        EXPECT_THROW(q.task_done(), af::InvalidStateError);
    });
}

// test_queues.py _QueueShutdownTestMixin.test_shutdown_putters_deque
TEST(Queue, ShutdownWakesPutters) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(0);
        auto p1 = af::async([&] { q.put(1); });
        auto p2 = af::async([&] { q.put(2); });
        af::sleep(0s);
        q.shutdown();
        EXPECT_THROW(af::await(p1), af::QueueShutDown);
        EXPECT_THROW(af::await(p2), af::QueueShutDown);
        EXPECT_EQ(q.get(), 0);
    });
}

// test_queues.py _QueueShutdownTestMixin.test_shutdown_getters_deque
TEST(Queue, ShutdownWakesGetters) {
    af::run([] {
        af::Queue<int> q;
        auto g1 = af::async([&] { return q.get(); });
        auto g2 = af::async([&] { return q.get(); });
        af::sleep(0s);
        q.shutdown(true);
        EXPECT_THROW(af::await(g1), af::QueueShutDown);
        EXPECT_THROW(af::await(g2), af::QueueShutDown);
    });
}

// ---- misuse ----

TEST(Queue, OtherLoopThrows) {
    af::Queue<int> q;
    af::run([&] { q.put_nowait(1); });
    bool threw = false;
    std::thread th([&] {
        af::run([&] {
            try {
                q.get_nowait();
            } catch (const af::RuntimeError&) {
                threw = true;
            }
        });
    });
    th.join();
    EXPECT_TRUE(threw);
    EXPECT_EQ(q.qsize(), 1u);  // untouched
}

TEST(Queue, BlockingCallsOutsideTask) {
    af::Queue<int> q;
    EXPECT_THROW(q.get(), af::RuntimeError);
    EXPECT_THROW(q.put(1), af::RuntimeError);
    EXPECT_THROW(q.join(), af::RuntimeError);
}

// ---- a cancelled waiter leaves the queue at once (asyncio skips its cancelled future) ----

TEST(Queue, SlotFreedAfterAPutterIsCancelledGoesToTheNextPutterAtOnce) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(0);
        std::vector<std::string> log;
        auto p1 = af::async([&] {
            try {
                q.put(1);
            } catch (const af::CancelledError&) {
                log.push_back("p1 cancelled");
                throw;
            }
        });
        auto p2 = af::async([&] {
            q.put(2);
            log.push_back("p2 put");
        });
        af::sleep(0s);  // both wait
        p1.cancel();
        EXPECT_EQ(q.get_nowait(), 0);  // the slot goes to p2, not to the cancelled p1
        af::sleep(0s);
        EXPECT_EQ(log, (std::vector<std::string>{"p1 cancelled", "p2 put"}));
        EXPECT_THROW(af::await(p1), af::CancelledError);
        af::await(p2);
        EXPECT_EQ(q.get_nowait(), 2);
    });
}

TEST(Queue, WaitCancelledThenUncancelledStillEndsCancelled) {
    af::run([] {
        af::Queue<int> q;
        auto getter = af::async([&] { return q.get(); });
        af::sleep(0s);
        getter.cancel();
        EXPECT_EQ(af::TaskRef(getter).uncancel(), 0);  // withdrawn before it was delivered
        q.put_nowait(7);
        // As asyncio, where the getter's future is cancelled for good: the get ends
        // cancelled and the item stays for the next getter.
        EXPECT_THROW(af::await(getter), af::CancelledError);
        EXPECT_EQ(q.qsize(), 1u);
    });
}

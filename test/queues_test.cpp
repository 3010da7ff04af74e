// Queue, PriorityQueue, LifoQueue: CPython's Lib/test/test_asyncio/test_queues.py mirrored step
// by step (same steps, same assertions; the comment above each test names the one it
// mirrors), then asyncfiber's own cases.
//
// How the Python maps: `await asyncio.sleep(0)` is af::sleep(0ms); asyncio.create_task(coro)
// is af::async(fn); `async with asyncio.TaskGroup() as tg:` is an af::TaskGroup joined at the
// end of the block; loop.call_later is af::Loop::current().call_later. A test written as a
// plain `def` (no loop running) is a plain TEST without af::run. The mixins that CPython runs
// for Queue, LifoQueue and PriorityQueue are typed tests over the three. An assertion on
// private state (`q._getters`, `q._putters`) has no public counterpart; the comment says so.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

// ============================== QueueBasicTests ==============================

// mirrors test_queues.py::QueueBasicTests::test_empty
TEST(Queue, Empty) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_TRUE(q.empty());
        q.put(1);
        EXPECT_FALSE(q.empty());
        EXPECT_EQ(1, q.get());
        EXPECT_TRUE(q.empty());
    });
}

// mirrors test_queues.py::QueueBasicTests::test_full
TEST(Queue, Full) {
    af::run([] {
        af::Queue<int> q;
        EXPECT_FALSE(q.full());

        af::Queue<int> q1(1);  // q = asyncio.Queue(maxsize=1)
        q1.put(1);
        EXPECT_TRUE(q1.full());
    });
}

// mirrors test_queues.py::QueueBasicTests::test_order
TEST(Queue, Order) {
    af::run([] {
        af::Queue<int> q;
        for (int i : {1, 3, 2}) q.put(i);

        std::vector<int> items;
        for (int i = 0; i < 3; ++i) items.push_back(q.get());
        EXPECT_EQ((std::vector<int>{1, 3, 2}), items);
    });
}

// mirrors test_queues.py::QueueBasicTests::test_maxsize
TEST(Queue, Maxsize) {
    af::run([] {
        af::Queue<int> q(2);
        EXPECT_EQ(2u, q.maxsize());
        std::vector<int> have_been_put;

        auto putter = [&] {
            for (int i = 0; i < 3; ++i) {
                q.put(i);
                have_been_put.push_back(i);
            }
            return true;
        };

        auto t = af::async(putter);
        for (int i = 0; i < 2; ++i) af::sleep(0ms);

        // The putter is blocked after putting two items.
        EXPECT_EQ((std::vector<int>{0, 1}), have_been_put);
        EXPECT_EQ(0, q.get());

        // Let the putter resume and put last item.
        af::sleep(0ms);
        EXPECT_EQ((std::vector<int>{0, 1, 2}), have_been_put);
        EXPECT_EQ(1, q.get());
        EXPECT_EQ(2, q.get());

        EXPECT_TRUE(t.done());
        EXPECT_TRUE(t.result());
    });
}

// ============================== QueueGetTests ==============================

// mirrors test_queues.py::QueueGetTests::test_blocking_get
TEST(Queue, BlockingGet) {
    af::run([] {
        af::Queue<int> q;
        q.put_nowait(1);

        EXPECT_EQ(1, q.get());
    });
}

// mirrors test_queues.py::QueueGetTests::test_get_with_putters (the future the test appends to
// the private q._putters is a task waiting in put() here; it runs one sleep(0) after the get
// sets it, so the test lets it)
TEST(Queue, GetWithPutters) {
    af::run([] {
        af::Queue<int> q(1);
        q.put(1);

        auto waiter = af::async([&] { q.put(2); });
        af::sleep(0ms);  // q._putters.append(waiter)

        EXPECT_EQ(1, q.get());
        af::sleep(0ms);
        EXPECT_TRUE(waiter.done());
        EXPECT_NO_THROW(waiter.result());  // assertIsNone(waiter.result())
    });
}

// mirrors test_queues.py::QueueGetTests::test_blocking_get_wait
TEST(Queue, BlockingGetWait) {
    af::run([] {
        af::Queue<int> q;
        af::Event started;
        bool finished = false;

        auto queue_get = [&] {
            started.set();
            int res = q.get();
            finished = true;
            return res;
        };

        auto queue_get_task = af::async(queue_get);
        started.wait();
        EXPECT_FALSE(finished);
        af::Loop::current().call_later(10ms, [&] { q.put_nowait(1); });
        int res = af::await(queue_get_task);
        EXPECT_TRUE(finished);
        EXPECT_EQ(1, res);
    });
}

// mirrors test_queues.py::QueueGetTests::test_nonblocking_get (a plain test: no loop runs)
TEST(Queue, NonblockingGet) {
    af::Queue<int> q;
    q.put_nowait(1);
    EXPECT_EQ(1, q.get_nowait());
}

// mirrors test_queues.py::QueueGetTests::test_nonblocking_get_exception (a plain test)
TEST(Queue, NonblockingGetException) {
    af::Queue<int> q;
    EXPECT_THROW(q.get_nowait(), af::QueueEmpty);
}

// mirrors test_queues.py::QueueGetTests::test_get_cancelled_race
TEST(Queue, GetCancelledRace) {
    af::run([] {
        af::Queue<std::string> q;

        auto t1 = af::async([&] { return q.get(); });
        auto t2 = af::async([&] { return q.get(); });

        af::sleep(0ms);
        t1.cancel();
        af::sleep(0ms);
        EXPECT_TRUE(t1.done());
        q.put("a");
        af::sleep(0ms);
        EXPECT_EQ("a", af::await(t2));
    });
}

// mirrors test_queues.py::QueueGetTests::test_get_with_waiting_putters
TEST(Queue, GetWithWaitingPutters) {
    af::run([] {
        af::Queue<std::string> q(1);
        af::async([&] { q.put("a"); });
        af::async([&] { q.put("b"); });
        EXPECT_EQ(q.get(), "a");
        EXPECT_EQ(q.get(), "b");
    });
}

// mirrors test_queues.py::QueueGetTests::test_why_are_getters_waiting
TEST(Queue, WhyAreGettersWaiting) {
    af::run([] {
        auto consumer = [](af::Queue<int>& queue, int num_expected) {
            for (int i = 0; i < num_expected; ++i) queue.get();
        };

        auto producer = [](af::Queue<int>& queue, int num_items) {
            for (int i = 0; i < num_items; ++i) queue.put(i);
        };

        const int producer_num_items = 5;

        af::Queue<int> q(1);
        af::TaskGroup tg;
        tg.spawn(producer, std::ref(q), producer_num_items);
        tg.spawn(consumer, std::ref(q), producer_num_items);
        tg.join();
    });
}

// mirrors test_queues.py::QueueGetTests::test_cancelled_getters_not_being_held_in_self_getters
TEST(Queue, CancelledGettersNotBeingHeldInSelfGetters) {
    af::run([] {
        af::Queue<int> queue(5);

        EXPECT_THROW(af::wait_for([&] { return queue.get(); }, 100ms), af::TimeoutError);

        // self.assertEqual(len(queue._getters), 0): private
    });
}

// ============================== QueuePutTests ==============================

// mirrors test_queues.py::QueuePutTests::test_blocking_put
TEST(Queue, BlockingPut) {
    af::run([] {
        af::Queue<int> q;

        // No maxsize, won't block.
        q.put(1);
        EXPECT_EQ(1, q.get());
    });
}

// mirrors test_queues.py::QueuePutTests::test_blocking_put_wait
TEST(Queue, BlockingPutWait) {
    af::run([] {
        af::Queue<int> q(1);
        af::Event started;
        bool finished = false;

        auto queue_put = [&] {
            started.set();
            q.put(1);
            q.put(2);
            finished = true;
        };

        af::Loop::current().call_later(10ms, [&] { q.get_nowait(); });
        auto queue_put_task = af::async(queue_put);
        started.wait();
        EXPECT_FALSE(finished);
        af::await(queue_put_task);
        EXPECT_TRUE(finished);
    });
}

// mirrors test_queues.py::QueuePutTests::test_nonblocking_put (a plain test: no loop runs)
TEST(Queue, NonblockingPut) {
    af::Queue<int> q;
    q.put_nowait(1);
    EXPECT_EQ(1, q.get_nowait());
}

// mirrors test_queues.py::QueuePutTests::test_get_cancel_drop_one_pending_reader
TEST(Queue, GetCancelDropOnePendingReader) {
    af::run([] {
        af::Queue<int> q;

        auto reader = af::async([&] { return q.get(); });

        af::sleep(0ms);

        q.put_nowait(1);
        q.put_nowait(2);
        reader.cancel();

        try {
            af::await(reader);
        } catch (const af::CancelledError&) {
            // try again
            reader = af::async([&] { return q.get(); });
            af::await(reader);
        }

        int result = reader.result();
        // if we get 2, it means 1 got dropped!
        EXPECT_EQ(1, result);
    });
}

// mirrors test_queues.py::QueuePutTests::test_get_cancel_drop_many_pending_readers
TEST(Queue, GetCancelDropManyPendingReaders) {
    af::run([] {
        af::Queue<int> q;

        af::Task<int> reader1, reader2, reader3;
        {
            af::TaskGroup tg;
            reader1 = tg.spawn([&] { return q.get(); });
            reader2 = tg.spawn([&] { return q.get(); });
            reader3 = tg.spawn([&] { return q.get(); });

            af::sleep(0ms);

            q.put_nowait(1);
            q.put_nowait(2);
            reader1.cancel();

            EXPECT_THROW(af::await(reader1), af::CancelledError);

            af::await(reader3);
            tg.join();
        }

        // It is undefined in which order concurrent readers receive results.
        EXPECT_EQ((std::set<int>{reader2.result(), reader3.result()}), (std::set<int>{1, 2}));
    });
}

// mirrors test_queues.py::QueuePutTests::test_put_cancel_drop
TEST(Queue, PutCancelDrop) {
    af::run([] {
        af::Queue<int> q(1);

        q.put_nowait(1);

        // putting a second item in the queue has to block (qsize=1)
        auto writer = af::async([&] { q.put(2); });
        af::sleep(0ms);

        int value1 = q.get_nowait();
        EXPECT_EQ(value1, 1);

        writer.cancel();
        try {
            af::await(writer);
        } catch (const af::CancelledError&) {
            // try again
            writer = af::async([&] { q.put(2); });
            af::await(writer);
        }

        int value2 = q.get_nowait();
        EXPECT_EQ(value2, 2);
        EXPECT_EQ(q.qsize(), 0u);
    });
}

// mirrors test_queues.py::QueuePutTests::test_nonblocking_put_exception (a plain test)
TEST(Queue, NonblockingPutException) {
    af::Queue<int> q(1);
    q.put_nowait(1);
    EXPECT_THROW(q.put_nowait(2), af::QueueFull);
}

// mirrors test_queues.py::QueuePutTests::test_put_cancelled
TEST(Queue, PutCancelled) {
    af::run([] {
        af::Queue<int> q;

        auto queue_put = [&] {
            q.put(1);
            return true;
        };

        auto t = af::async(queue_put);

        EXPECT_EQ(1, q.get());
        EXPECT_TRUE(t.done());
        EXPECT_TRUE(t.result());
    });
}

// mirrors test_queues.py::QueuePutTests::test_put_cancelled_race
TEST(Queue, PutCancelledRace) {
    af::run([] {
        af::Queue<std::string> q(1);

        auto put_a = af::async([&] { q.put("a"); });
        auto put_b = af::async([&] { q.put("b"); });
        auto put_c = af::async([&] { q.put("X"); });

        af::sleep(0ms);
        EXPECT_TRUE(put_a.done());
        EXPECT_FALSE(put_b.done());

        put_c.cancel();
        af::sleep(0ms);
        EXPECT_TRUE(put_c.done());
        EXPECT_EQ(q.get_nowait(), "a");
        af::sleep(0ms);
        EXPECT_EQ(q.get_nowait(), "b");

        af::await(put_b);
    });
}

// mirrors test_queues.py::QueuePutTests::test_put_with_waiting_getters
TEST(Queue, PutWithWaitingGetters) {
    af::run([] {
        af::Queue<std::string> q;
        auto t = af::async([&] { return q.get(); });
        af::sleep(0ms);
        q.put("a");
        EXPECT_EQ(af::await(t), "a");
    });
}

// mirrors test_queues.py::QueuePutTests::test_why_are_putters_waiting
TEST(Queue, WhyArePuttersWaiting) {
    af::run([] {
        af::Queue<int> queue(2);

        auto putter = [&](int item) { queue.put(item); };

        auto getter = [&] {
            af::sleep(0ms);
            std::size_t num = queue.qsize();
            for (std::size_t i = 0; i < num; ++i) queue.get_nowait();
        };

        af::TaskGroup tg;
        tg.spawn(getter);
        tg.spawn(putter, 0);
        tg.spawn(putter, 1);
        tg.spawn(putter, 2);
        tg.spawn(putter, 3);
        tg.join();
    });
}

// mirrors test_queues.py::QueuePutTests::test_cancelled_puts_not_being_held_in_self_putters
TEST(Queue, CancelledPutsNotBeingHeldInSelfPutters) {
    af::run([] {
        // Full queue.
        af::Queue<int> queue(1);
        queue.put_nowait(1);

        // Task waiting for space to put an item in the queue.
        auto put_task = af::async([&] { queue.put(1); });
        af::sleep(0ms);

        // self.assertEqual(len(queue._putters), 1): private
        put_task.cancel();
        EXPECT_THROW(af::await(put_task), af::CancelledError);
        // self.assertEqual(len(queue._putters), 0): private
    });
}

// mirrors test_queues.py::QueuePutTests::test_cancelled_put_silence_value_error_exception
TEST(Queue, CancelledPutSilenceValueErrorException) {
    af::run([] {
        // Full Queue.
        af::Queue<int> queue(1);
        queue.put_nowait(1);

        // Task waiting for space to put a item in the queue.
        auto put_task = af::async([&] { queue.put(1); });
        af::sleep(0ms);

        // get_nowait() removes the putter from the waiting putters.
        queue.get_nowait();
        // When cancelled, put() must not fail on the putter that is gone already; it raises
        // CancelledError.
        put_task.cancel();

        EXPECT_THROW(af::await(put_task), af::CancelledError);
    });
}

// ============================== LifoQueueTests, PriorityQueueTests ==============================

// mirrors test_queues.py::LifoQueueTests::test_order
TEST(LifoQueue, Order) {
    af::run([] {
        af::LifoQueue<int> q;
        for (int i : {1, 3, 2}) q.put(i);

        std::vector<int> items;
        for (int i = 0; i < 3; ++i) items.push_back(q.get());
        EXPECT_EQ((std::vector<int>{2, 3, 1}), items);
    });
}

// mirrors test_queues.py::PriorityQueueTests::test_order
TEST(PriorityQueue, Order) {
    af::run([] {
        af::PriorityQueue<int> q;
        for (int i : {1, 3, 2}) q.put(i);

        std::vector<int> items;
        for (int i = 0; i < 3; ++i) items.push_back(q.get());
        EXPECT_EQ((std::vector<int>{1, 2, 3}), items);
    });
}

// ============================== the mixins, for each kind of queue ==============================

namespace {
struct FifoKind {
    template <class T>
    using Q = af::Queue<T>;
};
struct LifoKind {
    template <class T>
    using Q = af::LifoQueue<T>;
};
struct PriorityKind {
    template <class T>
    using Q = af::PriorityQueue<T>;
};
using QueueKinds = ::testing::Types<FifoKind, LifoKind, PriorityKind>;

// QueueJoinTests, LifoQueueJoinTests, PriorityQueueJoinTests
template <class Kind>
class QueueJoin : public ::testing::Test {};
TYPED_TEST_SUITE(QueueJoin, QueueKinds);

// QueueShutdownTests, LifoQueueShutdownTests, PriorityQueueShutdownTests
template <class Kind>
class QueueShutdown : public ::testing::Test {};
TYPED_TEST_SUITE(QueueShutdown, QueueKinds);
}  // namespace

// mirrors test_queues.py::_QueueJoinTestMixin::test_task_done_underflow (a plain test;
// ValueError is std::invalid_argument)
TYPED_TEST(QueueJoin, TaskDoneUnderflow) {
    typename TypeParam::template Q<int> q;
    EXPECT_THROW(q.task_done(), std::invalid_argument);
}

// mirrors test_queues.py::_QueueJoinTestMixin::test_task_done
TYPED_TEST(QueueJoin, TaskDone) {
    af::run([] {
        typename TypeParam::template Q<int> q;
        for (int i = 0; i < 100; ++i) q.put_nowait(i);

        int accumulator = 0;

        // Two workers get items from the queue and call task_done after each. Join the queue
        // and assert all items have been processed.
        bool running = true;

        auto worker = [&] {
            while (running) {
                int item = q.get();
                accumulator += item;
                q.task_done();
            }
        };

        af::TaskGroup tg;
        std::vector<af::Task<void>> tasks;
        for (int index = 0; index < 2; ++index) tasks.push_back(tg.spawn(worker));

        q.join();
        EXPECT_EQ(4950, accumulator);  // sum(range(100))

        // close running generators
        running = false;
        for (std::size_t i = 0; i < tasks.size(); ++i) q.put_nowait(0);
        tg.join();
    });
}

// mirrors test_queues.py::_QueueJoinTestMixin::test_join_empty_queue
TYPED_TEST(QueueJoin, JoinEmptyQueue) {
    af::run([] {
        typename TypeParam::template Q<int> q;

        // Test that a queue join()s successfully, and before anything else (done twice for
        // insurance).
        q.join();
        q.join();
    });
}

// mirrors test_queues.py::_QueueShutdownTestMixin::test_shutdown_empty
TYPED_TEST(QueueShutdown, ShutdownEmpty) {
    af::run([] {
        // Setup empty queue, and join() and get() tasks
        typename TypeParam::template Q<std::string> q;
        auto get_task = af::async([&] { return q.get(); });
        af::sleep(0ms);  // want get task pending before shutdown

        // Perform shut-down
        q.shutdown(false);  // unfinished tasks: 0 -> 0

        EXPECT_EQ(q.qsize(), 0u);

        // Ensure join() task successfully finishes
        q.join();

        // Ensure get() task is finished, and raised ShutDown
        af::sleep(0ms);
        EXPECT_TRUE(get_task.done());
        EXPECT_THROW(af::await(get_task), af::QueueShutDown);

        // Ensure put() and get() raise ShutDown
        EXPECT_THROW(q.put("data"), af::QueueShutDown);
        EXPECT_THROW(q.put_nowait("data"), af::QueueShutDown);

        EXPECT_THROW(q.get(), af::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), af::QueueShutDown);
    });
}

// mirrors test_queues.py::_QueueShutdownTestMixin::test_shutdown_nonempty
TYPED_TEST(QueueShutdown, ShutdownNonempty) {
    af::run([] {
        // Setup full queue with 1 item, and join() and put() tasks
        typename TypeParam::template Q<std::string> q(1);

        q.put_nowait("data");
        auto join_task = af::async([&] { q.join(); });
        auto put_task = af::async([&] { q.put("data2"); });

        // Ensure put() task is not finished
        af::sleep(0ms);
        EXPECT_FALSE(put_task.done());

        // Perform shut-down
        q.shutdown(false);  // unfinished tasks: 1 -> 1

        EXPECT_EQ(q.qsize(), 1u);

        // Ensure put() task is finished, and raised ShutDown
        af::sleep(0ms);
        EXPECT_TRUE(put_task.done());
        EXPECT_THROW(af::await(put_task), af::QueueShutDown);

        // Ensure get() succeeds on enqueued item
        EXPECT_EQ(q.get(), "data");

        // Ensure join() task is not finished
        af::sleep(0ms);
        EXPECT_FALSE(join_task.done());

        // Ensure put() and get() raise ShutDown
        EXPECT_THROW(q.put("data"), af::QueueShutDown);
        EXPECT_THROW(q.put_nowait("data"), af::QueueShutDown);

        EXPECT_THROW(q.get(), af::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), af::QueueShutDown);

        // Ensure there is 1 unfinished task, and join() task succeeds
        q.task_done();

        af::sleep(0ms);
        EXPECT_TRUE(join_task.done());
        af::await(join_task);

        EXPECT_THROW(q.task_done(), std::invalid_argument)
            << "Didn't appear to mark all tasks done";
    });
}

// mirrors test_queues.py::_QueueShutdownTestMixin::test_shutdown_immediate
TYPED_TEST(QueueShutdown, ShutdownImmediate) {
    af::run([] {
        // Setup queue with 1 item, and a join() task
        typename TypeParam::template Q<std::string> q;
        q.put_nowait("data");
        auto join_task = af::async([&] { q.join(); });

        // Perform shut-down
        q.shutdown(true);  // unfinished tasks: 1 -> 0

        EXPECT_EQ(q.qsize(), 0u);

        // Ensure join() task has successfully finished
        af::sleep(0ms);
        EXPECT_TRUE(join_task.done());
        af::await(join_task);

        // Ensure put() and get() raise ShutDown
        EXPECT_THROW(q.put("data"), af::QueueShutDown);
        EXPECT_THROW(q.put_nowait("data"), af::QueueShutDown);

        EXPECT_THROW(q.get(), af::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), af::QueueShutDown);

        // Ensure there are no unfinished tasks
        EXPECT_THROW(q.task_done(), std::invalid_argument)
            << "Didn't appear to mark all tasks done";
    });
}

// mirrors test_queues.py::_QueueShutdownTestMixin::test_shutdown_immediate_with_unfinished
TYPED_TEST(QueueShutdown, ShutdownImmediateWithUnfinished) {
    af::run([] {
        // Setup queue with 2 items (1 retrieved), and a join() task
        typename TypeParam::template Q<std::string> q;
        q.put_nowait("data");
        q.put_nowait("data");
        auto join_task = af::async([&] { q.join(); });
        EXPECT_EQ(q.get(), "data");

        // Perform shut-down
        q.shutdown(true);  // unfinished tasks: 2 -> 1

        EXPECT_EQ(q.qsize(), 0u);

        // Ensure join() task is not finished
        af::sleep(0ms);
        EXPECT_FALSE(join_task.done());

        // Ensure put() and get() raise ShutDown
        EXPECT_THROW(q.put("data"), af::QueueShutDown);
        EXPECT_THROW(q.put_nowait("data"), af::QueueShutDown);

        EXPECT_THROW(q.get(), af::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), af::QueueShutDown);

        // Ensure there is 1 unfinished task
        q.task_done();
        EXPECT_THROW(q.task_done(), std::invalid_argument)
            << "Didn't appear to mark all tasks done";

        // Ensure join() task has successfully finished
        af::sleep(0ms);
        EXPECT_TRUE(join_task.done());
        af::await(join_task);
    });
}

// ============================== asyncfiber's own ==============================

// maxsize <= 0 is unbounded (asyncio: maxsize <= 0 too).
TEST(Queue, NonPositiveMaxsizeIsUnbounded) {
    af::run([] {
        af::Queue<int> q(-3);
        for (int i = 0; i < 1000; ++i) q.put_nowait(i);
        EXPECT_FALSE(q.full());
        EXPECT_EQ(q.qsize(), 1000u);
    });
}

// PriorityQueue takes a comparator: std::greater gives a max-queue.
TEST(PriorityQueue, Comparator) {
    af::run([] {
        af::PriorityQueue<int, std::greater<int>> rev;
        for (int i : {1, 3, 2}) rev.put_nowait(i);
        EXPECT_EQ(rev.get_nowait(), 3);
        EXPECT_EQ(rev.get_nowait(), 2);
        EXPECT_EQ(rev.get_nowait(), 1);
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

// join() under a timeout, and again once the work is done.
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

// shutdown() wakes every blocked putter with QueueShutDown; the items already queued stay.
TEST(Queue, ShutdownWakesEveryPutter) {
    af::run([] {
        af::Queue<int> q(1);
        q.put_nowait(0);
        auto p1 = af::async([&] { q.put(1); });
        auto p2 = af::async([&] { q.put(2); });
        af::sleep(0ms);
        q.shutdown();
        EXPECT_THROW(af::await(p1), af::QueueShutDown);
        EXPECT_THROW(af::await(p2), af::QueueShutDown);
        EXPECT_EQ(q.get(), 0);
    });
}

// shutdown(immediate) wakes every blocked getter with QueueShutDown.
TEST(Queue, ShutdownImmediateWakesEveryGetter) {
    af::run([] {
        af::Queue<int> q;
        auto g1 = af::async([&] { return q.get(); });
        auto g2 = af::async([&] { return q.get(); });
        af::sleep(0ms);
        q.shutdown(true);
        EXPECT_THROW(af::await(g1), af::QueueShutDown);
        EXPECT_THROW(af::await(g2), af::QueueShutDown);
    });
}

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

// A cancelled waiter leaves the queue at once (asyncio skips its cancelled future): a slot
// freed after a putter is cancelled goes to the next putter in the same iteration.
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
        af::sleep(0ms);  // both wait
        p1.cancel();
        EXPECT_EQ(q.get_nowait(), 0);  // the slot goes to p2, not to the cancelled p1
        af::sleep(0ms);
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
        af::sleep(0ms);
        getter.cancel();
        EXPECT_EQ(af::TaskRef(getter).uncancel(), 0);  // withdrawn before it was delivered
        q.put_nowait(7);
        // As asyncio, where the getter's future is cancelled for good: the get ends
        // cancelled and the item stays for the next getter.
        EXPECT_THROW(af::await(getter), af::CancelledError);
        EXPECT_EQ(q.qsize(), 1u);
    });
}

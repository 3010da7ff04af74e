// Eager tasks (TaskOptions::eager, asyncio's eager task factory): CPython's
// Lib/test/test_asyncio/test_eager_task_factory.py (EagerTaskFactoryLoopTests) and
// test_tasks.py's eager_start tests mirrored step by step (the comment above each names the
// one it mirrors), then asyncfiber's own cases: ordering, cancellation at and before the first
// suspension, exceptions, spawns from callbacks and Asio handlers, nesting, task groups.
//
// How the Python maps: loop.create_task(coro) under the eager factory is
// af::async(af::TaskOptions{"", 0, true}, fn); loop.create_future() is an af::Promise.
#include "support/asyncio_mirror.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/post.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;
using mirror::assert_raises;

namespace {

af::TaskOptions eager(std::string name = {}) {
    af::TaskOptions o;
    o.name = std::move(name);
    o.eager = true;
    return o;
}

bool contains(const std::vector<af::TaskRef>& v, const af::TaskRef& t) {
    return std::find(v.begin(), v.end(), t) != v.end();
}

}  // namespace

// ======================================================================================
// EagerTaskFactoryLoopTests
// ======================================================================================

// mirrors test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_eager_task_factory_set
// (the factory is an option of each spawn: what is checked is that it makes an ordinary task)
TEST(EagerTaskFactoryLoopTests, EagerTaskFactorySet) {
    af::run([] {
        auto noop = [] {};
        auto run = [&] {
            af::Task<void> t = af::async(eager(), noop);
            EXPECT_TRUE(static_cast<bool>(t));
            af::await(t);
        };
        run();
    });
}

// mirrors
// test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_await_future_during_eager_step
TEST(EagerTaskFactoryLoopTests, AwaitFutureDuringEagerStep) {
    std::string result = af::run([] {
        auto set_result = [](af::Promise<std::string>& fut, std::string val) {
            fut.set_value(std::move(val));
        };
        af::Promise<std::string> fut;
        af::Future<std::string> f = fut.get_future();
        auto t = af::async(eager(), [&] { set_result(fut, "my message"); });
        // assert the eager step completed the task
        EXPECT_TRUE(t.done());
        return af::await(f);
    });
    EXPECT_EQ(result, "my message");
}

// mirrors test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_eager_completion
TEST(EagerTaskFactoryLoopTests, EagerCompletion) {
    std::string result = af::run([] {
        auto coro = [] { return std::string("hello"); };
        auto t = af::async(eager(), coro);
        // assert the eager step completed the task
        EXPECT_TRUE(t.done());
        return af::await(t);
    });
    EXPECT_EQ(result, "hello");
}

// mirrors test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_block_after_eager_step
TEST(EagerTaskFactoryLoopTests, BlockAfterEagerStep) {
    std::string result = af::run([] {
        auto coro = [] {
            af::sleep(100ms);
            return std::string("finished after blocking");
        };
        auto t = af::async(eager(), coro);
        EXPECT_FALSE(t.done());
        std::string r = af::await(t);
        EXPECT_TRUE(t.done());
        return r;
    });
    EXPECT_EQ(result, "finished after blocking");
}

// mirrors
// test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_cancellation_after_eager_completion
TEST(EagerTaskFactoryLoopTests, CancellationAfterEagerCompletion) {
    std::string result = af::run([] {
        auto coro = [] { return std::string("finished without blocking"); };
        auto t = af::async(eager(), coro);
        EXPECT_FALSE(t.cancel());
        std::string r = af::await(t);
        // finished task can't be cancelled
        EXPECT_FALSE(t.cancelled());
        return r;
    });
    EXPECT_EQ(result, "finished without blocking");
}

// mirrors
// test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_cancellation_after_eager_step_blocks
// (run_coro(run()) is awaiting a task running run(): its CancelledError comes out there)
TEST(EagerTaskFactoryLoopTests, CancellationAfterEagerStepBlocks) {
    af::run([] {
        auto coro = [] {
            af::sleep(100ms);
            return std::string("finished after blocking");
        };
        auto run = [&] {
            auto t = af::async(eager(), coro);
            t.cancel("cancellation message");
            EXPECT_GT(t.cancelling(), 0);
            af::await(t);
        };
        auto cm = assert_raises<af::CancelledError>([&] { af::await(af::async(run)); });
        if (cm) {
            EXPECT_EQ(cm.get().message(), "cancellation message");
        }
    });
}

// mirrors test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_current_task
TEST(EagerTaskFactoryLoopTests, CurrentTask) {
    af::run([] {
        af::TaskRef captured_current_task;
        auto coro = [&] {
            captured_current_task = af::current_task();
            // verify the task before and after blocking is identical
            af::sleep(100ms);
            EXPECT_EQ(af::current_task(), captured_current_task);
        };
        auto t = af::async(eager(), coro);
        EXPECT_EQ(captured_current_task, t);
        af::await(t);
    });
}

// mirrors
// test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_all_tasks_with_eager_completion
TEST(EagerTaskFactoryLoopTests, AllTasksWithEagerCompletion) {
    af::run([] {
        std::vector<af::TaskRef> captured_all_tasks;
        auto coro = [&] { captured_all_tasks = af::all_tasks(); };
        auto t = af::async(eager(), coro);
        EXPECT_TRUE(contains(captured_all_tasks, t));
        EXPECT_FALSE(contains(af::all_tasks(), t));
    });
}

// mirrors test_eager_task_factory.py::EagerTaskFactoryLoopTests::test_all_tasks_with_blocking
TEST(EagerTaskFactoryLoopTests, AllTasksWithBlocking) {
    af::run([] {
        std::vector<af::TaskRef> captured_eager_all_tasks;
        af::Promise<bool> fut1, fut2;
        af::Future<bool> f1 = fut1.get_future(), f2 = fut2.get_future();
        auto coro = [&] {
            captured_eager_all_tasks = af::all_tasks();
            af::await(f1);
            fut2.set_value(true);
        };
        auto t = af::async(eager(), coro);
        EXPECT_TRUE(contains(captured_eager_all_tasks, t));
        EXPECT_TRUE(contains(af::all_tasks(), t));
        fut1.set_value(true);
        af::await(f2);
        af::sleep(0s);  // asyncio's task is done once fut2's callbacks ran; here once it ends
        EXPECT_FALSE(contains(af::all_tasks(), t));
    });
}

// ======================================================================================
// test_tasks.py: BaseTaskTests.test_eager_start_true / _false (Task(..., eager_start=...))
// ======================================================================================

// mirrors test_tasks.py::BaseTaskTests::test_eager_start_true
TEST(BaseTaskTests, EagerStartTrue) {
    af::run([] {
        std::string name;
        auto asyncfn = [&] { name = af::current_task().name(); };
        auto t = af::async(eager("example"), asyncfn);
        EXPECT_TRUE(t.done());
        EXPECT_EQ(name, "example");
        af::await(t);
    });
}

// mirrors test_tasks.py::BaseTaskTests::test_eager_start_false
TEST(BaseTaskTests, EagerStartFalse) {
    af::run([] {
        std::string name;
        bool ran = false;
        auto asyncfn = [&] {
            ran = true;
            name = af::current_task().name();
        };
        af::TaskOptions o;
        o.name = "example";
        o.eager = false;
        auto t = af::async(o, asyncfn);
        EXPECT_FALSE(t.done());
        EXPECT_FALSE(ran);  // name is None
        af::await(t);
        EXPECT_EQ(name, "example");
    });
}

// ======================================================================================
// asyncfiber's own cases
// ======================================================================================

// The order of an eager spawn: the body's first step runs inside af::async, the spawner goes
// on at the body's first suspension, and the body's next step is queued behind the tasks that
// were ready before it (FIFO), as asyncio's eager task factory orders them.
TEST(Eager, OrderingAgainstQueuedTasks) {
    std::vector<std::string> order;
    af::run([&] {
        auto queued = af::async([&] { order.push_back("queued runs"); });
        order.push_back("before spawn");
        auto t = af::async(eager(), [&] {
            order.push_back("eager step 1");
            af::sleep(0s);
            order.push_back("eager step 2");
        });
        order.push_back("after spawn");
        af::await(t);
        af::await(queued);
    });
    EXPECT_EQ(order, (std::vector<std::string>{"before spawn", "eager step 1", "after spawn",
                                               "queued runs", "eager step 2"}));
}

// Nested eager spawns run depth first: each returns to its own spawner.
TEST(Eager, NestedSpawnsReturnToTheirSpawners) {
    std::vector<std::string> order;
    af::run([&] {
        af::Task<void> inner;
        auto outer = af::async(eager(), [&] {
            order.push_back("outer starts");
            inner = af::async(eager(), [&] {
                order.push_back("inner starts");
                af::sleep(0s);
                order.push_back("inner ends");
            });
            order.push_back("outer after inner's first step");
            af::await(inner);
            order.push_back("outer ends");
        });
        order.push_back("main after spawn");
        af::await(outer);
        EXPECT_TRUE(inner.done());
    });
    EXPECT_EQ(order, (std::vector<std::string>{"outer starts", "inner starts",
                                               "outer after inner's first step", "main after spawn",
                                               "inner ends", "outer ends"}));
}

// An exception in the eager step fails the task, not the spawner: af::async returns a task
// that is done with that exception.
TEST(Eager, ExceptionInTheEagerStepFailsTheTask) {
    af::run([] {
        auto t = af::async(eager(), []() -> int { throw std::runtime_error("early"); });
        EXPECT_TRUE(t.done());
        EXPECT_FALSE(t.cancelled());
        EXPECT_THROW(af::await(t), std::runtime_error);
        // and after the first suspension, as for any task
        auto u = af::async(eager(), []() -> int {
            af::sleep(0s);
            throw std::logic_error("late");
        });
        EXPECT_FALSE(u.done());
        EXPECT_THROW(af::await(u), std::logic_error);
    });
}

// A cancellation requested during the eager step (here by the task itself) lands at its
// first suspension point; a task that returns without one ends cancelled (asyncio's
// _must_cancel at the end of a step), its value dropped.
TEST(Eager, CancelledDuringTheEagerStep) {
    af::run([] {
        bool reached_after_sleep = false;
        auto t = af::async(eager(), [&] {
            af::current_task().cancel("from inside");
            af::sleep(1s);  // the first suspension point throws
            reached_after_sleep = true;
        });
        EXPECT_TRUE(t.done());
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(reached_after_sleep);
        auto cm = assert_raises<af::CancelledError>([&] { af::await(t); });
        if (cm) {
            EXPECT_EQ(cm.get().message(), "from inside");
        }

        auto u = af::async(eager(), [] {
            af::current_task().cancel();
            return 5;  // no suspension point: the value is dropped, the task is cancelled
        });
        EXPECT_TRUE(u.done());
        EXPECT_TRUE(u.cancelled());
        EXPECT_EQ(af::current_task().cancelling(), 0);  // the spawner is untouched
    });
}

// Cancelled at its first suspension (just after af::async returned) and while it waits
// there: CancelledError comes out of that suspension point, the finally-style cleanup runs.
TEST(Eager, CancelledAtTheFirstSuspension) {
    af::run([] {
        std::vector<std::string> order;
        af::Event never;
        auto t = af::async(eager(), [&] {
            order.push_back("waiting");
            try {
                never.wait();
            } catch (const af::CancelledError&) {
                order.push_back("cancelled at the first suspension");
                throw;
            }
        });
        EXPECT_FALSE(t.done());
        EXPECT_TRUE(t.cancel());
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(t.cancelled());
        EXPECT_EQ(order,
                  (std::vector<std::string>{"waiting", "cancelled at the first suspension"}));
    });
}

// The spawner's cancellation is not delivered by an eager spawn (it is no suspension point
// of the spawner), and cancelling the spawner from the eager step lands at the spawner's next
// suspension point.
TEST(Eager, SpawnIsNoSuspensionPointOfTheSpawner) {
    af::run([] {
        std::vector<std::string> order;
        auto spawner = af::async([&] {
            af::TaskRef me = af::current_task();
            af::async(eager(), [&, me]() mutable {
                me.cancel();
                order.push_back("child cancelled its spawner");
            });
            order.push_back("spawner goes on");
            try {
                af::sleep(1s);
            } catch (const af::CancelledError&) {
                order.push_back("spawner cancelled at its next suspension");
                throw;
            }
        });
        EXPECT_THROW(af::await(spawner), af::CancelledError);
        EXPECT_EQ(order, (std::vector<std::string>{"child cancelled its spawner", "spawner goes on",
                                                   "spawner cancelled at its next suspension"}));
    });
}

// From a plain callback of the running loop (asyncio runs an eager task there too, the loop
// being running) and from an Asio handler: the first step runs inside the callback.
TEST(Eager, FromACallbackAndAnAsioHandler) {
    std::vector<std::string> order;
    af::run([&] {
        af::Event done;
        af::Loop& loop = af::Loop::current();
        loop.call_soon([&] {
            order.push_back("callback");
            af::Task<void> t = af::async(eager(), [&] {
                EXPECT_TRUE(static_cast<bool>(af::current_task()));
                order.push_back("eager step in the callback");
                af::sleep(1ms);
                order.push_back("eager task ends");
                done.set();
            });
            EXPECT_FALSE(af::current_task());  // back in the callback: no task
            order.push_back("callback goes on");
        });
        done.wait();
        done.clear();
        boost::asio::post(loop.io_context(), [&] {
            order.push_back("handler");
            auto t = af::async(eager(), [&] { order.push_back("eager step in the handler"); });
            EXPECT_TRUE(t.done());
            done.set();
        });
        done.wait();
    });
    EXPECT_EQ(order, (std::vector<std::string>{"callback", "eager step in the callback",
                                               "callback goes on", "eager task ends", "handler",
                                               "eager step in the handler"}));
}

// Each task keeps its own C++ exception state: a spawner inside a catch block spawns an
// eager task that throws and catches its own exception, and still rethrows its own after.
TEST(Eager, ExceptionStateOfTheSpawnerSurvives) {
    af::run([] {
        try {
            throw std::runtime_error("spawner's");
        } catch (const std::runtime_error&) {
            auto t = af::async(eager(), [] {
                try {
                    throw std::logic_error("child's");
                } catch (const std::logic_error&) {
                    af::sleep(0s);  // suspends inside its own catch block
                    EXPECT_THROW(throw, std::logic_error);
                }
            });
            EXPECT_FALSE(t.done());
            try {
                throw;
            } catch (const std::runtime_error& e) {
                EXPECT_STREQ(e.what(), "spawner's");
            }
            af::await(t);
        }
    });
}

// A task group's eager member that ends (or fails) inside spawn is counted at once: the
// group neither waits for it forever nor misses its failure.
TEST(Eager, TaskGroupMembersThatEndInsideSpawn) {
    af::run([] {
        int value = 0;
        af::task_group([&](af::TaskGroup& g) {
            auto t = g.spawn(eager(), [] { return 42; });
            EXPECT_TRUE(t.done());
            EXPECT_EQ(g.size(), 0u);
            value = t.result();
        });
        EXPECT_EQ(value, 42);

        bool body_cancelled = false;
        auto cm = assert_raises<af::TaskGroupError>([&] {
            af::task_group([&](af::TaskGroup& g) {
                g.spawn(eager(), []() -> int { throw std::runtime_error("member failed"); });
                try {
                    af::sleep(1s);
                } catch (const af::CancelledError&) {
                    body_cancelled = true;
                    throw;
                }
            });
        });
        EXPECT_TRUE(body_cancelled);
        if (cm) {
            EXPECT_EQ(cm.get().exceptions().size(), 1u);
        }
    });
}

// A task that spends its cooperative budget in its eager step yields like any other: the
// spawner goes on before the task has finished.
TEST(Eager, BudgetSpentInTheEagerStepYields) {
    af::run([] {
        af::Lock lock;
        int rounds = 0;
        auto t = af::async(eager(), [&] {
            for (int i = 0; i < 1000; ++i) {
                lock.lock();  // never waits, but counts against the budget
                lock.unlock();
                ++rounds;
            }
        });
        EXPECT_FALSE(t.done());
        EXPECT_GT(rounds, 0);
        EXPECT_LT(rounds, 1000);
        af::await(t);
        EXPECT_EQ(rounds, 1000);
    });
}

// Many eager tasks that never suspend: each is done when af::async returns, and gather sees
// every value.
TEST(Eager, ManyTasksThatNeverSuspend) {
    af::run([] {
        const int n = 10000;
        std::vector<af::Task<long>> tasks;
        tasks.reserve(n);
        for (long i = 0; i < n; ++i) {
            tasks.push_back(af::async(
                eager(), [](long v) { return v; }, i));
            ASSERT_TRUE(tasks.back().done());
        }
        long sum = 0;
        for (long v : af::gather(std::move(tasks))) sum += v;
        EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
        EXPECT_EQ(af::all_tasks().size(), 1u);  // only main
    });
}

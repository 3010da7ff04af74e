// The core contract: af::run, af::async, af::await, values, exceptions, scheduling order.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom " + std::to_string(c)), code(c) {}
    int code;
};
}  // namespace

TEST(Run, ReturnsMainValue) {
    EXPECT_EQ(af::run([] { return 42; }), 42);
    EXPECT_EQ(af::run([](int a, int b) { return a + b; }, 2, 3), 5);
}

TEST(Run, RethrowsMainExceptionWithItsType) {
    try {
        af::run([]() -> int { throw CustomError(7); });
        FAIL() << "no exception";
    } catch (const CustomError& e) {
        EXPECT_EQ(e.code, 7);
    }
}

TEST(Run, NestedRunThrowsRuntimeError) {
    af::run([] { EXPECT_THROW(af::run([] { return 1; }), af::RuntimeError); });
}

TEST(Run, MoveOnlyResult) {
    auto p = af::run([] { return std::unique_ptr<int>(new int(5)); });
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, 5);
}

TEST(Await, ValueOfAnotherTask) {
    int v = af::run([] {
        auto t = af::async([] {
            af::sleep(1ms);
            return 21;
        });
        return af::await(t) * 2;
    });
    EXPECT_EQ(v, 42);
}

TEST(Await, ExceptionKeepsItsType) {
    af::run([] {
        auto t = af::async([]() -> int { throw CustomError(3); });
        try {
            af::await(t);
            ADD_FAILURE() << "no exception";
        } catch (const CustomError& e) {
            EXPECT_EQ(e.code, 3);
        }
        EXPECT_TRUE(t.done());
        EXPECT_FALSE(t.cancelled());
        EXPECT_NE(t.exception(), nullptr);
    });
}

TEST(Await, MoveOnlyResultMovedOut) {
    af::run([] {
        auto t = af::async([] { return std::unique_ptr<std::string>(new std::string("hi")); });
        std::unique_ptr<std::string> s = af::await(std::move(t));
        ASSERT_TRUE(s);
        EXPECT_EQ(*s, "hi");
    });
}

TEST(Await, VoidTask) {
    af::run([] {
        bool ran = false;
        auto t = af::async([&] { ran = true; });
        af::await(t);
        EXPECT_TRUE(ran);
        EXPECT_TRUE(t.done());
    });
}

TEST(Await, DoneTaskReturnsWithoutSuspending) {
    af::run([] {
        auto t = af::async([] { return 1; });
        af::await(t);
        std::vector<int> order;
        auto other = af::async([&] { order.push_back(2); });
        EXPECT_EQ(af::await(t), 1);  // done already: must not let `other` run
        order.push_back(1);
        af::await(other);
        EXPECT_EQ(order, (std::vector<int>{1, 2}));
    });
}

TEST(Await, SelfAwaitThrows) {
    af::run([] {
        af::Task<void> self;
        auto t = af::async([&] {
            af::sleep(0s);
            EXPECT_THROW(af::await(self), af::RuntimeError);
        });
        self = t;
        af::await(t);
    });
}

TEST(Task, ResultWhilePendingThrowsInvalidState) {
    af::run([] {
        auto t = af::async([] {
            af::sleep(1ms);
            return 1;
        });
        EXPECT_THROW(t.result(), af::InvalidStateError);
        EXPECT_THROW(t.exception(), af::InvalidStateError);
        EXPECT_FALSE(t.done());
        af::await(t);
        EXPECT_EQ(t.result(), 1);
        EXPECT_EQ(t.exception(), nullptr);
    });
}

TEST(Task, StartsOnlyWhenCallerSuspends) {
    af::run([] {
        bool started = false;
        auto t = af::async([&] { started = true; });
        EXPECT_FALSE(started);
        af::sleep(0s);
        EXPECT_TRUE(started);
        EXPECT_TRUE(t.done());
    });
}

TEST(Task, NamesAndIds) {
    af::run([] {
        auto a = af::async([] {});
        auto b = af::async(af::TaskOptions{"worker", 0}, [] {});
        EXPECT_EQ(a.name(), "Task-" + std::to_string(a.id()));
        EXPECT_EQ(b.name(), "worker");
        EXPECT_LT(a.id(), b.id());
        a.set_name("renamed");
        EXPECT_EQ(a.name(), "renamed");
        af::TaskRef r = b;
        EXPECT_EQ(r, b);
        EXPECT_NE(r, a);
        EXPECT_EQ(af::current_task().name(), "main");
        af::await(a);
        af::await(b);
    });
}

TEST(Task, AllTasksListsLiveTasks) {
    af::run([] {
        auto a = af::async([] { af::sleep(5ms); });
        auto tasks = af::all_tasks();
        EXPECT_EQ(tasks.size(), 2u);  // main and a
        bool found = false;
        for (auto& t : tasks) found |= t == a;
        EXPECT_TRUE(found);
        af::await(a);
        EXPECT_EQ(af::all_tasks().size(), 1u);
    });
}

TEST(Task, ArgumentsAreDecayCopiedAndCallableDestroyedAfterRun) {
    auto token = std::make_shared<int>(1);
    std::weak_ptr<int> watch = token;
    af::run([&] {
        auto t = af::async(
            [](std::shared_ptr<int> p, std::string s) { return *p + static_cast<int>(s.size()); },
            token, std::string("abc"));
        token.reset();
        EXPECT_FALSE(watch.expired());  // the task holds its copy
        EXPECT_EQ(af::await(t), 4);
        EXPECT_TRUE(watch.expired());  // released once the task ran, handle still alive
    });
}

TEST(Task, AddDoneCallbackRunsSoonAfterCompletion) {
    af::run([] {
        std::vector<std::string> log;
        auto t = af::async([&] {
            log.push_back("body");
            return 5;
        });
        t.add_done_callback(
            [&](af::TaskRef r) { log.push_back("cb " + std::to_string(r.done())); });
        af::await(t);
        af::sleep(0s);
        EXPECT_EQ(log, (std::vector<std::string>{"body", "cb 1"}));
        t.add_done_callback([&](af::TaskRef) { log.push_back("late"); });
        af::sleep(0s);
        EXPECT_EQ(log.back(), "late");
    });
}

TEST(Scheduling, SleepZeroIsFifoRoundRobin) {
    af::run([] {
        std::vector<std::string> order;
        auto worker = [&](std::string name) {
            for (int i = 0; i < 3; ++i) {
                order.push_back(name + std::to_string(i));
                af::sleep(0s);
            }
        };
        auto a = af::async(worker, "a");
        auto b = af::async(worker, "b");
        auto c = af::async(worker, "c");
        af::gather(a, b, c);
        EXPECT_EQ(order,
                  (std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"}));
    });
}

TEST(Scheduling, SleepZeroLetsEveryReadyTaskRunOnceFirst) {
    af::run([] {
        std::vector<int> order;
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 5; ++i) ts.push_back(af::async([&order, i] { order.push_back(i); }));
        af::sleep(0s);
        order.push_back(99);
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 99}));
    });
}

TEST(Scheduling, TimersFireInDeadlineThenArrivalOrder) {
    af::run([] {
        std::vector<int> order;
        auto at = af::Clock::now() + 20ms;
        std::vector<af::Task<void>> ts;
        ts.push_back(af::async([&] {
            af::sleep(30ms);
            order.push_back(30);
        }));
        ts.push_back(af::async([&] {
            af::sleep_until(at);
            order.push_back(1);
        }));
        ts.push_back(af::async([&] {
            af::sleep(5ms);
            order.push_back(5);
        }));
        ts.push_back(af::async([&] {
            af::sleep_until(at);
            order.push_back(2);
        }));
        ts.push_back(af::async([&] {
            af::sleep_until(at);
            order.push_back(3);
        }));
        af::gather(std::move(ts));
        EXPECT_EQ(order, (std::vector<int>{5, 1, 2, 3, 30}));
    });
}

TEST(Scheduling, SleepTakesAtLeastItsDuration) {
    af::run([] {
        auto t0 = af::Clock::now();
        af::sleep(15ms);
        EXPECT_GE(af::Clock::now() - t0, 15ms);
    });
}

TEST(Scheduling, HundredThousandConcurrentTasks) {
    long sum = af::run([] {
        std::vector<af::Task<long>> ts;
        ts.reserve(100000);
        for (long i = 0; i < 100000; ++i)
            ts.push_back(af::async(
                [](long i) {
                    af::sleep(1ms);
                    return i;
                },
                i));
        long s = 0;
        for (long v : af::gather(std::move(ts))) s += v;
        return s;
    });
    EXPECT_EQ(sum, 100000L * 99999L / 2);
}

TEST(Scheduling, TwoLoopsOnTwoThreads) {
    std::vector<int> results(2, 0);
    auto body = [&](int idx) {
        results[static_cast<std::size_t>(idx)] = af::run([idx] {
            int acc = 0;
            std::vector<af::Task<int>> ts;
            for (int i = 0; i < 100; ++i)
                ts.push_back(af::async([i] {
                    af::sleep(1ms);
                    return i;
                }));
            for (int v : af::gather(std::move(ts))) acc += v;
            return acc + idx;
        });
    };
    std::thread a(body, 0), b(body, 1);
    a.join();
    b.join();
    EXPECT_EQ(results[0], 4950);
    EXPECT_EQ(results[1], 4951);
}

TEST(Stacks, PerTaskStackSizeAllowsDeepFrames) {
    af::run([] {
        auto big = af::async(af::TaskOptions{"big", 4 * 1024 * 1024}, [] {
            volatile char buf[2 * 1024 * 1024];
            buf[0] = 1;
            buf[sizeof buf - 1] = 2;
            af::sleep(0s);
            return buf[0] + buf[sizeof buf - 1];
        });
        EXPECT_EQ(af::await(big), 3);
    });
}

TEST(Stacks, DefaultStackSizeIsSettable) {
    std::size_t before = af::default_stack_size();
    EXPECT_EQ(before, 256u * 1024u);
    af::set_default_stack_size(100000);  // rounded up to pages
    EXPECT_GE(af::default_stack_size(), 100000u);
    EXPECT_EQ(af::default_stack_size() % 4096, 0u);
    af::set_default_stack_size(1);  // at least 16 KiB
    EXPECT_EQ(af::default_stack_size(), 16u * 1024u);
    af::set_default_stack_size(before);
}

#if defined(__cpp_aligned_new)
// Task blocks come from a cache of their own; an over-aligned callable or result must still
// get its alignment (C++17's aligned new).
namespace {
struct alignas(64) AlignedCallable {
    char pad[64] = {};
    bool operator()() const { return reinterpret_cast<std::uintptr_t>(this) % 64 == 0; }
};
struct alignas(128) AlignedValue {
    char pad[128] = {};
};
}  // namespace

TEST(TaskBlocks, OverAlignedCallableAndResultKeepTheirAlignment) {
    af::run([] {
        for (int i = 0; i < 50; ++i) {
            EXPECT_TRUE(af::await(af::async(AlignedCallable{})));
            auto t = af::async([] { return AlignedValue{}; });
            af::await(t);
            EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&t.result()) % 128, 0u);
        }
    });
}
#endif

TEST(TaskBlocks, BlocksOfManySizesAreReusedWithoutMixingUp) {
    // Tasks with results and callables of different sizes, created and destroyed in waves:
    // the per-thread cache hands blocks back by size, and every value stays intact.
    af::run([] {
        for (int wave = 0; wave < 5; ++wave) {
            std::vector<af::Task<std::string>> small;
            std::vector<af::Task<std::vector<long>>> large;
            for (int i = 0; i < 200; ++i) {
                small.push_back(af::async([](int i) { return std::to_string(i); }, i));
                std::array<long, 40> big{};
                big[0] = i;
                large.push_back(af::async(
                    [big](int w) {
                        return std::vector<long>{big[0], static_cast<long>(w)};
                    },
                    wave));
            }
            auto s = af::gather(std::move(small));
            auto l = af::gather(std::move(large));
            for (int i = 0; i < 200; ++i) {
                EXPECT_EQ(s[static_cast<std::size_t>(i)], std::to_string(i));
                EXPECT_EQ(l[static_cast<std::size_t>(i)], (std::vector<long>{i, wave}));
            }
        }
    });
}

// Blocks are carved from regions of their loop's thread; the last handle of a task may go on
// another thread, whose cache then holds the block, and the region goes back only when every
// block of it did. Run under TSan and Valgrind in CI.
TEST(TaskBlocks, BlocksFreedOnAnotherThreadGoBackSafely) {
    for (int round = 0; round < 3; ++round) {
        std::vector<af::Task<long>> kept;
        af::run([&] {
            std::vector<af::Task<long>> tasks;
            for (long i = 0; i < 5000; ++i) tasks.push_back(af::async([i] { return i * 2; }));
            auto values = af::gather(tasks);
            for (long i = 0; i < 5000; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i * 2);
            kept = std::move(tasks);
        });
        std::thread other([&kept] {
            kept.clear();  // the blocks join this thread's cache, and go back when it ends
        });
        other.join();
    }
}

namespace {
template <class F>
std::string runtime_error_of(F&& f) {
    try {
        f();
    } catch (const af::RuntimeError& e) {
        return e.what();
    }
    return "(nothing thrown)";
}
}  // namespace

// Every API that needs a running loop refuses with the same sentence, which names the API
// and says what to use instead (one rule, detail::loop_checked / current_task_checked).
TEST(Misuse, OutsideARunningLoopEveryApiNamesItselfAndAfRun) {
    auto outside = [](const char* what) {
        return std::string("asyncfiber: ") + what + " called outside a running loop (use af::run)";
    };
    EXPECT_EQ(runtime_error_of([] { af::async([] {}); }), outside("af::async"));
    EXPECT_EQ(runtime_error_of([] { af::current_task(); }), outside("af::current_task"));
    EXPECT_EQ(runtime_error_of([] { af::all_tasks(); }), outside("af::all_tasks"));
    EXPECT_EQ(runtime_error_of([] { af::Loop::current(); }), outside("af::Loop::current"));
    EXPECT_EQ(runtime_error_of([] { af::dump_tasks(std::cerr); }), outside("af::dump_tasks"));
    EXPECT_EQ(runtime_error_of([] { af::debug::FedStream s; }), outside("af::debug::FedStream"));
    EXPECT_EQ(runtime_error_of([] { af::sleep(1ms); }), outside("af::sleep"));
    EXPECT_EQ(runtime_error_of([] { af::to_thread([] {}); }), outside("af::to_thread"));
    EXPECT_EQ(runtime_error_of([] {
                  af::Event e;
                  e.wait();
              }),
              outside("Event::wait"));
}

// On the loop's own stack (a callback) the sentence says which rule is broken instead.
TEST(Misuse, OutsideATaskSaysSo) {
    std::string msg;
    af::run([&] {
        af::Loop::current().call_soon([&] { msg = runtime_error_of([] { af::sleep(1ms); }); });
        af::sleep(10ms);
    });
    EXPECT_EQ(msg,
              "asyncfiber: af::sleep called outside a task (from the loop's own stack, e.g. "
              "a callback)");
}

// An unnamed task is "Task-<id>" wherever it is shown, from one rule (detail::TaskName): its
// handle, the dump and the exception handler's report of an exception never retrieved.
TEST(TaskName, TheDefaultNameIsTheSameInEveryReport) {
    std::vector<std::string> reported;
    std::string expected, dump;
    af::run([&] {
        af::Loop::current().set_exception_handler(
            [&](const af::ExceptionContext& c) { reported.push_back(c.task_name); });
        {
            auto t = af::async([] {
                af::sleep(1ms);
                throw std::runtime_error("never retrieved");
            });
            expected = "Task-" + std::to_string(t.id());
            EXPECT_EQ(t.name(), expected);
            std::ostringstream os;
            af::dump_tasks(os);
            dump = os.str();
            af::sleep(10ms);
        }  // the last handle goes: the exception was never retrieved
        af::sleep(1ms);
    });
    EXPECT_NE(dump.find(expected), std::string::npos) << dump;
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(reported[0], expected);
}

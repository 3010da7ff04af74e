// af::gather and af::gather_settled.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

TEST(Gather, TupleInArgumentOrderWithVoidAsNone) {
    af::run([] {
        auto a = af::async([] {
            af::sleep(3ms);
            return 1;
        });
        auto b = af::async([] { return std::string("two"); });
        auto r = af::gather(
            a, b, [] { af::sleep(1ms); }, [] { return 4.5; });
        EXPECT_EQ(std::get<0>(r), 1);
        EXPECT_EQ(std::get<1>(r), "two");
        EXPECT_EQ(std::get<2>(r), af::None{});
        EXPECT_EQ(std::get<3>(r), 4.5);
    });
}

TEST(Gather, VectorKeepsOrderNotCompletionOrder) {
    af::run([] {
        std::vector<af::Task<int>> ts;
        for (int i = 0; i < 5; ++i)
            ts.push_back(af::async([i] {
                af::sleep(std::chrono::milliseconds(10 - 2 * i));
                return i;
            }));
        EXPECT_EQ(af::gather(std::move(ts)), (std::vector<int>{0, 1, 2, 3, 4}));
    });
}

TEST(Gather, CallablesStartLeftToRight) {
    af::run([] {
        std::vector<int> order;
        af::gather([&] { order.push_back(1); }, [&] { order.push_back(2); },
                   [&] { order.push_back(3); });
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    });
}

// asyncio.gather(a(), b()) starts a, then b. Its natural port, gather(af::async(a),
// af::async(b)), spawns the tasks in an order the compiler picks (g++ evaluates function
// arguments right to left): the tasks a gather call creates start in argument order, with
// either compiler.
TEST(Gather, UnstartedTasksStartInArgumentOrder) {
    af::run([] {
        std::vector<int> order;
        af::gather(af::async([&] { order.push_back(1); }), af::async([&] { order.push_back(2); }),
                   af::async([&] { order.push_back(3); }));
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
        order.clear();
        af::gather_settled(af::async([&] { order.push_back(1); }),
                           af::async([&] { order.push_back(2); }));
        EXPECT_EQ(order, (std::vector<int>{1, 2}));
    });
}

// The same rule whatever the compiler: tasks the call receives as temporaries that were
// spawned in the opposite order take each other's places in the ready queue; what is queued
// between them (another task) keeps its place, and a child that has already started is left
// alone.
TEST(Gather, TemporariesTakeEachOtherPlacesOnly) {
    af::run([] {
        std::vector<std::string> order;
        auto started = af::async([&] {
            order.push_back("started");
            af::sleep(1ms);
        });
        af::sleep(0s);
        auto t3 = af::async([&] { order.push_back("3"); });
        auto other = af::async([&] { order.push_back("other"); });
        auto t2 = af::async([&] { order.push_back("2"); });
        auto t1 = af::async([&] { order.push_back("1"); });
        af::gather(std::move(t1), started, std::move(t2), std::move(t3));
        EXPECT_EQ(order, (std::vector<std::string>{"started", "1", "other", "2", "3"}));
        af::await(other);
    });
}

// Tasks passed by name, and the vector forms, keep their creation order, as asyncio starts
// `x = create_task(f()); y = create_task(g()); await gather(y, x)`: x first.
TEST(Gather, TasksPassedByNameStartInCreationOrder) {
    af::run([] {
        std::vector<std::string> order;
        auto x = af::async([&] { order.push_back("x"); });
        auto y = af::async([&] { order.push_back("y"); });
        af::gather(y, x);
        EXPECT_EQ(order, (std::vector<std::string>{"x", "y"}));
        order.clear();
        std::vector<af::Task<void>> v;
        for (int i = 1; i <= 3; ++i)
            v.push_back(af::async([&order, i] { order.push_back(std::to_string(i)); }));
        std::reverse(v.begin(), v.end());
        af::gather(v);
        EXPECT_EQ(order, (std::vector<std::string>{"1", "2", "3"}));
    });
}

TEST(Gather, EmptyVectorReturnsAtOnce) {
    af::run([] { EXPECT_TRUE(af::gather(std::vector<af::Task<int>>{}).empty()); });
}

TEST(Gather, MoveOnlyValues) {
    af::run([] {
        auto r = af::gather([] { return std::unique_ptr<int>(new int(1)); },
                            [] { return std::unique_ptr<int>(new int(2)); });
        EXPECT_EQ(*std::get<0>(r) + *std::get<1>(r), 3);
    });
}

TEST(Gather, FirstExceptionPropagatesAtOnceOthersKeepRunning) {
    af::run([] {
        auto slow = af::async([] {
            af::sleep(30ms);
            return 1;
        });
        auto bad = af::async([]() -> int {
            af::sleep(1ms);
            throw std::invalid_argument("bad");
        });
        auto t0 = af::Clock::now();
        EXPECT_THROW(af::gather(slow, bad), std::invalid_argument);
        EXPECT_LT(af::Clock::now() - t0, 25ms);  // did not wait for `slow`
        EXPECT_FALSE(slow.done());
        EXPECT_EQ(af::await(slow), 1);  // still running, not cancelled
    });
}

// A gather of more than 16 children keeps its bookkeeping on the heap: the child that failed
// first in time (not in position) is the one whose exception comes out.
TEST(Gather, LargeVectorRethrowsTheFirstFailureInTime) {
    af::run([] {
        std::vector<af::Task<int>> tasks;
        for (int i = 0; i < 40; ++i) {
            tasks.push_back(af::async([i] {
                if (i == 25) {
                    af::sleep(20ms);
                    throw std::runtime_error("child 25");
                }
                if (i == 30) {
                    af::sleep(1ms);
                    throw std::runtime_error("child 30");
                }
                af::sleep(0ms);
                return i;
            }));
        }
        std::vector<af::Task<int>> kept = tasks;
        try {
            af::gather(std::move(tasks));
            ADD_FAILURE() << "gather returned";
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "child 30");
        }
        EXPECT_FALSE(kept[25].done());  // still running: gather did not wait for it
        EXPECT_THROW(af::await(kept[25]), std::runtime_error);
        EXPECT_EQ(kept[39].result(), 39);
    });
}

TEST(Gather, ChildCancelledPropagatesCancelledError) {
    af::run([] {
        auto a = af::async([] { af::sleep(10s); });
        auto b = af::async([] { af::sleep(1ms); });
        auto canceller = af::async([&] {
            af::sleep(2ms);
            a.cancel();
        });
        EXPECT_THROW(af::gather(a, b), af::CancelledError);
        af::await(canceller);
    });
}

TEST(Gather, CancellingTheGathererCancelsChildren) {
    af::run([] {
        std::vector<af::Task<void>> kids;
        for (int i = 0; i < 3; ++i) kids.push_back(af::async([] { af::sleep(10s); }));
        auto g = af::async([&] { af::gather(kids); });
        af::sleep(1ms);
        g.cancel();
        EXPECT_THROW(af::await(g), af::CancelledError);
        for (auto& k : kids) EXPECT_TRUE(k.cancelled());
    });
}

TEST(GatherSettled, ReportsEachOutcome) {
    af::run([] {
        auto ok = af::async([] { return 1; });
        auto bad = af::async([]() -> int { throw std::runtime_error("boom"); });
        auto cancelled = af::async([] {
            af::sleep(10s);
            return 3;
        });
        auto canceller = af::async([&] {
            af::sleep(1ms);
            cancelled.cancel();
        });
        auto r = af::gather_settled(ok, bad, cancelled);
        EXPECT_TRUE(std::get<0>(r).ok());
        EXPECT_EQ(std::get<0>(r).value(), 1);
        EXPECT_FALSE(std::get<1>(r).ok());
        EXPECT_FALSE(std::get<1>(r).cancelled());
        EXPECT_THROW(std::rethrow_exception(std::get<1>(r).error()), std::runtime_error);
        EXPECT_THROW(std::get<1>(r).value(), std::runtime_error);
        EXPECT_TRUE(std::get<2>(r).cancelled());
        EXPECT_THROW(std::rethrow_exception(std::get<2>(r).error()), af::CancelledError);
        af::await(canceller);
    });
}

namespace {
// A value whose move constructor throws while `moves_throw` is set, and that counts the
// instances alive.
struct ThrowingMove {
    static int live;
    static bool moves_throw;
    int v;
    explicit ThrowingMove(int x) : v(x) { ++live; }
    ThrowingMove(const ThrowingMove& o) : v(o.v) { ++live; }
    ThrowingMove(ThrowingMove&& o) : v(o.v) {
        if (moves_throw) throw std::runtime_error("move");
        ++live;
    }
    ThrowingMove& operator=(const ThrowingMove&) = delete;
    ~ThrowingMove() { --live; }
};
int ThrowingMove::live = 0;
bool ThrowingMove::moves_throw = false;
}  // namespace

// Assigning an Outcome whose value throws while it moves: the exception reaches the caller
// and the target is still a whole Outcome (not ok(), holding that exception as its error),
// destroyed once. It used to be destroyed before the move and left without value or error.
TEST(GatherSettled, OutcomeAssignmentSurvivesAThrowingMove) {
    {
        auto a = af::Outcome<ThrowingMove>::of_value(ThrowingMove(1));
        auto b = af::Outcome<ThrowingMove>::of_value(ThrowingMove(2));
        EXPECT_EQ(ThrowingMove::live, 2);
        ThrowingMove::moves_throw = true;
        EXPECT_THROW(a = b, std::runtime_error);  // b is copied, then the copy moved into a
        ThrowingMove::moves_throw = false;
        EXPECT_FALSE(a.ok());
        EXPECT_FALSE(a.cancelled());
        ASSERT_TRUE(a.error());
        EXPECT_THROW(a.value(), std::runtime_error);
        EXPECT_EQ(ThrowingMove::live, 1);  // b's value only
        a = b;                             // a whole Outcome takes a value again
        ASSERT_TRUE(a.ok());
        EXPECT_EQ(a.value().v, 2);
        EXPECT_EQ(ThrowingMove::live, 2);
        a = af::Outcome<ThrowingMove>::of_error(std::make_exception_ptr(std::logic_error("x")),
                                                false);
        EXPECT_FALSE(a.ok());
        EXPECT_THROW(a.value(), std::logic_error);
        EXPECT_EQ(ThrowingMove::live, 1);
    }
    EXPECT_EQ(ThrowingMove::live, 0);
}

TEST(GatherSettled, VectorAndVoid) {
    af::run([] {
        std::vector<af::Task<void>> ts;
        ts.push_back(af::async([] {}));
        ts.push_back(af::async([] { throw std::logic_error("x"); }));
        auto r = af::gather_settled(std::move(ts));
        ASSERT_EQ(r.size(), 2u);
        EXPECT_TRUE(r[0].ok());
        EXPECT_FALSE(r[1].ok());
    });
}

TEST(GatherSettled, CancellingTheCallerCancelsChildrenThenThrows) {
    af::run([] {
        std::vector<af::Task<int>> kids;
        for (int i = 0; i < 2; ++i)
            kids.push_back(af::async([] {
                af::sleep(10s);
                return 1;
            }));
        auto g = af::async([&] { af::gather_settled(kids); });
        af::sleep(1ms);
        g.cancel();
        EXPECT_THROW(af::await(g), af::CancelledError);
        for (auto& k : kids) EXPECT_TRUE(k.cancelled());
    });
}

// ---- when gather wakes its caller (asyncio's order) ----

TEST(GatherTiming, CallerWakesTwoIterationsAfterTheDecidingChild) {
    af::run([] {
        std::vector<std::string> log;
        auto a = af::async([&] {
            log.push_back("a done");
            return 1;
        });
        auto ticker = af::async([&] {
            for (int i = 0; i < 4; ++i) {
                log.push_back("tick" + std::to_string(i));
                af::sleep(0s);
            }
        });
        // As asyncio: a's completion queues gather's done callback (one iteration), which
        // completes the outer future, whose callback wakes this task (one more).
        auto r = af::gather(std::vector<af::Task<int>>{a});
        log.push_back("gathered");
        EXPECT_EQ(r, std::vector<int>{1});
        af::await(ticker);
        EXPECT_EQ(log, (std::vector<std::string>{"a done", "tick0", "tick1", "gathered", "tick2",
                                                 "tick3"}));
    });
}

TEST(GatherTiming, AlreadyDecidedGatherDoesNotSuspend) {
    af::run([] {
        auto a = af::async([] { return 1; });
        auto b = af::async([]() -> int { throw std::runtime_error("b failed"); });
        auto slow = af::async([] {
            af::sleep(1ms);
            return 3;
        });
        af::sleep(0s);  // a and b are done, slow is sleeping
        bool other_ran = false;
        auto other = af::async([&] { other_ran = true; });
        // As Python 3.12+: the outcome is decided at the call (b failed), so no suspension.
        EXPECT_THROW(af::gather(a, b, slow), std::runtime_error);
        EXPECT_FALSE(other_ran);
        EXPECT_EQ(af::gather(a, a), std::make_tuple(1, 1));
        EXPECT_FALSE(other_ran);
        af::await(other);
        EXPECT_EQ(af::await(slow), 3);
    });
}

// More than 16 children, all ended: the values come back at once, without suspending (and
// without listening to anyone), then a failure among them is rethrown the same way.
TEST(GatherTiming, LargeGatherOfEndedChildrenDoesNotSuspend) {
    af::run([] {
        std::vector<af::Task<int>> tasks;
        for (int i = 0; i < 40; ++i) tasks.push_back(af::async([i] { return i; }));
        auto bad = af::async([]() -> int { throw std::runtime_error("ended badly"); });
        af::sleep(0s);  // every child has run to its end
        bool other_ran = false;
        auto other = af::async([&] { other_ran = true; });
        std::vector<int> values = af::gather(tasks);
        ASSERT_EQ(values.size(), 40u);
        for (int i = 0; i < 40; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i);
        tasks.push_back(bad);
        EXPECT_THROW(af::gather(tasks), std::runtime_error);
        EXPECT_FALSE(other_ran);
        af::await(other);
    });
}

TEST(GatherTiming, CancelAfterTheLastChildEndedStillCancelsTheCaller) {
    af::run([] {
        af::Task<int> child = af::async([] {
            af::sleep(0s);
            return 1;
        });
        std::string outcome;
        auto gatherer = af::async([&] {
            try {
                af::gather(std::vector<af::Task<int>>{child});
                outcome = "ok";
            } catch (const af::CancelledError&) {
                outcome = "cancelled";
                throw;
            }
        });
        // Order: gatherer waits, child ends (its hop is queued), then the canceller runs
        // before the hop: asyncio cannot cancel the (all done) children, so the task's own
        // cancellation is delivered when the hop wakes it.
        auto canceller = af::async([&] {
            af::sleep(0s);
            EXPECT_TRUE(child.done());
            EXPECT_TRUE(af::TaskRef(gatherer).cancel());
        });
        EXPECT_THROW(af::await(gatherer), af::CancelledError);
        EXPECT_EQ(outcome, "cancelled");
        af::await(canceller);
    });
}

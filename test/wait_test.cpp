// af::wait, af::as_completed, af::shield, af::gather_settled and the loop's call_soon /
// call_later / call_at handles: what asyncfiber adds to the mirrors of CPython's test_tasks.py
// (test/cpython_tasks_test.cpp), and test_events.py's handles (each of those names its model).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
af::Task<int> sleeper(std::chrono::milliseconds d, int v) {
    return af::async([d, v] {
        af::sleep(d);
        return v;
    });
}
bool contains(const std::vector<af::TaskRef>& v, const af::TaskRef& t) {
    return std::find(v.begin(), v.end(), t) != v.end();
}
}  // namespace

// ---- af::wait ----

// A task already done decides a first_completed wait at once (it still suspends, as asyncio's
// wait does).
TEST(Wait, FirstCompletedAlreadyDone) {
    af::run([] {
        auto a = af::async([] { return 1; });
        af::sleep(0s);
        auto b = sleeper(1000ms, 2);
        auto r = af::wait({b, a}, af::ReturnWhen::first_completed);
        EXPECT_EQ(r.done.size(), 1u);
        EXPECT_TRUE(contains(r.done, a));
        b.cancel();
    });
}

// first_exception with no failure waits for all; a cancelled task is not an exception.
TEST(Wait, FirstExceptionIgnoresCancelled) {
    af::run([] {
        auto a = sleeper(10ms, 1);
        auto b = sleeper(1000ms, 2);
        b.cancel();
        auto r = af::wait({a, b}, af::ReturnWhen::first_exception);
        EXPECT_EQ(r.done.size(), 2u);
        EXPECT_TRUE(b.cancelled());
    });
}

// Misuse: an empty list, an empty handle, a task waiting for itself, a call outside a task.
TEST(Wait, Errors) {
    af::run([] {
        EXPECT_THROW(af::wait({}), std::invalid_argument);
        EXPECT_THROW(af::wait({af::TaskRef()}), af::InvalidStateError);  // as everywhere
        EXPECT_THROW(af::wait({af::current_task()}), af::RuntimeError);
    });
    EXPECT_THROW(af::wait({af::TaskRef()}), af::RuntimeError);  // outside a task
}

// A wait decided at the call (its task has ended) still suspends, as asyncio's does: the
// caller resumes two iterations later (the completion callback, then the waiter's wake-up).
TEST(Wait, DecidedAtTheCallStillSuspends) {
    af::run([] {
        auto a = af::async([] { return 1; });
        af::sleep(0s);  // a has ended
        std::vector<std::string> log;
        auto ticker = af::async([&] {
            for (int i = 0; i < 3; ++i) {
                log.push_back("tick" + std::to_string(i));
                af::sleep(0s);
            }
        });
        auto r = af::wait({a});
        log.push_back("waited");
        EXPECT_EQ(r.done.size(), 1u);
        af::await(ticker);
        EXPECT_EQ(log, (std::vector<std::string>{"tick0", "tick1", "waited", "tick2"}));
    });
}

// A cancel that arrives once the wait is decided (its wake-up is on its way) is delivered by
// that wake-up: CancelledError, not the result.
TEST(Wait, CancelAfterTheWaitIsDecided) {
    af::run([] {
        auto a = af::async([] { return 1; });
        af::sleep(0s);
        bool returned = false;
        auto w = af::async([&] {
            af::wait({a});
            returned = true;
        });
        af::sleep(0s);  // w decided its wait at the call and suspended
        EXPECT_TRUE(w.cancel());
        EXPECT_THROW(af::await(w), af::CancelledError);
        EXPECT_FALSE(returned);
        EXPECT_TRUE(w.cancelled());
    });
}

// The waiter is cancelled, and in the same iteration, before it runs, a task decides its
// wait: it leaves with CancelledError and the wake-up queued for it never runs (it would
// touch the waiter's unwound frame).
TEST(Wait, CancelledBeforeTheDecidingTaskEndsInTheSameIteration) {
    af::run([] {
        af::Task<void> w;
        auto canceller = af::async([&] {
            af::sleep(0s);
            w.cancel();
        });
        auto a = af::async([] {
            af::sleep(0s);
            return 1;
        });
        w = af::async([&] { af::wait({a}, af::ReturnWhen::first_completed); });
        EXPECT_THROW(af::await(w), af::CancelledError);
        EXPECT_TRUE(w.cancelled());
        EXPECT_EQ(af::await(a), 1);
        af::await(canceller);
        for (int i = 0; i < 3; ++i) af::sleep(0s);  // the cancelled wake-up goes by harmlessly
    });
}

// ---- as_completed ----

// Tasks already done come out first, in the order given.
TEST(AsCompleted, AlreadyDone) {
    af::run([] {
        auto done = af::async([] { return 7; });
        af::sleep(0s);
        std::vector<af::Task<int>> tasks{sleeper(5ms, 1), done};
        std::vector<int> got;
        for (auto t : af::as_completed(tasks)) got.push_back(af::await(t));
        EXPECT_EQ(got, (std::vector<int>{7, 1}));
    });
}

// Two tasks that end in the same iteration both come out.
TEST(AsCompleted, Concurrent) {
    af::run([] {
        std::vector<af::Task<int>> tasks{sleeper(5ms, 1), sleeper(5ms, 2)};
        int sum = 0;
        for (auto t : af::as_completed(tasks)) sum += af::await(t);
        EXPECT_EQ(sum, 3);
    });
}

// A task given twice comes out once.
TEST(AsCompleted, Duplicates) {
    af::run([] {
        auto a = sleeper(1ms, 5);
        std::vector<af::Task<int>> tasks{a, a};
        int n = 0;
        for (auto t : af::as_completed(tasks)) n += af::await(t);
        EXPECT_EQ(n, 5);
    });
}

// test_tasks.py: test_as_completed_duplicate_coroutines (a task given twice, not last: it
// comes out once and the task after it is not forgotten)
TEST(AsCompleted, DuplicateCoroutines) {
    af::run([] {
        // A hang (the last task never yielded) fails the test instead of blocking it.
        af::timeout(10s, [] {
            std::vector<std::string> result;
            auto c = af::async([] { return std::string("ham"); });
            std::vector<af::Task<std::string>> fs{c, c,
                                                  af::async([] { return std::string("spam"); })};
            for (auto f : af::as_completed(fs)) result.push_back(af::await(f));
            EXPECT_EQ(std::set<std::string>(result.begin(), result.end()),
                      (std::set<std::string>{"ham", "spam"}));
            EXPECT_EQ(result.size(), 2u);
        });
    });
}

// test_tasks.py: test_as_completed_resume_iterator (an element is consumed when it is
// yielded: the loop resumed after a break goes on with the next one)
TEST(AsCompleted, ResumeIterator) {
    af::run([] {
        auto coro = [](int i) { return af::async([i] { return i; }); };
        int iterations = 0;
        auto iterator =
            af::as_completed(std::vector<af::Task<int>>{coro(0), coro(1), coro(2), coro(3)});
        std::vector<int> collected;
        for (auto f : iterator) {
            collected.push_back(af::await(f));
            iterations += 1;
            if (iterations == 2) break;
        }
        EXPECT_EQ(collected.size(), 2u);

        // Resume same iterator:
        for (auto f : iterator) collected.push_back(af::await(f));
        std::sort(collected.begin(), collected.end());  // assertCountEqual
        EXPECT_EQ(collected, (std::vector<int>{0, 1, 2, 3}));
    });
}

// Duplicates are removed in linear time. 100 000 tasks, each given twice, cost a pairwise
// search about 10^10 comparisons (over ten seconds); a linear pass takes milliseconds, so
// the generous bound below tells the two apart on any machine. The tasks are done first:
// only the bookkeeping is timed.
TEST(AsCompleted, DuplicatesRemovedInLinearTime) {
    af::run([] {
        constexpr int n = 100000;
        std::vector<af::Task<int>> tasks;
        tasks.reserve(n);
        for (int i = 0; i < n; ++i) tasks.push_back(af::async([i] { return i; }));
        af::gather(tasks);
        std::vector<af::Task<int>> twice(tasks);
        twice.insert(twice.end(), tasks.begin(), tasks.end());
        std::vector<af::TaskRef> refs(twice.begin(), twice.end());

        auto start = std::chrono::steady_clock::now();
        auto r = af::wait(refs);
        EXPECT_EQ(r.done.size(), static_cast<std::size_t>(n));
        EXPECT_TRUE(r.pending.empty());
        long long sum = 0, count = 0;
        for (auto t : af::as_completed(twice)) {
            sum += af::await(t);
            ++count;
        }
        auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
        EXPECT_EQ(count, n);
        EXPECT_EQ(sum, static_cast<long long>(n) * (n - 1) / 2);
        EXPECT_LT(took_ms, 3000);
    });
}

// Exceptions come out of await of the yielded task, not of the iteration.
TEST(AsCompleted, ExceptionsThroughAwait) {
    af::run([] {
        std::vector<af::Task<int>> tasks{af::async([]() -> int { throw std::runtime_error("e"); }),
                                         sleeper(2ms, 2)};
        int errors = 0, values = 0;
        for (auto t : af::as_completed(tasks)) {
            try {
                values += af::await(t);
            } catch (const std::runtime_error&) {
                ++errors;
            }
        }
        EXPECT_EQ(errors, 1);
        EXPECT_EQ(values, 2);
    });
}

// ---- shield ----

// Cancelling the shield leaves the shielded task running; its value stays reachable.
TEST(Shield, CancelOuter) {
    af::run([] {
        auto inner = sleeper(10ms, 5);
        auto outer = af::shield(inner);
        af::sleep(0s);
        outer.cancel();
        EXPECT_THROW(af::await(outer), af::CancelledError);
        EXPECT_FALSE(inner.cancelled());
        EXPECT_EQ(af::await(inner), 5);
    });
}

// A shielded task that fails after its shield was cancelled is reported once when it fails,
// and counts as retrieved: dropping its last handle reports nothing more.
TEST(Shield, FailureAfterCancelledShieldReportedOnce) {
    int reports = 0;
    af::run([&] {
        af::Loop::current().set_exception_handler([&](const af::ExceptionContext& ctx) {
            ++reports;
            EXPECT_NE(ctx.message.find("shield"), std::string::npos);
        });
        af::Event go;
        auto inner = af::async([&] {
            go.wait();
            throw std::runtime_error("late failure");
        });
        auto outer = af::shield(inner);
        af::sleep(0s);
        outer.cancel();
        EXPECT_THROW(af::await(outer), af::CancelledError);
        go.set();
        af::sleep(0s);
        EXPECT_TRUE(inner.done());
        EXPECT_EQ(reports, 1);
        inner = af::Task<void>();
        outer = af::Task<void>();
        af::sleep(0s);
    });
    EXPECT_EQ(reports, 1);
}

// The shield's cancellation lands after its task ended and woke it, before it ran (the
// task cancels the shield, then fails): the shield ends cancelled, the task keeps its
// failure for whoever awaits it, and nothing is reported or left behind (the ASan build
// checks for a leaked reporter; fuzz/corpus/cancel holds the schedule that found it).
TEST(Shield, CancelledAfterItsTaskEndedLeavesTheOutcomeInTheTask) {
    int reports = 0;
    af::run([&] {
        af::Loop::current().set_exception_handler([&](const af::ExceptionContext&) { ++reports; });
        af::Event go;
        af::Task<void> outer;
        auto inner = af::async([&] {
            go.wait();
            outer.cancel();
            throw std::runtime_error("failed as its shield was cancelled");
        });
        outer = af::shield(inner);
        af::sleep(0s);  // the shield waits for its task, which waits for go
        go.set();
        EXPECT_THROW(af::await(outer), af::CancelledError);
        EXPECT_TRUE(inner.done());
        EXPECT_THROW(af::await(inner), std::runtime_error);
        inner = af::Task<void>();
        outer = af::Task<void>();
        af::sleep(0s);
    });
    EXPECT_EQ(reports, 0);
}

// ---- gather_settled (gather(return_exceptions=True)) ----

// A child cancelled before the gather comes out as a cancelled outcome.
TEST(GatherSettled, CancelledChild) {
    af::run([] {
        std::vector<af::Task<int>> ts{sleeper(1000ms, 1), sleeper(1ms, 2)};
        ts[0].cancel();
        auto r = af::gather_settled(ts);
        ASSERT_EQ(r.size(), 2u);
        EXPECT_TRUE(r[0].cancelled());
        EXPECT_THROW(r[0].value(), af::CancelledError);
        EXPECT_EQ(r[1].value(), 2);
    });
}

// Cancelling the caller of gather_settled cancels the children, waits for their cleanup,
// then throws CancelledError.
TEST(GatherSettled, CancelCaller) {
    af::run([] {
        bool child_cleaned = false;
        auto child = af::async([&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                child_cleaned = true;
                throw;
            }
        });
        auto g = af::async([&] { af::gather_settled(std::vector<af::Task<void>>{child}); });
        af::sleep(1ms);
        g.cancel();
        EXPECT_THROW(af::await(g), af::CancelledError);
        EXPECT_TRUE(child_cleaned);
        EXPECT_TRUE(child.cancelled());
    });
}

// Move-only values through gather_settled.
TEST(GatherSettled, MoveOnly) {
    af::run([] {
        auto r = af::gather_settled([] { return std::unique_ptr<int>(new int(4)); });
        EXPECT_EQ(*std::get<0>(r).value(), 4);
    });
}

// ---- loop handles (test_events.py) ----

// test_events.py: test_call_soon (FIFO order, after the caller suspends)
TEST(LoopHandles, CallSoonOrder) {
    af::run([] {
        std::vector<int> order;
        auto& loop = af::Loop::current();
        loop.call_soon([&] { order.push_back(1); });
        loop.call_soon([&] { order.push_back(2); });
        order.push_back(0);
        af::sleep(0s);
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
    });
}

// test_events.py: test_call_later / test_call_at (ordered by time)
TEST(LoopHandles, CallLaterAndAtOrder) {
    af::run([] {
        std::vector<int> order;
        auto& loop = af::Loop::current();
        loop.call_later(20ms, [&] { order.push_back(3); });
        loop.call_at(af::Clock::now() + 5ms, [&] { order.push_back(1); });
        auto h = loop.call_later(10ms, [&] { order.push_back(2); });
        EXPECT_GE(h.when(), af::Clock::now());
        af::sleep(40ms);
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    });
}

// test_events.py: test_handle_cancel / test_timer_handle_cancel
TEST(LoopHandles, Cancel) {
    af::run([] {
        int ran = 0;
        auto& loop = af::Loop::current();
        auto h1 = loop.call_soon([&] { ++ran; });
        auto h2 = loop.call_later(1ms, [&] { ran += 10; });
        auto h3 = loop.call_later(1ms, [&] { ran += 100; });
        h1.cancel();
        h2.cancel();
        EXPECT_TRUE(h1.cancelled());
        EXPECT_TRUE(h2.cancelled());
        EXPECT_FALSE(h3.cancelled());
        af::sleep(10ms);
        EXPECT_EQ(ran, 100);
        h3.cancel();  // after it ran: harmless
    });
}

// Callbacks can start tasks and wake tasks (call_soon from a task, e.g. Event::set).
TEST(LoopHandles, CallbacksInteractWithTasks) {
    af::run([] {
        af::Event ev;
        auto waiter = af::async([&] {
            ev.wait();
            return 1;
        });
        af::Loop::current().call_later(2ms, [&] { ev.set(); });
        EXPECT_EQ(af::await(waiter), 1);
        // a suspension call from a callback is refused
        bool refused = false;
        af::Loop::current().call_soon([&] {
            try {
                af::sleep(1ms);
            } catch (const af::RuntimeError&) {
                refused = true;
            }
        });
        af::sleep(1ms);
        EXPECT_TRUE(refused);
    });
}

// One error for an empty handle, whatever it is passed to (errors.hpp): InvalidStateError.
// af::wait used to throw std::invalid_argument here while gather and the rest threw
// InvalidStateError.
TEST(EmptyHandle, EveryApiThrowsInvalidStateError) {
    af::run([] {
        af::Task<int> empty;
        EXPECT_THROW(af::wait({empty}), af::InvalidStateError);
        EXPECT_THROW(af::wait({af::async([] { return 1; }), empty}), af::InvalidStateError);
        EXPECT_THROW(af::gather(std::vector<af::Task<int>>{empty}), af::InvalidStateError);
        EXPECT_THROW(af::wait_for(empty, 1s), af::InvalidStateError);
        EXPECT_THROW(af::as_completed(std::vector<af::Task<int>>{empty}), af::InvalidStateError);
        EXPECT_THROW(af::shield(empty), af::InvalidStateError);
        EXPECT_THROW(af::await(empty), af::InvalidStateError);
        EXPECT_THROW(empty.result(), af::InvalidStateError);
        EXPECT_THROW(empty.done(), af::InvalidStateError);
        EXPECT_THROW(af::capture_call_graph(empty), af::InvalidStateError);
    });
}

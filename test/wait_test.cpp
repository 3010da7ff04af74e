// af::wait, af::as_completed, af::shield, af::gather_settled and the loop's call_soon /
// call_later / call_at handles, mirroring CPython's Lib/test/test_asyncio/test_tasks.py and
// test_events.py (each test names its model).
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

// test_tasks.py: test_wait
TEST(Wait, AllCompleted) {
    af::run([] {
        auto a = sleeper(5ms, 1), b = sleeper(10ms, 2);
        auto r = af::wait({a, b});
        EXPECT_EQ(r.done.size(), 2u);
        EXPECT_TRUE(r.pending.empty());
        EXPECT_EQ(a.result() + b.result(), 3);
        // waiting again on done tasks returns at once
        auto r2 = af::wait({a, b});
        EXPECT_EQ(r2.done.size(), 2u);
    });
}

// test_tasks.py: test_wait_first_completed
TEST(Wait, FirstCompleted) {
    af::run([] {
        auto a = sleeper(1000ms, 1), b = sleeper(1ms, 2);
        auto r = af::wait({a, b}, af::ReturnWhen::first_completed);
        ASSERT_EQ(r.done.size(), 1u);
        EXPECT_TRUE(contains(r.done, b));
        EXPECT_TRUE(contains(r.pending, a));
        EXPECT_FALSE(a.done());
        a.cancel();
    });
}

// test_tasks.py: test_wait_really_done (a task already done counts at once)
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

// test_tasks.py: test_wait_first_exception
TEST(Wait, FirstException) {
    af::run([] {
        auto a = sleeper(1000ms, 1);
        auto b = af::async([]() -> int { throw std::runtime_error("x"); });
        auto r = af::wait({a, b}, af::ReturnWhen::first_exception);
        EXPECT_TRUE(contains(r.done, b));
        EXPECT_TRUE(contains(r.pending, a));
        EXPECT_THROW(b.result(), std::runtime_error);
        a.cancel();
    });
}

// test_tasks.py: test_wait_first_exception_in_wait
TEST(Wait, FirstExceptionInWait) {
    af::run([] {
        auto a = sleeper(1000ms, 1);
        auto b = af::async([]() -> int {
            af::sleep(5ms);
            throw std::runtime_error("x");
        });
        auto r = af::wait({a, b}, af::ReturnWhen::first_exception);
        EXPECT_TRUE(contains(r.done, b));
        EXPECT_TRUE(contains(r.pending, a));
        a.cancel();
    });
}

// test_tasks.py: test_wait_with_exception (all_completed waits past the exception)
TEST(Wait, WithException) {
    af::run([] {
        auto a = sleeper(10ms, 1);
        auto b = af::async([]() -> int { throw std::runtime_error("x"); });
        auto r = af::wait({a, b});
        EXPECT_EQ(r.done.size(), 2u);
        EXPECT_EQ(a.result(), 1);
        EXPECT_THROW(b.result(), std::runtime_error);
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

// test_tasks.py: test_wait_with_timeout (the timeout returns, cancels nothing)
TEST(Wait, WithTimeout) {
    af::run([] {
        auto a = sleeper(1ms, 1), b = sleeper(1000ms, 2);
        auto r = af::wait({a, b}, af::ReturnWhen::all_completed, 20ms);
        EXPECT_TRUE(contains(r.done, a));
        EXPECT_TRUE(contains(r.pending, b));
        EXPECT_FALSE(b.done());
        EXPECT_FALSE(b.cancelled());
        b.cancel();
    });
}

// test_tasks.py: test_wait_concurrent_complete
TEST(Wait, ConcurrentComplete) {
    af::run([] {
        auto a = sleeper(5ms, 1), b = sleeper(5ms, 2);
        auto r = af::wait({a, b}, af::ReturnWhen::all_completed, 1ms);
        EXPECT_EQ(r.done.size() + r.pending.size(), 2u);
        af::wait({a, b});
    });
}

// test_tasks.py: test_wait_duplicate_coroutines
TEST(Wait, Duplicates) {
    af::run([] {
        auto a = sleeper(1ms, 1);
        auto r = af::wait({a, a, a});
        EXPECT_EQ(r.done.size(), 1u);
    });
}

// test_tasks.py: test_wait_errors (empty set, misuse)
TEST(Wait, Errors) {
    af::run([] {
        EXPECT_THROW(af::wait({}), std::invalid_argument);
        EXPECT_THROW(af::wait({af::TaskRef()}), std::invalid_argument);
        EXPECT_THROW(af::wait({af::current_task()}), af::RuntimeError);
    });
    EXPECT_THROW(af::wait({af::TaskRef()}), af::RuntimeError);  // outside a task
}

// Cancelling a task in af::wait cancels the wait only (asyncio.wait does not cancel the tasks).
TEST(Wait, CancelDoesNotCancelTasks) {
    af::run([] {
        auto a = sleeper(20ms, 1);
        auto w = af::async([&] { af::wait({a}); });
        af::sleep(1ms);
        w.cancel();
        EXPECT_THROW(af::await(w), af::CancelledError);
        EXPECT_FALSE(a.cancelled());
        EXPECT_EQ(af::await(a), 1);
    });
}

// ---- as_completed ----

// test_tasks.py: test_as_completed
TEST(AsCompleted, CompletionOrder) {
    af::run([] {
        std::vector<af::Task<int>> tasks{sleeper(30ms, 3), sleeper(10ms, 1), sleeper(20ms, 2)};
        std::vector<int> got;
        for (auto t : af::as_completed(tasks)) got.push_back(af::await(t));
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    });
}

// test_tasks.py: test_as_completed_with_timeout
TEST(AsCompleted, WithTimeout) {
    af::run([] {
        std::vector<af::Task<int>> tasks{sleeper(1ms, 1), sleeper(1000ms, 2)};
        std::vector<int> got;
        bool timed_out = false;
        try {
            for (auto t : af::as_completed(tasks, 30ms)) got.push_back(af::await(t));
        } catch (const af::TimeoutError&) {
            timed_out = true;
        }
        EXPECT_TRUE(timed_out);
        EXPECT_EQ(got, std::vector<int>{1});
        EXPECT_FALSE(tasks[1].done());  // nothing is cancelled
        tasks[1].cancel();
    });
}

// test_tasks.py: test_as_completed_with_unused_timeout
TEST(AsCompleted, WithUnusedTimeout) {
    af::run([] {
        std::vector<af::Task<int>> tasks{sleeper(1ms, 1)};
        int n = 0;
        for (auto t : af::as_completed(tasks, 10s)) n += af::await(t);
        EXPECT_EQ(n, 1);
    });
}

// test_tasks.py: test_as_completed_reverse_wait (already-done tasks come out first)
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

// test_tasks.py: test_as_completed_concurrent
TEST(AsCompleted, Concurrent) {
    af::run([] {
        std::vector<af::Task<int>> tasks{sleeper(5ms, 1), sleeper(5ms, 2)};
        int sum = 0;
        for (auto t : af::as_completed(tasks)) sum += af::await(t);
        EXPECT_EQ(sum, 3);
    });
}

// test_tasks.py: test_as_completed_duplicate_coroutines
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
            std::vector<af::Task<std::string>> fs{c, c, af::async([] { return std::string("spam"); })};
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
        auto iterator = af::as_completed(std::vector<af::Task<int>>{coro(0), coro(1), coro(2), coro(3)});
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

// test_tasks.py: test_shield_result
TEST(Shield, Result) {
    af::run([] {
        auto inner = sleeper(1ms, 42);
        EXPECT_EQ(af::await(af::shield(inner)), 42);
    });
}

// test_tasks.py: test_shield_exception
TEST(Shield, Exception) {
    af::run([] {
        auto inner = af::async([]() -> int {
            af::sleep(1ms);
            throw std::runtime_error("x");
        });
        EXPECT_THROW(af::await(af::shield(inner)), std::runtime_error);
    });
}

// test_tasks.py: test_shield_cancel_inner
TEST(Shield, CancelInner) {
    af::run([] {
        auto inner = sleeper(1000ms, 1);
        auto outer = af::shield(inner);
        af::sleep(0s);
        inner.cancel();
        EXPECT_THROW(af::await(outer), af::CancelledError);
        EXPECT_TRUE(outer.cancelled());
    });
}

// test_tasks.py: test_shield_cancel_outer
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

// test_tasks.py: test_shield_shortcut
TEST(Shield, Shortcut) {
    af::run([] {
        auto inner = af::async([] { return 1; });
        af::sleep(0s);
        auto outer = af::shield(inner);
        EXPECT_TRUE(outer == inner);
        EXPECT_EQ(af::await(outer), 1);
    });
}

// test_tasks.py: test_shield_effect (cancelling the awaiting task leaves the inner running)
TEST(Shield, Effect) {
    af::run([] {
        auto inner = sleeper(10ms, 3);
        auto waiter = af::async([&] { return af::await(af::shield(inner)); });
        af::sleep(1ms);
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        EXPECT_EQ(af::await(inner), 3);
    });
}

// ---- gather_settled (gather(return_exceptions=True)) ----

// test_tasks.py: test_gather_return_exceptions / test_return_exceptions
TEST(GatherSettled, ReturnExceptions) {
    af::run([] {
        auto r = af::gather_settled([] { return 1; }, []() -> int { throw std::runtime_error("x"); },
                                    [] { af::sleep(1ms); });
        EXPECT_TRUE(std::get<0>(r).ok());
        EXPECT_EQ(std::get<0>(r).value(), 1);
        EXPECT_FALSE(std::get<1>(r).ok());
        EXPECT_THROW(std::rethrow_exception(std::get<1>(r).error()), std::runtime_error);
        EXPECT_TRUE(std::get<2>(r).ok());
    });
}

// test_tasks.py: test_gather_shield / cancelled children come out as cancelled outcomes
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

// test_tasks.py: test_cancel_gather_2 (cancelling the gatherer cancels the children, then
// raises CancelledError once they are done)
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

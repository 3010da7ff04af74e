// af::timeout / af::timeout_at / af::wait_for, mirroring CPython's
// Lib/test/test_asyncio/test_timeouts.py and test_waitfor.py (each test names its model).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
bool cause_is_cancelled(const af::TimeoutError& e) {
    try {
        std::rethrow_if_nested(e);
    } catch (const af::CancelledError&) {
        return true;
    } catch (...) {
    }
    return false;
}

// Runs for `d` without suspending: nothing else on the loop runs meanwhile.
template <class Rep, class Period>
void busy_for(std::chrono::duration<Rep, Period> d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

// test_waitfor.py's SlowTask: runs for kTimeout, ignoring cancellation requests.
struct SlowTask {
    static constexpr std::chrono::milliseconds kTimeout{200};
    bool exited = false;
    void run() {
        auto exitat = std::chrono::steady_clock::now() + kTimeout;
        while (true) {
            auto tosleep = exitat - std::chrono::steady_clock::now();
            if (tosleep <= tosleep.zero()) break;
            try {
                af::sleep(tosleep);
            } catch (const af::CancelledError&) {
            }
        }
        exited = true;
    }
};
constexpr std::chrono::milliseconds SlowTask::kTimeout;
}  // namespace

// test_timeouts.py: test_timeout_basic
TEST(Timeouts, TimeoutBasic) {
    af::run([] {
        auto t0 = af::Clock::now();
        EXPECT_THROW(af::timeout(10ms, [] { af::sleep(10s); }), af::TimeoutError);
        EXPECT_LT(af::Clock::now() - t0, 5s);
    });
}

// test_timeouts.py: test_timeout_at_basic
TEST(Timeouts, TimeoutAtBasic) {
    af::run([] {
        auto deadline = af::Clock::now() + 10ms;
        EXPECT_THROW(af::timeout_at(deadline, [] { af::sleep(10s); }), af::TimeoutError);
        EXPECT_GE(af::Clock::now(), deadline);
    });
}

// test_timeouts.py: test_nested_timeouts (same deadline: only the outer scope reports)
TEST(Timeouts, NestedTimeouts) {
    af::run([] {
        bool cancelled = false;
        auto deadline = af::Clock::now() + 10ms;
        EXPECT_THROW(af::timeout_at(deadline,
                                    [&] {
                                        try {
                                            af::timeout_at(deadline, [] { af::sleep(10s); });
                                        } catch (const af::CancelledError&) {
                                            cancelled = true;
                                            throw;
                                        }
                                    }),
                     af::TimeoutError);
        EXPECT_TRUE(cancelled);
        EXPECT_EQ(af::current_task().cancelling(), 0);
    });
}

// test_timeouts.py: test_waiter_cancelled
TEST(Timeouts, WaiterCancelled) {
    af::run([] {
        bool cancelled = false;
        EXPECT_THROW(af::timeout(10ms,
                                 [&] {
                                     try {
                                         af::sleep(10s);
                                     } catch (const af::CancelledError&) {
                                         cancelled = true;
                                         throw;
                                     }
                                 }),
                     af::TimeoutError);
        EXPECT_TRUE(cancelled);
    });
}

// test_timeouts.py: test_timeout_not_called
TEST(Timeouts, TimeoutNotCalled) {
    af::run([] {
        int r = af::timeout(10s, [] {
            af::sleep(1ms);
            return 42;
        });
        EXPECT_EQ(r, 42);
        EXPECT_EQ(af::current_task().cancelling(), 0);
        af::sleep(0s);  // no cancellation left behind
    });
}

// test_timeouts.py: test_timeout_disabled / test_timeout_at_disabled (None -> max)
TEST(Timeouts, TimeoutDisabled) {
    af::run([] {
        af::timeout_at(af::Clock::time_point::max(), [] { af::sleep(5ms); });
        af::timeout(std::chrono::hours::max(), [] { af::sleep(5ms); });
    });
}

// test_timeouts.py: test_timeout_zero
TEST(Timeouts, TimeoutZero) {
    af::run([] { EXPECT_THROW(af::timeout(0s, [] { af::sleep(10s); }), af::TimeoutError); });
}

// test_timeouts.py: test_timeout_zero_sleep_zero
TEST(Timeouts, TimeoutZeroSleepZero) {
    af::run([] { EXPECT_THROW(af::timeout(0s, [] { af::sleep(0s); }), af::TimeoutError); });
}

// test_timeouts.py: test_timeout_in_the_past_sleep_zero
TEST(Timeouts, TimeoutInThePastSleepZero) {
    af::run([] { EXPECT_THROW(af::timeout(-11s, [] { af::sleep(0s); }), af::TimeoutError); });
}

// test_timeouts.py: test_foreign_exception_passed
TEST(Timeouts, ForeignExceptionPassed) {
    af::run([] {
        EXPECT_THROW(af::timeout(10ms, []() -> void { throw std::out_of_range("k"); }),
                     std::out_of_range);
    });
}

// test_timeouts.py: test_foreign_exception_on_timeout
TEST(Timeouts, ForeignExceptionOnTimeout) {
    af::run([] {
        auto crash = [] {
            try {
                af::sleep(1s);
            } catch (const af::CancelledError&) {
                throw std::domain_error("1/0");
            }
        };
        EXPECT_THROW(af::timeout(10ms, crash), std::domain_error);
        EXPECT_EQ(af::current_task().cancelling(), 0);
        af::sleep(1ms);  // the expired scope left no cancellation behind
    });
}

// test_timeouts.py: test_foreign_cancel_doesnt_timeout_if_not_expired
TEST(Timeouts, ForeignCancelDoesntTimeoutIfNotExpired) {
    af::run([] {
        EXPECT_THROW(af::timeout(10s,
                                 [] {
                                     af::current_task().cancel();
                                     af::sleep(10s);
                                 }),
                     af::CancelledError);
        EXPECT_EQ(af::current_task().uncancel(), 0);
    });
}

// test_timeouts.py: test_outer_task_is_not_cancelled
TEST(Timeouts, OuterTaskIsNotCancelled) {
    af::run([] {
        auto task = af::async([] { EXPECT_THROW(af::timeout(1ms, [] { af::sleep(10s); }), af::TimeoutError); });
        af::await(task);
        EXPECT_FALSE(task.cancelled());
        EXPECT_TRUE(task.done());
    });
}

// test_timeouts.py: test_nested_timeouts_concurrent
TEST(Timeouts, NestedTimeoutsConcurrent) {
    af::run([] {
        EXPECT_THROW(af::timeout(2ms,
                                 [] {
                                     EXPECT_THROW(af::timeout(100ms,
                                                              [] {
                                                                  std::this_thread::sleep_for(10ms);
                                                                  af::sleep(1s);
                                                              }),
                                                  af::CancelledError);
                                     throw af::CancelledError();  // as assertRaises lets it out
                                 }),
                     af::TimeoutError);
    });
}

// test_timeouts.py: test_nested_timeouts_loop_busy. Both deadlines pass while the loop is
// busy, so both scopes cancel the task: the inner one sees a request it did not make and lets
// the CancelledError through (in CPython too, where assertRaises(TimeoutError) does not catch
// it), the outer one turns it into TimeoutError, and the long sleep never runs.
TEST(Timeouts, NestedTimeoutsLoopBusy) {
    af::run([] {
        auto t0 = af::Clock::now();
        bool inner_timeout = false;
        bool inner_cancelled = false;
        EXPECT_THROW(af::timeout(100ms,
                                 [&] {
                                     try {
                                         af::timeout(10ms, [] {
                                             std::this_thread::sleep_for(100ms);
                                             af::sleep(1s);
                                         });
                                     } catch (const af::TimeoutError&) {
                                         inner_timeout = true;
                                     } catch (const af::CancelledError&) {
                                         inner_cancelled = true;
                                         throw;
                                     }
                                     af::sleep(10s);
                                 }),
                     af::TimeoutError);
        EXPECT_FALSE(inner_timeout);
        EXPECT_TRUE(inner_cancelled);
        EXPECT_LT(af::Clock::now() - t0, 5s);
        EXPECT_EQ(af::current_task().cancelling(), 0);
    });
}

// The inner deadline passes alone: only the inner scope reports, the outer body goes on.
TEST(Timeouts, NestedInnerExpiresOuterContinues) {
    af::run([] {
        bool after = false;
        af::timeout(10s, [&] {
            EXPECT_THROW(af::timeout(5ms, [] { af::sleep(10s); }), af::TimeoutError);
            af::sleep(1ms);
            after = true;
        });
        EXPECT_TRUE(after);
    });
}

// test_timeouts.py: test_nested_timeout_in_finally
TEST(Timeouts, NestedTimeoutInFinally) {
    af::run([] {
        EXPECT_THROW(af::timeout(10ms,
                                 [] {
                                     try {
                                         af::sleep(1s);
                                     } catch (const af::CancelledError&) {
                                         EXPECT_THROW(af::timeout(10ms, [] { af::sleep(10s); }),
                                                      af::TimeoutError);
                                         throw;
                                     }
                                 }),
                     af::TimeoutError);
    });
}

// test_timeouts.py: test_timeout_after_cancellation
TEST(Timeouts, TimeoutAfterCancellation) {
    af::run([] {
        try {
            af::current_task().cancel();
            af::sleep(1s);
        } catch (const af::CancelledError&) {
        }
        EXPECT_THROW(af::timeout(0s, [] { af::sleep(1s); }), af::TimeoutError);
    });
}

// test_timeouts.py: test_cancel_in_timeout_after_cancellation
TEST(Timeouts, CancelInTimeoutAfterCancellation) {
    af::run([] {
        try {
            af::current_task().cancel();
            af::sleep(1s);
        } catch (const af::CancelledError&) {
        }
        EXPECT_THROW(af::timeout(1s,
                                 [] {
                                     af::current_task().cancel();
                                     af::sleep(2s);
                                 }),
                     af::CancelledError);
    });
}

// test_timeouts.py: test_timeout_exception_cause
TEST(Timeouts, TimeoutExceptionCause) {
    af::run([] {
        try {
            af::timeout(0s, [] { af::sleep(1s); });
            ADD_FAILURE() << "no TimeoutError";
        } catch (const af::TimeoutError& e) {
            EXPECT_TRUE(cause_is_cancelled(e));
        }
    });
}

// test_timeouts.py: test_timeout_without_task
TEST(Timeouts, TimeoutWithoutTask) {
    EXPECT_THROW(af::timeout(10ms, [] {}), af::RuntimeError);
}

// A body that swallows the expiry's CancelledError and returns: the value comes back and no
// cancellation is left pending (asyncio: uncancel() at __aexit__).
TEST(Timeouts, ExpiredScopeSwallowedReturnsValue) {
    af::run([] {
        int r = af::timeout(1ms, [] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                return 7;
            }
            return 0;
        });
        EXPECT_EQ(r, 7);
        EXPECT_EQ(af::current_task().cancelling(), 0);
        af::sleep(1ms);
    });
}

// ---- wait_for (test_waitfor.py / test_tasks.py) ----

// test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_future_done
TEST(WaitFor, TimeoutZeroTaskDone) {
    af::run([] {
        auto t = af::async([] { return 5; });
        af::sleep(0s);
        EXPECT_EQ(af::wait_for(t, 0s), 5);
    });
}

// test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
TEST(WaitFor, TimeoutZeroCallableNotStarted) {
    af::run([] {
        bool foo_started = false;

        auto foo = [&] { foo_started = true; };

        EXPECT_THROW(af::wait_for(foo, 0s), af::TimeoutError);

        EXPECT_EQ(foo_started, false);
        EXPECT_THROW(af::wait_for(foo, -1s), af::TimeoutError);
        EXPECT_EQ(foo_started, false);
    });
}

// test_waitfor.py: test_wait_for_timeout_less_then_0_or_0
TEST(WaitFor, TimeoutZeroCancelsTask) {
    af::run([] {
        bool started = false;
        auto t = af::async([&] {
            started = true;
            af::sleep(10s);
            return 1;
        });
        EXPECT_THROW(af::wait_for(t, 0s), af::TimeoutError);
        EXPECT_TRUE(t.done());
        EXPECT_TRUE(t.cancelled());
    });
}

// test_waitfor.py: test_wait_for (result in time, and the timeout case)
TEST(WaitFor, Basic) {
    af::run([] {
        EXPECT_EQ(af::wait_for([] { af::sleep(1ms); return std::string("ok"); }, 1s), "ok");
        auto slow = af::async([] {
            af::sleep(10s);
            return 1;
        });
        EXPECT_THROW(af::wait_for(slow, 10ms), af::TimeoutError);
        EXPECT_TRUE(slow.cancelled());
    });
}

// test_waitfor.py: test_wait_for_waits_for_task_cancellation
TEST(WaitFor, WaitsForTaskCancellation) {
    af::run([] {
        bool cleanup_done = false;
        auto inner = af::async([&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                af::sleep(20ms);  // slow cleanup: wait_for must wait for it
                cleanup_done = true;
                throw;
            }
        });
        EXPECT_THROW(af::wait_for(inner, 5ms), af::TimeoutError);
        EXPECT_TRUE(cleanup_done);
        EXPECT_TRUE(inner.done());
    });
}

// test_waitfor.py: test_wait_for_cancel_suppressed (3.12: the value is returned)
TEST(WaitFor, CancelSuppressedReturnsValue) {
    af::run([] {
        auto inner = af::async([] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                return 9;
            }
            return 0;
        });
        EXPECT_EQ(af::wait_for(inner, 5ms), 9);
    });
}

// test_waitfor.py: test_wait_for_reraises_exception_during_cancellation
TEST(WaitFor, ReraisesExceptionDuringCancellation) {
    af::run([] {
        auto inner = af::async([] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                throw std::logic_error("during cancel");
            }
        });
        EXPECT_THROW(af::wait_for(inner, 5ms), std::logic_error);
    });
}

// test_waitfor.py: test_cancel_wait_for / test_cancel_blocking_wait_for
TEST(WaitFor, CancelWaitFor) {
    af::run([] {
        auto inner = af::async([] { af::sleep(10s); });
        auto outer = af::async([&] { af::wait_for(inner, 10s); });
        af::sleep(1ms);
        outer.cancel();
        EXPECT_THROW(af::await(outer), af::CancelledError);
        EXPECT_TRUE(inner.cancelled());
    });
}

// test_waitfor.py: test_wait_for_with_exception (the task's exception, not a timeout)
TEST(WaitFor, ExceptionOfTaskPropagates) {
    af::run([] {
        auto t = af::async([]() -> int { throw std::runtime_error("boom"); });
        EXPECT_THROW(af::wait_for(t, 1s), std::runtime_error);
    });
}

// wait_for hands move-only values through.
TEST(WaitFor, MoveOnlyValue) {
    af::run([] {
        auto p = af::wait_for([] { return std::unique_ptr<int>(new int(3)); }, 1s);
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, 3);
    });
}

// test_waitfor.py: AsyncioWaitForTest.test_asyncio_wait_for_cancelled (fn runs in the task
// that calls wait_for, so a task cancelled right after it entered wait_for still runs fn)
TEST(WaitFor, AsyncioWaitForCancelled) {
    af::run([] {
        SlowTask t;

        auto waitfortask = af::async([&] { af::wait_for([&] { t.run(); }, SlowTask::kTimeout * 2); });
        af::sleep(0s);
        waitfortask.cancel();
        af::wait({waitfortask});

        EXPECT_TRUE(t.exited);
    });
}

// test_waitfor.py: AsyncioWaitForTest.test_asyncio_wait_for_timeout
TEST(WaitFor, AsyncioWaitForTimeout) {
    af::run([] {
        SlowTask t;

        try {
            af::wait_for([&] { t.run(); }, SlowTask::kTimeout / 2);
        } catch (const af::TimeoutError&) {
        }

        EXPECT_TRUE(t.exited);
    });
}

// wait_for(fn, d) is timeout(d, fn): a value fn produced is returned even when the deadline
// passed while fn ran without suspending (it ran as a task of its own before, and its value
// was dropped when the timeout was handled after that task had finished).
TEST(WaitFor, ValueProducedPastTheDeadlineIsReturned) {
    af::run([] { EXPECT_EQ(af::wait_for([] { busy_for(30ms); return 42; }, 5ms), 42); });
}

// wait_for(task, d): the task finished with a value before the timeout was handled (in the
// iteration before the one that fires the timer): its value, not TimeoutError.
TEST(WaitFor, TaskValuePresentWhenTheTimeoutIsHandledIsReturned) {
    af::run([] {
        auto t = af::async([] {
            busy_for(30ms);
            return 42;
        });
        EXPECT_EQ(af::wait_for(t, 5ms), 42);
        EXPECT_FALSE(t.cancelled());
    });
}

// The report's stress test: wait_for(q.get) with a timeout shorter than one iteration of a
// busy loop, in a loop against a producer. Every item put is got exactly once, in order.
TEST(WaitFor, QueueGetUnderShortTimeoutsLosesNoItem) {
    af::run([] {
        constexpr int n = 300;
        af::Queue<int> q;
        bool stop = false;
        auto load = af::async([&] {  // makes every iteration longer than the timeout
            while (!stop) {
                busy_for(100us);
                af::sleep(0s);
            }
        });
        auto producer = af::async([&] {
            for (int i = 0; i < n; ++i) {
                q.put(i);
                af::sleep(0s);
            }
        });
        std::vector<int> got;
        int timeouts = 0, idle_rounds = 0;
        // Ends when every item is in, or when the producer is done, the queue empty and
        // nothing more comes (an item was lost).
        while (static_cast<int>(got.size()) < n && idle_rounds < 20) {
            try {
                got.push_back(af::wait_for([&] { return q.get(); }, 20us));
            } catch (const af::TimeoutError&) {
                ++timeouts;
                if (producer.done() && q.empty()) ++idle_rounds;
            }
        }
        stop = true;
        af::await(load);
        std::vector<int> expected(n);
        for (int i = 0; i < n; ++i) expected[static_cast<std::size_t>(i)] = i;
        EXPECT_EQ(got, expected);
        EXPECT_TRUE(q.empty());
        EXPECT_GT(timeouts, 0);  // the timeouts did fire
    });
}

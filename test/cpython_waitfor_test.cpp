// CPython's Lib/test/test_asyncio/test_waitfor.py (Python 3.12+: wait_for is built on
// timeout()), mirrored step by step: same steps, same assertions, one test each, named in a
// comment. asyncio.wait_for(coro, t) is af::wait_for(callable, d); with a task it is
// af::wait_for(task, d); timeout=None is a duration too long to expire. What cannot be
// expressed, and why, is listed in docs/asyncio-parity.md.
#include "support/asyncio_mirror.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;
using mirror::assert_raises;

namespace {

// The following value can be used as a very small timeout: it passes the check "timeout > 0"
// but has almost no effect on the test's duration.
constexpr auto kEpsilon = std::chrono::microseconds(100);

/// test_waitfor.py's SlowTask: runs for its whole TASK_TIMEOUT, ignoring cancel requests.
struct SlowTask {
    static constexpr std::chrono::milliseconds kTaskTimeout{200};
    bool exited = false;

    void run() {
        auto exitat = af::Clock::now() + kTaskTimeout;
        for (;;) {
            auto tosleep = exitat - af::Clock::now();
            if (tosleep <= tosleep.zero()) break;
            try {
                af::sleep(tosleep);
            } catch (const af::CancelledError&) {
            }
        }
        exited = true;
    }
};
constexpr std::chrono::milliseconds SlowTask::kTaskTimeout;

/// timeout=None.
constexpr auto kNoTimeout = af::Clock::duration::max();

struct FooException : std::runtime_error {
    FooException() : std::runtime_error("FooException") {}
};

}  // namespace

// test_asyncio_wait_for_cancelled is mirrored with the fix of wait_for(fn) (see
// docs/asyncio-parity.md).

// mirrors test_waitfor.py::AsyncioWaitForTest::test_asyncio_wait_for_timeout
TEST(AsyncioWaitForTest, AsyncioWaitForTimeout) {
    af::run([] {
        SlowTask t;
        try {
            af::wait_for([&] { t.run(); }, SlowTask::kTaskTimeout / 2);
        } catch (const af::TimeoutError&) {
        }
        EXPECT_TRUE(t.exited);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0_future_done
// (the future already done: a task that has ended)
TEST(AsyncioWaitForTest, WaitForTimeoutLessThen0Or0FutureDone) {
    af::run([] {
        auto fut = af::async([] { return std::string("done"); });
        af::await(fut);  // fut.set_result('done')

        auto t0 = af::Clock::now();
        std::string ret = af::wait_for(fut, 0s);
        double elapsed = mirror::seconds_since(t0);

        EXPECT_EQ(ret, "done");
        EXPECT_TRUE(fut.done());
        EXPECT_LT(elapsed, 0.1);
    });
}

// mirrors
// test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
TEST(AsyncioWaitForTest, WaitForTimeoutLessThen0Or0CoroutineDoNotStarted) {
    af::run([] {
        bool foo_started = false;
        auto foo = [&] { foo_started = true; };

        af::Clock::time_point t0;
        assert_raises<af::TimeoutError>([&] {
            t0 = af::Clock::now();
            af::wait_for(foo, 0s);
        });
        double elapsed = mirror::seconds_since(t0);

        EXPECT_FALSE(foo_started);
        EXPECT_LT(elapsed, 0.1);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0
TEST(AsyncioWaitForTest, WaitForTimeoutLessThen0Or0) {
    af::run([] {
        for (auto timeout : {0s, -1s}) {
            SCOPED_TRACE("timeout=" + std::to_string(timeout.count()));
            int foo_running = -1;  // None
            af::Promise<void> started;
            af::Future<void> started_fut = started.get_future();

            auto foo = [&] {
                foo_running = 1;
                started.set_value();
                mirror::try_finally([] { af::sleep(10s); }, [&] { foo_running = 0; });
                return std::string("done");
            };

            auto fut = af::async(foo);
            af::await(started_fut);

            af::Clock::time_point t0;
            assert_raises<af::TimeoutError>([&] {
                t0 = af::Clock::now();
                af::wait_for(fut, timeout);
            });
            double elapsed = mirror::seconds_since(t0);

            EXPECT_TRUE(fut.done());
            // it should have been cancelled due to the timeout
            EXPECT_TRUE(fut.cancelled());
            EXPECT_EQ(foo_running, 0);
            EXPECT_LT(elapsed, 0.1);
        }
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for
TEST(AsyncioWaitForTest, WaitFor) {
    af::run([] {
        int foo_running = -1;  // None

        auto foo = [&] {
            foo_running = 1;
            mirror::try_finally([] { af::sleep(10s); }, [&] { foo_running = 0; });
            return std::string("done");
        };

        auto fut = af::async(foo);

        af::Clock::time_point t0;
        assert_raises<af::TimeoutError>([&] {
            t0 = af::Clock::now();
            af::wait_for(fut, 100ms);
        });
        double elapsed = mirror::seconds_since(t0);
        EXPECT_TRUE(fut.done());
        // it should have been cancelled due to the timeout
        EXPECT_TRUE(fut.cancelled());
        EXPECT_LT(elapsed, 0.5);
        EXPECT_EQ(foo_running, 0);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_blocking
TEST(AsyncioWaitForTest, WaitForBlocking) {
    af::run([] {
        auto coro = [] { return std::string("done"); };

        std::string res = af::wait_for(coro, kNoTimeout);
        EXPECT_EQ(res, "done");
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_race_condition
TEST(AsyncioWaitForTest, WaitForRaceCondition) {
    af::run([] {
        auto& loop = af::Loop::current();

        af::Promise<std::string> fut;
        af::Future<std::string> f = fut.get_future();
        auto task = [&] { return af::await(f); };  // asyncio.wait_for(fut, timeout=0.2)
        loop.call_later(100ms, [&] { fut.set_value("ok"); });
        std::string res = af::wait_for(task, 200ms);
        EXPECT_EQ(res, "ok");
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_cancellation_race_condition
TEST(AsyncioWaitForTest, WaitForCancellationRaceCondition) {
    af::run([] {
        auto inner = [] {
            assert_raises<af::CancelledError>([] { af::sleep(1s); });
            return 1;
        };

        int result = af::wait_for(inner, 10ms);
        EXPECT_EQ(result, 1);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_waits_for_task_cancellation
TEST(AsyncioWaitForTest, WaitForWaitsForTaskCancellation) {
    af::run([] {
        bool task_done = false;

        auto inner = [&] {
            mirror::try_finally(
                [] {
                    try {
                        af::sleep(10s);
                    } catch (const af::CancelledError&) {
                        af::sleep(kEpsilon);
                        throw;
                    }
                },
                [&] { task_done = true; });
        };

        auto inner_task = af::async(inner);

        auto cm = assert_raises<af::TimeoutError>([&] { af::wait_for(inner_task, kEpsilon); });

        EXPECT_TRUE(task_done);
        EXPECT_TRUE(cm.caused_by<af::CancelledError>());  // chained = cm.exception.__context__
    });
}

// mirrors
// test_waitfor.py::AsyncioWaitForTest::test_wait_for_waits_for_task_cancellation_w_timeout_0
TEST(AsyncioWaitForTest, WaitForWaitsForTaskCancellationWTimeout0) {
    af::run([] {
        bool task_done = false;

        auto foo = [&] {
            auto inner = [&] {
                mirror::try_finally(
                    [] {
                        try {
                            af::sleep(10s);
                        } catch (const af::CancelledError&) {
                            af::sleep(kEpsilon);
                            throw;
                        }
                    },
                    [&] { task_done = true; });
            };

            auto inner_task = af::async(inner);
            af::sleep(kEpsilon);
            af::wait_for(inner_task, 0s);
        };

        auto cm = assert_raises<af::TimeoutError>(foo);

        EXPECT_TRUE(task_done);
        EXPECT_TRUE(cm.caused_by<af::CancelledError>());  // chained = cm.exception.__context__
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_reraises_exception_during_cancellation
TEST(AsyncioWaitForTest, WaitForReraisesExceptionDuringCancellation) {
    af::run([] {
        auto foo = [] {
            auto inner = [] {
                mirror::try_finally([] { af::sleep(200ms); }, [] { throw FooException(); });
            };

            auto inner_task = af::async(inner);

            af::wait_for(inner_task, kEpsilon);
        };

        assert_raises<FooException>(foo);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_self_cancellation
TEST(AsyncioWaitForTest, WaitForSelfCancellation) {
    af::run([] {
        auto inner = [] {
            try {
                af::sleep(300ms);
            } catch (const af::CancelledError&) {
                try {
                    af::sleep(300ms);
                } catch (const af::CancelledError&) {
                    af::sleep(300ms);
                }
            }
            return 42;
        };

        auto inner_task = af::async(inner);

        auto wait = [&] { return af::wait_for(inner_task, 100ms); };

        // Test that wait_for itself is properly cancellable even when the initial task holds
        // up the initial cancellation.
        auto task = af::async(wait);
        task.cancel();

        assert_raises<af::CancelledError>([&] { af::await(task); });

        EXPECT_EQ(af::await(inner_task), 42);
    });
}

namespace {
// test_waitfor.py's _test_cancel_wait_for
template <class Duration>
void test_cancel_wait_for(Duration timeout) {
    af::run([timeout] {
        auto& loop = af::Loop::current();

        af::Promise<void> never_set;
        auto blocking_coroutine = [&] {
            af::Future<void> fut = never_set.get_future();
            // Block: fut result is never set
            af::await(fut);
        };

        auto task = af::async(blocking_coroutine);

        auto wait = af::async([&] { af::wait_for(task, timeout); });
        loop.call_soon([wait]() mutable { wait.cancel(); });

        assert_raises<af::CancelledError>([&] { af::await(wait); });

        // Python issue #23219: cancelling the wait must also cancel the task
        EXPECT_TRUE(task.cancelled());
    });
}
}  // namespace

// mirrors test_waitfor.py::AsyncioWaitForTest::test_cancel_blocking_wait_for
TEST(AsyncioWaitForTest, CancelBlockingWaitFor) { test_cancel_wait_for(kNoTimeout); }

// mirrors test_waitfor.py::AsyncioWaitForTest::test_cancel_wait_for
TEST(AsyncioWaitForTest, CancelWaitFor) { test_cancel_wait_for(60s); }

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_cancel_suppressed
TEST(AsyncioWaitForTest, WaitForCancelSuppressed) {
    // See https://github.com/python/cpython/issues/84849
    af::run([] {
        auto return_42 = [] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                return 42;
            }
            return 0;  // None
        };

        int res = af::wait_for(return_42, 100ms);
        EXPECT_EQ(res, 42);
    });
}

// mirrors test_waitfor.py::AsyncioWaitForTest::test_wait_for_issue86296
TEST(AsyncioWaitForTest, WaitForIssue86296) {
    // See https://github.com/python/cpython/issues/86296
    af::run([] {
        auto inner = [] {};

        bool reached_end = false;

        auto wait_for_coro = [&] {
            af::wait_for(inner, 100s);
            af::sleep(1s);
            reached_end = true;
        };

        auto task = af::async(wait_for_coro);
        af::sleep(0s);
        EXPECT_FALSE(task.done());
        task.cancel();
        assert_raises<af::CancelledError>([&] { af::await(task); });
        EXPECT_FALSE(reached_end);
    });
}

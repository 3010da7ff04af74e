// CPython's Lib/test/test_asyncio/test_timeouts.py (Python 3.13), mirrored step by step: same
// steps, same assertions, one test each, named in a comment. `async with asyncio.timeout(d):`
// is af::timeout(d, body); timeout(None) is a duration too long to expire (when() is then
// Clock::time_point::max()). `as cm` is a body taking af::Timeout&; where a test looks at cm
// after the scope, the body keeps a copy of the handle (it shares the scope). repr() has no
// counterpart; the exception-chaining assertions check the cause (std::throw_with_nested), not
// the implicit __context__, which C++ does not have. docs/asyncio-parity.md lists what cannot
// be expressed and why.
#include "support/asyncio_mirror.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace af = asyncfiber;
using namespace std::chrono_literals;
using mirror::assert_raises;
using mirror::KeyError;
using mirror::try_finally;
using mirror::ValueError;
using mirror::ZeroDivisionError;

namespace {
/// timeout(None) / timeout_at(None).
constexpr auto kNoTimeout = af::Clock::duration::max();
constexpr auto kNoDeadline = af::Clock::time_point::max();

/// `with self.assertRaisesRegex(RuntimeError, word): cm.reschedule(loop.time() + 0.02)`.
void assert_reschedule_refused(af::Timeout& cm, const char* word) {
    auto e =
        assert_raises<af::RuntimeError>([&] { cm.reschedule(af::Loop::current().time() + 20ms); });
    if (e) {
        EXPECT_NE(std::string(e.get().what()).find(word), std::string::npos) << e.get().what();
    }
}
}  // namespace

// mirrors test_timeouts.py::TimeoutTests::test_timeout_basic
TEST(TimeoutTests, TimeoutBasic) {
    af::run([] {
        af::Timeout cm;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(10ms, [&](af::Timeout& t) {
                cm = t;
                af::sleep(10s);
            });
        });
        EXPECT_TRUE(cm.expired());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_at_basic
TEST(TimeoutTests, TimeoutAtBasic) {
    af::run([] {
        af::Timeout cm;
        af::Clock::time_point deadline;
        assert_raises<af::TimeoutError>([&] {
            deadline = af::Loop::current().time() + 10ms;
            af::timeout_at(deadline, [&](af::Timeout& t) {
                cm = t;
                af::sleep(10s);
            });
        });
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(deadline, cm.when());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_nested_timeouts
TEST(TimeoutTests, NestedTimeouts) {
    af::run([] {
        bool cancelled = false;
        af::Timeout cm1, cm2;
        assert_raises<af::TimeoutError>([&] {
            auto deadline = af::Loop::current().time() + 10ms;
            af::timeout_at(deadline, [&](af::Timeout& t1) {
                cm1 = t1;
                // Only the topmost context manager should raise TimeoutError
                try {
                    af::timeout_at(deadline, [&](af::Timeout& t2) {
                        cm2 = t2;
                        af::sleep(10s);
                    });
                } catch (const af::CancelledError&) {
                    cancelled = true;
                    throw;
                }
            });
        });
        EXPECT_TRUE(cancelled);
        EXPECT_TRUE(cm1.expired());
        EXPECT_TRUE(cm2.expired());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_waiter_cancelled
TEST(TimeoutTests, WaiterCancelled) {
    af::run([] {
        bool cancelled = false;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(10ms, [&] {
                try {
                    af::sleep(10s);
                } catch (const af::CancelledError&) {
                    cancelled = true;
                    throw;
                }
            });
        });
        EXPECT_TRUE(cancelled);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_not_called
TEST(TimeoutTests, TimeoutNotCalled) {
    af::run([] {
        af::Timeout cm;
        af::timeout(10s, [&](af::Timeout& t) {
            cm = t;
            af::sleep(10ms);
        });
        auto t1 = af::Loop::current().time();

        EXPECT_FALSE(cm.expired());
        EXPECT_GT(cm.when(), t1);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_disabled
TEST(TimeoutTests, TimeoutDisabled) {
    af::run([] {
        af::Timeout cm;
        af::timeout(kNoTimeout, [&](af::Timeout& t) {
            cm = t;
            af::sleep(10ms);
        });

        EXPECT_FALSE(cm.expired());
        EXPECT_EQ(cm.when(), kNoDeadline);  // None
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_at_disabled
TEST(TimeoutTests, TimeoutAtDisabled) {
    af::run([] {
        af::Timeout cm;
        af::timeout_at(kNoDeadline, [&](af::Timeout& t) {
            cm = t;
            af::sleep(10ms);
        });

        EXPECT_FALSE(cm.expired());
        EXPECT_EQ(cm.when(), kNoDeadline);  // None
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_zero
TEST(TimeoutTests, TimeoutZero) {
    af::run([] {
        auto t0 = af::Loop::current().time();
        af::Timeout cm;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(0s, [&](af::Timeout& t) {
                cm = t;
                af::sleep(10s);
            });
        });
        auto t1 = af::Loop::current().time();
        EXPECT_TRUE(cm.expired());
        EXPECT_TRUE(t0 <= cm.when() && cm.when() <= t1);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_zero_sleep_zero
TEST(TimeoutTests, TimeoutZeroSleepZero) {
    af::run([] {
        auto t0 = af::Loop::current().time();
        af::Timeout cm;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(0s, [&](af::Timeout& t) {
                cm = t;
                af::sleep(0s);
            });
        });
        auto t1 = af::Loop::current().time();
        EXPECT_TRUE(cm.expired());
        EXPECT_TRUE(t0 <= cm.when() && cm.when() <= t1);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_in_the_past_sleep_zero
TEST(TimeoutTests, TimeoutInThePastSleepZero) {
    af::run([] {
        auto t0 = af::Loop::current().time();
        af::Timeout cm;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(-11s, [&](af::Timeout& t) {
                cm = t;
                af::sleep(0s);
            });
        });
        auto t1 = af::Loop::current().time();
        EXPECT_TRUE(cm.expired());
        EXPECT_TRUE(t0 >= cm.when() && cm.when() <= t1);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_foreign_exception_passed
TEST(TimeoutTests, ForeignExceptionPassed) {
    af::run([] {
        af::Timeout cm;
        assert_raises<KeyError>([&] {
            af::timeout(10ms, [&](af::Timeout& t) {
                cm = t;
                throw KeyError();
            });
        });
        EXPECT_FALSE(cm.expired());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_exception_context
TEST(TimeoutTests, TimeoutExceptionContext) {
    af::run([] {
        auto cm = assert_raises<af::TimeoutError>([] {
            af::timeout(10ms, [] {
                try_finally([] { throw ZeroDivisionError(); }, [] { af::sleep(1s); });
            });
        });
        // Expect TimeoutError caused by CancelledError (raised during handling of
        // ZeroDivisionError: the context has no C++ counterpart).
        EXPECT_TRUE(cm.caused_by<af::CancelledError>());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_foreign_exception_on_timeout
TEST(TimeoutTests, ForeignExceptionOnTimeout) {
    af::run([] {
        auto crash = [] { try_finally([] { af::sleep(1s); }, [] { throw ZeroDivisionError(); }); };
        auto cm = assert_raises<ZeroDivisionError>([&] { af::timeout(10ms, crash); });
        // Python inserts the TimeoutError into the ZeroDivisionError's context chain; C++ has
        // no such chain, and nothing is nested in the ZeroDivisionError.
        EXPECT_FALSE(cm.caused_by<af::TimeoutError>());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_foreign_exception_on_timeout_2
TEST(TimeoutTests, ForeignExceptionOnTimeout2) {
    af::run([] {
        assert_raises<ZeroDivisionError>([] {
            af::timeout(10ms, [] {
                try_finally([] { try_finally([] { throw ValueError(); }, [] { af::sleep(1s); }); },
                            [] {
                                try_finally([] { throw KeyError(); },
                                            [] { throw ZeroDivisionError(); });
                            });
            });
        });
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_foreign_cancel_doesnt_timeout_if_not_expired
TEST(TimeoutTests, ForeignCancelDoesntTimeoutIfNotExpired) {
    af::run([] {
        af::Timeout cm;
        assert_raises<af::CancelledError>([&] {
            af::timeout(10s, [&](af::Timeout& t) {
                cm = t;
                af::current_task().cancel();
                af::sleep(10s);
            });
        });
        EXPECT_FALSE(cm.expired());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_outer_task_is_not_cancelled
TEST(TimeoutTests, OuterTaskIsNotCancelled) {
    af::run([] {
        auto outer = [] {
            assert_raises<af::TimeoutError>([] { af::timeout(1ms, [] { af::sleep(10s); }); });
        };

        auto task = af::async(outer);
        af::await(task);
        EXPECT_FALSE(task.cancelled());
        EXPECT_TRUE(task.done());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_nested_timeouts_concurrent
TEST(TimeoutTests, NestedTimeoutsConcurrent) {
    af::run([] {
        assert_raises<af::TimeoutError>([] {
            af::timeout(2ms, [] {
                assert_raises<af::TimeoutError>([] {
                    af::timeout(100ms, [] {
                        // Pretend we crunch some numbers.
                        std::this_thread::sleep_for(10ms);
                        af::sleep(1s);
                    });
                });
            });
        });
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_nested_timeouts_loop_busy
TEST(TimeoutTests, NestedTimeoutsLoopBusy) {
    // After the inner timeout is an expensive operation which should be stopped by the outer
    // timeout.
    af::run([] {
        auto t0 = af::Loop::current().time();
        assert_raises<af::TimeoutError>([] {
            af::timeout(100ms, [] {  // (1)
                assert_raises<af::TimeoutError>([] {
                    af::timeout(10ms, [] {  // (2)
                        // Pretend the loop is busy for a while.
                        std::this_thread::sleep_for(100ms);
                        af::sleep(1s);
                    });
                });
                // TimeoutError was caught by (2)
                af::sleep(10s);  // This sleep should be interrupted by (1)
            });
        });
        auto t1 = af::Loop::current().time();
        EXPECT_TRUE(t0 <= t1 && t1 <= t0 + 1s);
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_nested_timeout_in_finally
TEST(TimeoutTests, NestedTimeoutInFinally) {
    af::run([] {
        mirror::Raised<af::TimeoutError> cm2;
        auto cm1 = assert_raises<af::TimeoutError>([&] {
            af::timeout(10ms, [&] {
                try_finally([] { af::sleep(1s); },
                            [&] {
                                cm2 = assert_raises<af::TimeoutError>(
                                    [] { af::timeout(10ms, [] { af::sleep(10s); }); });
                            });
            });
        });
        // Expect TimeoutError caused by CancelledError.
        EXPECT_TRUE(cm1.caused_by<af::CancelledError>());
        // Expect TimeoutError caused by CancelledError raised during handling of the other
        // CancelledError (that context has no C++ counterpart).
        EXPECT_TRUE(cm2.caused_by<af::CancelledError>());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_after_cancellation
TEST(TimeoutTests, TimeoutAfterCancellation) {
    af::run([] {
        try_finally(
            [] {
                try {
                    af::current_task().cancel();
                    af::sleep(1s);  // work which will be cancelled
                } catch (const af::CancelledError&) {
                }
            },
            [] {
                assert_raises<af::TimeoutError>([] {
                    af::timeout(0s, [] { af::sleep(1s); });  // some cleanup
                });
            });
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_cancel_in_timeout_after_cancellation
TEST(TimeoutTests, CancelInTimeoutAfterCancellation) {
    af::run([] {
        try_finally(
            [] {
                try {
                    af::current_task().cancel();
                    af::sleep(1s);  // work which will be cancelled
                } catch (const af::CancelledError&) {
                }
            },
            [] {
                assert_raises<af::CancelledError>([] {
                    af::timeout(1s, [] {
                        af::current_task().cancel();
                        af::sleep(2s);  // some cleanup
                    });
                });
            });
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_exception_cause (Python 3.12; 3.13
// checks the same in test_timeout_exception_context)
TEST(TimeoutTests, TimeoutExceptionCause) {
    af::run([] {
        auto exc = assert_raises<af::TimeoutError>([] { af::timeout(0s, [] { af::sleep(1s); }); });
        EXPECT_TRUE(exc.caused_by<af::CancelledError>());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_expiring (the body sees the expiry's
// CancelledError, swallows it and ends: the scope then ends without TimeoutError)
TEST(TimeoutTests, TimeoutExpiring) {
    af::run([] {
        af::timeout(10ms, [](af::Timeout& cm) {
            assert_raises<af::CancelledError>([] { af::sleep(1s); });
            assert_reschedule_refused(cm, "expiring");
        });
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_reschedule (loop.create_future() handing cm
// over is an af::Promise of the handle)
TEST(TimeoutTests, Reschedule) {
    af::run([] {
        af::Promise<af::Timeout> fut;
        af::Future<af::Timeout> cm_future = fut.get_future();
        auto deadline1 = af::Loop::current().time() + 10s;
        auto deadline2 = deadline1 + 20s;

        auto f = [&] {
            af::timeout_at(deadline1, [&](af::Timeout& cm) {
                fut.set_value(cm);
                af::sleep(50s);
            });
        };

        auto task = af::async(f);
        af::Timeout cm = af::await(cm_future);

        EXPECT_EQ(cm.when(), deadline1);
        cm.reschedule(deadline2);
        EXPECT_EQ(cm.when(), deadline2);
        cm.reschedule(kNoDeadline);
        EXPECT_EQ(cm.when(), kNoDeadline);  // None

        task.cancel();

        assert_raises<af::CancelledError>([&] { af::await(task); });
        EXPECT_FALSE(cm.expired());
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_finished
TEST(TimeoutTests, TimeoutFinished) {
    af::run([] {
        af::Timeout cm;
        af::timeout(10ms, [&](af::Timeout& t) { cm = t; });
        assert_reschedule_refused(cm, "finished");
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_expired
TEST(TimeoutTests, TimeoutExpired) {
    af::run([] {
        af::Timeout cm;
        assert_raises<af::TimeoutError>([&] {
            af::timeout(10ms, [&](af::Timeout& t) {
                cm = t;
                af::sleep(1s);
            });
        });
        assert_reschedule_refused(cm, "expired");
    });
}

// mirrors test_timeouts.py::TimeoutTests::test_timeout_without_task (entered on a running
// loop, outside any task: from a callback)
TEST(TimeoutTests, TimeoutWithoutTask) {
    af::run([] {
        bool ran = false;
        af::Loop::current().call_soon([&] {
            ran = true;
            auto cm = assert_raises<af::RuntimeError>([] { af::timeout(10ms, [] {}); });
            if (cm) {
                EXPECT_NE(std::string(cm.get().what()).find("task"), std::string::npos);
            }
        });
        af::sleep(0s);
        EXPECT_TRUE(ran);
    });
}

// af::timeout / af::timeout_at / af::wait_for: what asyncfiber checks beyond the mirrors of
// CPython's test_timeouts.py and test_waitfor.py (test/cpython_timeouts_test.cpp,
// test/cpython_waitfor_test.cpp): cancellation requests left behind, durations, values.
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

// Two scopes with the same deadline (test_nested_timeouts, mirrored in
// cpython_timeouts_test.cpp): both requests are taken back, none is left on the task.
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

// A scope that does not expire returns the body's value and leaves no request behind.
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

// No deadline: time_point::max(), or a duration too long to add to the clock.
TEST(Timeouts, TimeoutDisabled) {
    af::run([] {
        af::timeout_at(af::Clock::time_point::max(), [] { af::sleep(5ms); });
        af::timeout(std::chrono::hours::max(), [] { af::sleep(5ms); });
    });
}

// Another exception out of the expired body's cleanup goes on, and the expired scope leaves no
// request behind (the next suspension point is not cancelled).
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

// A Task::cancel() inside an unexpired scope stays a CancelledError and keeps its one request.
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

// Both deadlines pass while the loop is busy (test_nested_timeouts_loop_busy, mirrored in
// cpython_timeouts_test.cpp): the inner scope sees a request it did not make and lets the
// CancelledError through, the outer one turns it into TimeoutError, the long sleep never runs,
// and no request is left.
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

// wait_for(task, d) where the task swallows the timeout's cancellation and returns a value:
// the value is returned (test_wait_for_cancel_suppressed, with a coroutine, is mirrored in
// cpython_waitfor_test.cpp).
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

// The task's own exception comes out, not a timeout.
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

        auto waitfortask =
            af::async([&] { af::wait_for([&] { t.run(); }, SlowTask::kTimeout * 2); });
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
    af::run([] {
        EXPECT_EQ(af::wait_for(
                      [] {
                          busy_for(30ms);
                          return 42;
                      },
                      5ms),
                  42);
    });
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

// ---------------------------------------------------------------- the scope object (af::Timeout)

// Moving the deadline later keeps a body alive past the first deadline; moving it into the
// past expires the scope at the loop's next look at its timers.
TEST(TimeoutObject, RescheduleLaterThenIntoThePast) {
    af::run([] {
        auto& loop = af::Loop::current();
        std::vector<std::string> order;
        af::Timeout kept;
        EXPECT_THROW(af::timeout(20ms,
                                 [&](af::Timeout& cm) {
                                     kept = cm;
                                     cm.reschedule(loop.time() + 10s);
                                     af::sleep(60ms);  // past the first deadline: still running
                                     order.push_back("survived the first deadline");
                                     EXPECT_FALSE(cm.expired());
                                     cm.reschedule(loop.time() - 1s);  // in the past
                                     EXPECT_FALSE(cm.expired());       // not before the loop looks
                                     try {
                                         af::sleep(10s);
                                     } catch (const af::CancelledError&) {
                                         order.push_back("cancelled by the scope");
                                         EXPECT_TRUE(cm.expired());
                                         throw;
                                     }
                                 }),
                     af::TimeoutError);
        EXPECT_TRUE(kept.expired());
        EXPECT_EQ(order, (std::vector<std::string>{"survived the first deadline",
                                                   "cancelled by the scope"}));
        EXPECT_EQ(af::current_task().cancelling(), 0);  // the scope took its request back
    });
}

// time_point::max() disables the deadline; a later reschedule arms it again.
TEST(TimeoutObject, RescheduleToMaxDisablesThenReArms) {
    af::run([] {
        auto& loop = af::Loop::current();
        int result = af::timeout(10ms, [&](af::Timeout& cm) {
            cm.reschedule(af::Clock::time_point::max());
            EXPECT_EQ(cm.when(), af::Clock::time_point::max());
            af::sleep(40ms);
            return 7;
        });
        EXPECT_EQ(result, 7);
        bool expired = false;
        EXPECT_THROW(af::timeout_at(af::Clock::time_point::max(),
                                    [&](af::Timeout& cm) {
                                        cm.reschedule(loop.time() + 10ms);
                                        try {
                                            af::sleep(10s);
                                        } catch (const af::CancelledError&) {
                                            expired = cm.expired();
                                            throw;
                                        }
                                    }),
                     af::TimeoutError);
        EXPECT_TRUE(expired);
    });
}

// A generic body (auto&) gets the scope object; the value passes through.
TEST(TimeoutObject, GenericBodyAndValue) {
    af::run([] {
        std::string s = af::timeout(1s, [](auto& cm) {
            EXPECT_FALSE(cm.expired());
            return std::string("value");
        });
        EXPECT_EQ(s, "value");
    });
}

// Misuse: an empty handle throws InvalidStateError; rescheduling from another thread while
// the loop runs throws RuntimeError and leaves the deadline as it was.
TEST(TimeoutObject, EmptyHandleAndForeignThread) {
    af::Timeout empty;
    EXPECT_THROW(empty.when(), af::InvalidStateError);
    EXPECT_THROW(empty.expired(), af::InvalidStateError);
    EXPECT_THROW(empty.reschedule(af::Clock::now()), af::InvalidStateError);
    af::run([] {
        af::timeout(10s, [](af::Timeout& cm) {
            const auto when = cm.when();
            bool threw = false;
            std::thread th([&] {
                try {
                    cm.reschedule(af::Clock::now());
                } catch (const af::RuntimeError&) {
                    threw = true;
                }
            });
            th.join();
            EXPECT_TRUE(threw);
            EXPECT_EQ(cm.when(), when);
            af::sleep(10ms);
            EXPECT_FALSE(cm.expired());
        });
    });
}

// A task rescheduling another task's scope (as asyncio's test_reschedule does) moves the
// deadline of that task, not its own.
TEST(TimeoutObject, RescheduledByAnotherTaskExpiresTheOwner) {
    af::run([] {
        af::Timeout cm;
        af::Event entered;
        auto owner = af::async([&] {
            af::timeout(10s, [&](af::Timeout& t) {
                cm = t;
                entered.set();
                af::sleep(10s);
            });
        });
        entered.wait();
        cm.reschedule(af::Loop::current().time());
        EXPECT_THROW(af::await(owner), af::TimeoutError);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(af::current_task().cancelling(), 0);
    });
}

// af::TaskGroup, mirroring CPython's Lib/test/test_asyncio/test_taskgroups.py (each test
// names the CPython case it follows).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
int count_of_type_runtime(const af::TaskGroupError& e) {
    int n = 0;
    for (auto& p : e.exceptions()) {
        try {
            std::rethrow_exception(p);
        } catch (const std::runtime_error&) {
            ++n;
        } catch (...) {
        }
    }
    return n;
}
}  // namespace

// test_taskgroups.py: test_taskgroup_01 (results of successful tasks)
TEST(TaskGroup, Results) {
    af::run([] {
        af::TaskGroup g;
        auto a = g.spawn([] {
            af::sleep(2ms);
            return 42;
        });
        auto b = g.spawn([] {
            af::sleep(1ms);
            return 11;
        });
        g.join();
        EXPECT_EQ(a.result(), 42);
        EXPECT_EQ(b.result(), 11);
    });
}

// test_taskgroups.py: test_taskgroup_24 (a member spawns more members while the group joins)
TEST(TaskGroup, SpawnWhileJoining) {
    af::run([] {
        af::TaskGroup g;
        af::Task<int> late;
        g.spawn([&] {
            af::sleep(1ms);
            late = g.spawn([] {
                af::sleep(5ms);
                return 7;
            });
        });
        g.join();
        ASSERT_TRUE(late);
        EXPECT_TRUE(late.done());
        EXPECT_EQ(late.result(), 7);
    });
}

// test_taskgroups.py: test_taskgroup_04 / test_cancel_children_on_child_error (the first
// failure cancels the siblings, join throws the group error)
TEST(TaskGroup, FailureCancelsSiblings) {
    af::run([] {
        bool sibling_cancelled = false;
        af::TaskGroup g;
        g.spawn([&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                sibling_cancelled = true;
                throw;
            }
        });
        g.spawn([] {
            af::sleep(1ms);
            throw std::runtime_error("boom");
        });
        try {
            g.join();
            ADD_FAILURE() << "join did not throw";
        } catch (const af::TaskGroupError& e) {
            EXPECT_EQ(e.exceptions().size(), 1u);
            EXPECT_EQ(count_of_type_runtime(e), 1);
        }
        EXPECT_TRUE(sibling_cancelled);
    });
}

// test_taskgroups.py: test_taskgroup_19 (several members fail: every error is collected, in
// order)
TEST(TaskGroup, EveryErrorCollected) {
    af::run([] {
        af::TaskGroup g;
        for (int i = 0; i < 3; ++i)
            g.spawn([i] {
                // Each catches the cancellation and fails anyway: three errors in all.
                try {
                    af::sleep(std::chrono::milliseconds(1 + i));
                } catch (const af::CancelledError&) {
                }
                throw std::runtime_error("e" + std::to_string(i));
            });
        try {
            g.join();
            ADD_FAILURE();
        } catch (const af::TaskGroupError& e) {
            ASSERT_EQ(e.exceptions().size(), 3u);
            try {
                std::rethrow_exception(e.exceptions()[0]);
            } catch (const std::runtime_error& r) {
                EXPECT_STREQ(r.what(), "e0");
            }
        }
    });
}

// test_taskgroups.py: test_taskgroup_03 (a member cancelled explicitly is not a failure)
TEST(TaskGroup, MemberCancelledIsNotAFailure) {
    af::run([] {
        af::TaskGroup g;
        auto a = g.spawn([] { af::sleep(10s); });
        auto b = g.spawn([] {
            af::sleep(2ms);
            return 1;
        });
        af::sleep(1ms);
        a.cancel();
        g.join();  // no throw
        EXPECT_TRUE(a.cancelled());
        EXPECT_EQ(b.result(), 1);
    });
}

// test_taskgroups.py: test_cancellation / test_taskgroup_22 (the joining task is cancelled:
// members are cancelled, join waits for them, then CancelledError)
TEST(TaskGroup, ParentCancelledWhileJoining) {
    af::run([] {
        int cleaned = 0;
        auto parent = af::async([&] {
            af::TaskGroup g;
            for (int i = 0; i < 2; ++i)
                g.spawn([&] {
                    try {
                        af::sleep(10s);
                    } catch (const af::CancelledError&) {
                        af::sleep(1ms);  // cleanup that suspends
                        ++cleaned;
                        throw;
                    }
                });
            g.join();
        });
        af::sleep(1ms);
        parent.cancel();
        EXPECT_THROW(af::await(parent), af::CancelledError);
        EXPECT_EQ(cleaned, 2);
        EXPECT_TRUE(parent.cancelled());
    });
}

// test_taskgroups.py: test_taskgroup_08 (the parent is cancelled, members fail while
// cancelled: the errors take priority over the CancelledError)
TEST(TaskGroup, ErrorsWinOverParentCancel) {
    af::run([] {
        auto parent = af::async([&] {
            af::TaskGroup g;
            g.spawn([] {
                try {
                    af::sleep(10s);
                } catch (const af::CancelledError&) {
                    throw std::runtime_error("failed while cancelled");
                }
            });
            g.join();
        });
        af::sleep(1ms);
        parent.cancel();
        EXPECT_THROW(af::await(parent), af::TaskGroupError);
    });
}

// test_taskgroups.py: test_taskgroup_09 / test_taskgroup_10 (an exception in the body: the
// group, destroyed unjoined, cancels its members and waits for them before the exception
// goes on; asyncio wraps it in the ExceptionGroup, see docs/asyncio-parity.md)
TEST(TaskGroup, DestroyedUnjoinedCancelsAndWaits) {
    af::run([] {
        bool member_done = false;
        try {
            af::TaskGroup g;
            g.spawn([&] {
                try {
                    af::sleep(10s);
                } catch (const af::CancelledError&) {
                    af::sleep(2ms);
                    member_done = true;
                    throw;
                }
            });
            af::sleep(1ms);
            throw std::logic_error("body");
        } catch (const std::logic_error&) {
            EXPECT_TRUE(member_done);
        }
    });
}

// test_taskgroups.py: test_taskgroup_07 / test_taskgroup_17 (the parent cancelled in the
// body; the group unwinds with it, cancels its members and waits)
TEST(TaskGroup, CancelledInBody) {
    af::run([] {
        bool member_cancelled = false;
        auto parent = af::async([&] {
            af::TaskGroup g;
            g.spawn([&] {
                try {
                    af::sleep(10s);
                } catch (const af::CancelledError&) {
                    member_cancelled = true;
                    throw;
                }
            });
            af::sleep(10s);  // cancelled here
            g.join();
        });
        af::sleep(1ms);
        parent.cancel();
        EXPECT_THROW(af::await(parent), af::CancelledError);
        EXPECT_TRUE(member_cancelled);
    });
}

// A cancellation that arrives while the destructor waits is not lost.
TEST(TaskGroup, CancelDuringDestructorWaitIsKept) {
    af::run([] {
        bool reached_after = false;
        auto parent = af::async([&] {
            {
                af::TaskGroup g;
                g.spawn([] {
                    try {
                        af::sleep(10s);
                    } catch (const af::CancelledError&) {
                        af::sleep(5ms);
                        throw;
                    }
                });
                af::sleep(0s);
            }  // destructor cancels the member and waits 5 ms
            reached_after = true;
            af::sleep(10s);  // the cancellation received meanwhile is thrown here
        });
        af::sleep(1ms);
        parent.cancel();
        af::sleep(1ms);
        EXPECT_THROW(af::await(parent), af::CancelledError);
        EXPECT_TRUE(reached_after);
    });
}

// test_taskgroups.py: test_taskgroup_finished / test_taskgroup_no_create_task_after_failure
// ("TaskGroup is finished", "shutting down")
TEST(TaskGroup, SpawnAfterJoinOrWhileAborting) {
    af::run([] {
        af::TaskGroup g;
        g.spawn([] {});
        g.join();
        EXPECT_THROW(g.spawn([] {}), af::RuntimeError);
        EXPECT_THROW(g.join(), af::RuntimeError);

        af::TaskGroup g2;
        g2.spawn([] { throw std::runtime_error("x"); });
        af::sleep(1ms);
        EXPECT_TRUE(g2.aborting());
        EXPECT_THROW(g2.spawn([] {}), af::RuntimeError);
        EXPECT_THROW(g2.join(), af::TaskGroupError);
    });
}

// test_taskgroups.py: test_taskgroup_without_parent_task
TEST(TaskGroup, WithoutParentTask) {
    EXPECT_THROW(af::TaskGroup g, af::RuntimeError);
}

// test_taskgroups.py: test_taskgroup_14 (nested groups: an inner failure reaches the outer
// join as one nested group error)
TEST(TaskGroup, Nested) {
    af::run([] {
        af::TaskGroup outer;
        outer.spawn([] {
            af::TaskGroup inner;
            inner.spawn([] { throw std::runtime_error("deep"); });
            inner.join();
        });
        try {
            outer.join();
            ADD_FAILURE();
        } catch (const af::TaskGroupError& e) {
            ASSERT_EQ(e.exceptions().size(), 1u);
            EXPECT_THROW(std::rethrow_exception(e.exceptions()[0]), af::TaskGroupError);
        }
    });
}

// A group with no member joins at once.
TEST(TaskGroup, EmptyJoin) {
    af::run([] {
        af::TaskGroup g;
        g.join();
        EXPECT_EQ(g.size(), 0u);
    });
}

// test_taskgroups.py: test_taskgroup_task_name / test_name (options reach the task), with a
// move-only result.
TEST(TaskGroup, MoveOnlyAndOptions) {
    af::run([] {
        af::TaskGroup g;
        auto t = g.spawn(af::TaskOptions{"worker", 0}, [] { return std::unique_ptr<int>(new int(9)); });
        g.join();
        EXPECT_EQ(t.name(), "worker");
        EXPECT_EQ(*af::await(std::move(t)), 9);
    });
}

// An unjoined group whose member failed reports the error to the loop's handler.
TEST(TaskGroup, UnjoinedFailureReported) {
    af::run([] {
        int reports = 0;
        af::Loop::current().set_exception_handler([&](const af::ExceptionContext&) { ++reports; });
        {
            af::TaskGroup g;
            g.spawn([] { throw std::runtime_error("lost?"); });
            af::sleep(1ms);
        }
        EXPECT_EQ(reports, 1);
        af::Loop::current().set_exception_handler({});
    });
}

// test_taskgroups.py: test_cancelling_level_preserved / test_cancellation_does_not_leak_out_of_tg
TEST(TaskGroup, CancellingLevelPreserved) {
    af::run([] {
        {
            af::TaskGroup g;
            g.spawn([] { throw std::runtime_error("x"); });
            EXPECT_THROW(g.join(), af::TaskGroupError);
        }
        EXPECT_EQ(af::current_task().cancelling(), 0);
        af::sleep(0s);  // no cancellation leaks out of the group
        af::sleep(1ms);
    });
}

// test_taskgroups.py: test_taskgroup_25 (members keep spawning until one fails)
TEST(TaskGroup, Hydra) {
    af::run([] {
        int heads = 0;
        af::TaskGroup g;
        std::function<void()> hydra = [&] {
            ++heads;
            af::sleep(1ms);
            g.spawn(hydra);
            g.spawn(hydra);
        };
        g.spawn(hydra);
        g.spawn([&] {
            while (heads < 10) af::sleep(1ms);
            throw std::domain_error("hercules");
        });
        try {
            g.join();
            ADD_FAILURE();
        } catch (const af::TaskGroupError& e) {
            // the hydras were cancelled in their sleep, not counted as failures
            bool saw_domain = false;
            for (auto& p : e.exceptions()) {
                try {
                    std::rethrow_exception(p);
                } catch (const std::domain_error&) {
                    saw_domain = true;
                } catch (...) {
                }
            }
            EXPECT_TRUE(saw_domain);
        }
        EXPECT_GE(heads, 10);
        EXPECT_EQ(g.size(), 0u);
    });
}

// ---- af::task_group: the body runs in the calling task and is interrupted by a failure ----
// (CPython's durations are divided by ten.)

namespace {
struct MyExc : std::runtime_error {
    MyExc() : std::runtime_error("MyExc") {}
};
struct ZeroDivisionError : std::runtime_error {
    ZeroDivisionError() : std::runtime_error("division by zero") {}
};
template <class E>
bool holds(const af::TaskGroupError& e, std::size_t i) {
    if (i >= e.exceptions().size()) return false;
    try {
        std::rethrow_exception(e.exceptions()[i]);
    } catch (const E&) {
        return true;
    } catch (...) {
    }
    return false;
}
}  // namespace

// The asyncio worker idiom: members consume a queue, the body waits on queue.join(), a
// member fails. The failure interrupts queue.join(), the other members are cancelled, and
// the call ends with the group's error instead of waiting forever.
TEST(TaskGroupScope, WorkerIdiomEndsWithTheGroupError) {
    af::run([] {
        af::Queue<int> queue;
        std::vector<int> processed;
        bool join_interrupted = false;
        auto start = std::chrono::steady_clock::now();
        try {
            // A hang ends here (and fails below) instead of blocking the test.
            af::timeout(10s, [&] {
                af::task_group([&](af::TaskGroup& g) {
                    for (int w = 0; w < 3; ++w)
                        g.spawn([&] {
                            for (;;) {
                                int item = queue.get();
                                if (item == 5) throw std::runtime_error("cannot process item 5");
                                processed.push_back(item);
                                af::sleep(1ms);
                                queue.task_done();
                            }
                        });
                    for (int i = 0; i < 10; ++i) queue.put_nowait(i);
                    try {
                        queue.join();
                    } catch (const af::CancelledError&) {
                        join_interrupted = true;
                        throw;
                    }
                });
            });
            FAIL() << "no exception";
        } catch (const af::TaskGroupError& e) {
            ASSERT_EQ(e.exceptions().size(), 1u);
            EXPECT_STREQ(e.what(), "asyncfiber: unhandled errors in a TaskGroup (1 sub-exception), "
                                   "the first: cannot process item 5");
        }
        EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the failure did not interrupt the body";
        EXPECT_TRUE(join_interrupted);
        EXPECT_EQ(af::current_task().cancelling(), 0);  // the group's cancellation was taken back
        af::sleep(1ms);  // and does not reach the code after the group
        EXPECT_EQ(std::count(processed.begin(), processed.end(), 5), 0);
    });
}

// The body's value is returned once every member has ended.
TEST(TaskGroupScope, ReturnsTheBodysValueAfterTheMembers) {
    af::run([] {
        af::Task<int> a;
        std::unique_ptr<int> p = af::task_group([&](af::TaskGroup& g) {
            a = g.spawn([] {
                af::sleep(5ms);
                return 42;
            });
            return std::unique_ptr<int>(new int(7));
        });
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, 7);
        EXPECT_TRUE(a.done());
        EXPECT_EQ(a.result(), 42);
        int n = 0;
        af::task_group([&](af::TaskGroup& g) { g.spawn([&] { ++n; }); });
        EXPECT_EQ(n, 1);
        EXPECT_THROW(af::task_group([](af::TaskGroup& g) { g.join(); }), af::TaskGroupError);
    });
}

// test_taskgroups.py: test_cancel_children_on_child_error
TEST(TaskGroupScope, CancelChildrenOnChildError) {
    af::run([] {
        int NUM = 0;
        bool t2_cancel = false;
        bool runner_cancel = false;

        auto foo1 = [] {
            af::sleep(10ms);
            throw ZeroDivisionError();
        };
        auto foo2 = [&] {
            try {
                af::sleep(500ms);
            } catch (const af::CancelledError&) {
                t2_cancel = true;
                throw;
            }
            NUM += 1;
        };
        auto runner = [&] {
            af::task_group([&](af::TaskGroup& g) {
                g.spawn(foo1);
                g.spawn(foo1);
                g.spawn(foo1);
                g.spawn(foo2);
                try {
                    af::sleep(1s);
                } catch (const af::CancelledError&) {
                    runner_cancel = true;
                    throw;
                }
            });
            NUM += 10;
        };

        try {
            af::await(af::async(runner));
            FAIL() << "no TaskGroupError";
        } catch (const af::TaskGroupError& cm) {
            for (std::size_t i = 0; i < cm.exceptions().size(); ++i)
                EXPECT_TRUE(holds<ZeroDivisionError>(cm, i));
        }
        EXPECT_EQ(NUM, 0);
        EXPECT_TRUE(t2_cancel);
        EXPECT_TRUE(runner_cancel);
    });
}

// test_taskgroups.py: test_cancellation_in_body (a cancellation from outside: CancelledError
// with its message, though the members fail meanwhile... and have not yet here)
TEST(TaskGroupScope, CancellationInBody) {
    af::run([] {
        auto foo = [] {
            af::sleep(10ms);
            throw ZeroDivisionError();
        };
        auto runner = [&] {
            af::task_group([&](af::TaskGroup& g) {
                for (int i = 0; i < 5; ++i) g.spawn(foo);
                try {
                    af::sleep(1s);
                } catch (const af::CancelledError&) {
                    throw;
                }
            });
        };

        auto r = af::async(runner);
        af::sleep(5ms);

        EXPECT_FALSE(r.done());
        r.cancel("test");
        try {
            af::await(r);
            FAIL() << "no CancelledError";
        } catch (const af::CancelledError& cm) {
            EXPECT_EQ(cm.message(), "test");
        }
    });
}

// test_taskgroups.py: test_taskgroup_18 (the body turns the cancellation into an exception
// of its own: that exception, in the group's error)
TEST(TaskGroupScope, BodyRaisesOnCancellation) {
    af::run([] {
        int NUM = 0;
        auto runner = [&] {
            af::task_group([&](af::TaskGroup&) {
                try {
                    af::sleep(1s);
                } catch (const af::CancelledError&) {
                    NUM += 10;
                    // This isn't a good idea, but we have to support
                    // this weird case.
                    throw MyExc();
                }
            });
        };

        auto r = af::async(runner);
        af::sleep(10ms);

        EXPECT_FALSE(r.done());
        r.cancel();

        try {
            af::await(r);
            FAIL() << "no TaskGroupError";
        } catch (const af::TaskGroupError& t) {
            ASSERT_EQ(t.exceptions().size(), 1u);
            EXPECT_TRUE(holds<MyExc>(t, 0));
        }
        EXPECT_EQ(NUM, 10);
    });
}

// test_taskgroups.py: test_taskgroup_19 (the body's own exception joins the members' errors)
TEST(TaskGroupScope, BodyExceptionJoinsTheErrors) {
    af::run([] {
        auto crash_soon = [] {
            af::sleep(10ms);
            throw ZeroDivisionError();
        };
        auto nested = [] {
            try {
                af::sleep(1s);
            } catch (...) {
            }
            throw MyExc();  // finally: raise MyExc
        };
        auto runner = [&] {
            af::task_group([&](af::TaskGroup& g) {
                g.spawn(crash_soon);
                nested();
            });
        };

        auto r = af::async(runner);
        try {
            af::await(r);
            FAIL() << "no TaskGroupError";
        } catch (const af::TaskGroupError& t) {
            ASSERT_EQ(t.exceptions().size(), 2u);
            EXPECT_TRUE(holds<ZeroDivisionError>(t, 0));  // the member's first
            EXPECT_TRUE(holds<MyExc>(t, 1));              // then the body's
        }
    });
}

// A failure and a cancellation from outside at once: TaskGroupError wins, and the outside
// cancellation stays pending (cancelling() unchanged) for the task's next suspension point,
// as asyncio re-cancels the parent.
TEST(TaskGroupScope, OutsideCancellationSurvivesTheGroupError) {
    af::run([] {
        bool cancelled_after = false;
        auto r = af::async([&] {
            try {
                af::task_group([&](af::TaskGroup& g) {
                    g.spawn([] {
                        try {
                            af::sleep(1s);
                        } catch (const af::CancelledError&) {
                            throw MyExc();  // fails while being cancelled
                        }
                    });
                    af::sleep(1s);
                });
            } catch (const af::TaskGroupError& e) {
                EXPECT_TRUE(holds<MyExc>(e, 0));
                EXPECT_EQ(af::current_task().cancelling(), 1);
            }
            try {
                af::sleep(1s);
            } catch (const af::CancelledError&) {
                cancelled_after = true;
                throw;
            }
        });
        af::sleep(5ms);
        r.cancel();
        EXPECT_THROW(af::await(r), af::CancelledError);
        EXPECT_TRUE(cancelled_after);
    });
}

// An enclosing timeout is a cancellation from outside: the members are cancelled and
// waited for, and the timeout reports its expiry.
TEST(TaskGroupScope, UnderATimeout) {
    af::run([] {
        int cancelled_members = 0;
        EXPECT_THROW(af::timeout(10ms,
                                 [&] {
                                     af::task_group([&](af::TaskGroup& g) {
                                         for (int i = 0; i < 3; ++i)
                                             g.spawn([&] {
                                                 try {
                                                     af::sleep(1s);
                                                 } catch (const af::CancelledError&) {
                                                     ++cancelled_members;
                                                     throw;
                                                 }
                                             });
                                         af::sleep(1s);
                                     });
                                 }),
                     af::TimeoutError);
        EXPECT_EQ(cancelled_members, 3);
    });
}

// TaskGroupError::what() names the first failure and the count, so that a logger catching
// std::exception keeps the cause; an exception without what() is named by its type.
TEST(TaskGroupError, WhatNamesTheFirstFailureAndTheCount) {
    std::vector<std::exception_ptr> two{std::make_exception_ptr(std::runtime_error("connection refused")),
                                        std::make_exception_ptr(std::logic_error("x"))};
    EXPECT_STREQ(af::TaskGroupError(two).what(),
                 "asyncfiber: unhandled errors in a TaskGroup (2 sub-exceptions), the first: "
                 "connection refused");
    EXPECT_STREQ(af::TaskGroupError({std::make_exception_ptr(42)}).what(),
                 "asyncfiber: unhandled errors in a TaskGroup (1 sub-exception), the first: an "
                 "exception of type int");
    EXPECT_STREQ(af::TaskGroupError({std::make_exception_ptr(af::CancelledError("stop"))}).what(),
                 "asyncfiber: unhandled errors in a TaskGroup (1 sub-exception), the first: "
                 "CancelledError: stop");
    af::run([] {
        try {
            af::TaskGroup g;
            g.spawn([] { throw std::runtime_error("boom"); });
            g.join();
        } catch (const std::exception& e) {  // a legacy logger
            EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos) << e.what();
        }
    });
}

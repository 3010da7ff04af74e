// af::TaskGroup, mirroring CPython's Lib/test/test_asyncio/test_taskgroups.py (each test
// names the CPython case it follows).
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

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

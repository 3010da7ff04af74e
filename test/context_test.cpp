// Task-local state: af::ContextVar / af::Context (CPython's Lib/test/test_context.py and the
// context tests of Lib/test/test_asyncio/test_tasks.py and test_threads.py, mirrored step by
// step and named in a comment each; Python's ValueError for a token of another variable or
// context is RuntimeError here, as the contract says; KeyError is LookupError) and
// af::bind_thread_local (legacy thread_locals made task-local).
//
// CPython runs most context tests in a fresh context (@isolated_context); here `isolated`
// does the same, since the main thread's context outlives each test.
#include "support/asyncio_mirror.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;
using mirror::assert_raises;

namespace {

template <class F>
void isolated(F&& fn) {
    af::Context::create().run(std::forward<F>(fn));
}

// ======================================================================================
// Lib/test/test_context.py
// ======================================================================================

// test_context_var_new_1 (the type checks of its first half are compile errors here)
TEST(CpythonContext, ContextVarNew1) {
    af::ContextVar<int> c("aaa");
    EXPECT_EQ(c.name(), "aaa");
}

// test_context_get_context_1
TEST(CpythonContext, ContextGetContext1) {
    af::Context ctx = af::copy_context();
    EXPECT_TRUE(static_cast<bool>(ctx));
}

// test_context_run_2 (keyword arguments do not exist in C++: positional ones only)
TEST(CpythonContext, ContextRun2) {
    af::Context ctx = af::Context::create();
    auto func = [](std::vector<int> args) {
        args.push_back(-1);  // args += ('bar',)
        return args;
    };
    EXPECT_EQ(ctx.run(func, std::vector<int>{}), std::vector<int>({-1}));
    EXPECT_EQ(ctx.run(func, std::vector<int>{1}), std::vector<int>({1, -1}));
    EXPECT_EQ(ctx.run(func, std::vector<int>{11}), std::vector<int>({11, -1}));
}

// test_context_run_3
TEST(CpythonContext, ContextRun3) {
    af::Context ctx = af::Context::create();
    auto func = [](int, int) -> int { throw mirror::ZeroDivisionError(); };
    assert_raises<mirror::ZeroDivisionError>([&] { ctx.run(func, 1, 2); });
    assert_raises<mirror::ZeroDivisionError>([&] { ctx.run(func, 1, 2); });
}

// test_context_run_4
TEST(CpythonContext, ContextRun4) {
    isolated([] {
        af::Context ctx1 = af::Context::create();
        af::Context ctx2 = af::Context::create();
        af::ContextVar<std::string> var("var");

        auto func2 = [&] { EXPECT_EQ(var.get("None"), "None"); };
        auto func1 = [&] {
            EXPECT_EQ(var.get("None"), "None");
            var.set("spam");
            ctx2.run(func2);
            EXPECT_EQ(var.get("None"), "spam");

            af::Context cur = af::copy_context();
            EXPECT_EQ(cur.size(), 1u);
            EXPECT_EQ(cur.get(var), "spam");
            return cur;
        };
        af::Context returned_ctx = ctx1.run(func1);
        // Python compares the mappings (ctx1 == returned_ctx); a handle compares identity.
        EXPECT_EQ(ctx1.get(var), returned_ctx.get(var));
        EXPECT_EQ(ctx1.size(), returned_ctx.size());
        EXPECT_EQ(returned_ctx.get(var), "spam");
        EXPECT_TRUE(returned_ctx.contains(var));
    });
}

// test_context_run_5
TEST(CpythonContext, ContextRun5) {
    af::Context ctx = af::Context::create();
    af::ContextVar<std::string> var("var");
    auto func = [&] {
        EXPECT_EQ(var.get("None"), "None");
        var.set("spam");
        throw mirror::ZeroDivisionError();
    };
    assert_raises<mirror::ZeroDivisionError>([&] { ctx.run(func); });
    EXPECT_EQ(var.get("None"), "None");
}

// test_context_run_6
TEST(CpythonContext, ContextRun6) {
    af::Context ctx = af::Context::create();
    af::ContextVar<int> c("a", 0);
    auto fun = [&] {
        EXPECT_EQ(c.get(), 0);
        EXPECT_EQ(ctx.get(c, -1), -1);  // ctx.get(c) is None
        c.set(42);
        EXPECT_EQ(c.get(), 42);
        EXPECT_EQ(ctx.get(c, -1), 42);
    };
    ctx.run(fun);
}

// test_context_run_7
TEST(CpythonContext, ContextRun7) {
    af::Context ctx = af::Context::create();
    int depth = 0;
    std::function<void()> fun = [&] {
        ++depth;
        auto e = assert_raises<af::RuntimeError>([&] { ctx.run(fun); });
        EXPECT_NE(std::string(e.get().what()).find("already entered"), std::string::npos);
    };
    ctx.run(fun);
    EXPECT_EQ(depth, 1);
    ctx.run([] {});  // left: it can be entered again
}

// test_context_getset_1 (items()/values()/keys()/iteration are not offered: size and get)
TEST(CpythonContext, ContextGetset1) {
    isolated([] {
        af::ContextVar<std::string> c("c");
        assert_raises<af::LookupError>([&] { c.get(); });
        EXPECT_EQ(c.get("None"), "None");

        auto t0 = c.set("42");
        EXPECT_EQ(c.get(), "42");
        EXPECT_EQ(c.get("None"), "42");
        EXPECT_FALSE(t0.has_old_value());  // t0.old_value is Token.MISSING

        auto t = c.set("spam");
        EXPECT_EQ(c.get(), "spam");
        EXPECT_EQ(c.get("None"), "spam");
        EXPECT_EQ(t.old_value(), "42");
        c.reset(t);
        EXPECT_EQ(c.get(), "42");
        EXPECT_EQ(c.get("None"), "42");

        c.set("spam2");
        auto e = assert_raises<af::RuntimeError>([&] { c.reset(t); });
        EXPECT_NE(std::string(e.get().what()).find("has already been used"), std::string::npos);
        EXPECT_EQ(c.get(), "spam2");

        af::Context ctx1 = af::copy_context();
        EXPECT_TRUE(ctx1.contains(c));

        c.reset(t0);
        assert_raises<af::RuntimeError>([&] { c.reset(t0); });
        EXPECT_EQ(c.get("None"), "None");

        EXPECT_TRUE(ctx1.contains(c));
        EXPECT_EQ(ctx1.get(c), "spam2");
        EXPECT_EQ(ctx1.get(c, std::string("aa")), "spam2");
        EXPECT_EQ(ctx1.size(), 1u);

        af::Context ctx2 = af::copy_context();
        EXPECT_FALSE(ctx2.contains(c));
        assert_raises<af::LookupError>([&] { ctx2.get(c); });
        EXPECT_EQ(ctx2.get(c, std::string("aa")), "aa");
        EXPECT_EQ(ctx2.size(), 0u);
    });
}

// test_context_getset_2
TEST(CpythonContext, ContextGetset2) {
    isolated([] {
        af::ContextVar<int> v1("v1");
        af::ContextVar<int> v2("v2");
        auto t1 = v1.set(42);
        auto e = assert_raises<af::RuntimeError>([&] { v2.reset(t1); });
        EXPECT_NE(std::string(e.get().what()).find("by a different"), std::string::npos);
    });
}

// test_context_getset_3
TEST(CpythonContext, ContextGetset3) {
    isolated([] {
        af::ContextVar<int> c("c", 42);
        af::Context ctx = af::Context::create();
        auto fun = [&] {
            EXPECT_EQ(c.get(), 42);
            assert_raises<af::LookupError>([&] { ctx.get(c); });
            EXPECT_EQ(ctx.get(c, -1), -1);
            EXPECT_FALSE(ctx.contains(c));
            EXPECT_EQ(ctx.size(), 0u);

            auto t = c.set(1);
            EXPECT_EQ(ctx.size(), 1u);
            EXPECT_EQ(ctx.get(c), 1);

            c.reset(t);
            EXPECT_EQ(ctx.size(), 0u);
            assert_raises<af::LookupError>([&] { ctx.get(c); });
        };
        ctx.run(fun);
    });
}

// test_context_getset_4
TEST(CpythonContext, ContextGetset4) {
    isolated([] {
        af::ContextVar<int> c("c", 42);
        af::Context ctx = af::Context::create();
        auto tok = ctx.run([&] { return c.set(1); });
        auto e = assert_raises<af::RuntimeError>([&] { c.reset(tok); });
        EXPECT_NE(std::string(e.get().what()).find("different Context"), std::string::npos);
    });
}

// test_context_getset_5 (a Python list is a shared object: a shared_ptr to a vector here)
TEST(CpythonContext, ContextGetset5) {
    isolated([] {
        using List = std::shared_ptr<std::vector<int>>;
        af::ContextVar<List> c("c", std::make_shared<std::vector<int>>(std::vector<int>{42}));
        c.set(std::make_shared<std::vector<int>>());
        auto fun = [&] {
            c.set(std::make_shared<std::vector<int>>());
            c.get()->push_back(42);
            EXPECT_EQ(*c.get(), std::vector<int>({42}));
        };
        af::copy_context().run(fun);
        EXPECT_EQ(*c.get(), std::vector<int>());
    });
}

// test_context_copy_1
TEST(CpythonContext, ContextCopy1) {
    af::Context ctx1 = af::Context::create();
    af::ContextVar<int> c("c", 42);
    af::Context ctx2;
    auto ctx2_fun = [&] {
        EXPECT_EQ(c.get(), 10);
        c.set(30);
        EXPECT_EQ(c.get(), 30);
    };
    auto ctx1_fun = [&] {
        c.set(10);
        ctx2 = ctx1.copy();
        EXPECT_EQ(ctx2.get(c), 10);

        c.set(20);
        EXPECT_EQ(ctx1.get(c), 20);
        EXPECT_EQ(ctx2.get(c), 10);

        ctx2.run(ctx2_fun);
        EXPECT_EQ(ctx1.get(c), 20);
        EXPECT_EQ(ctx2.get(c), 30);
    };
    ctx1.run(ctx1_fun);
}

// test_context_threads_1 (std::thread for the executor: each thread has its own context)
TEST(CpythonContext, ContextThreads1) {
    isolated([] {
        af::ContextVar<int> cvar("cvar");
        std::atomic<int> mismatches{0};
        std::vector<int> results(10, -1);
        std::vector<std::thread> tp;
        for (int num = 0; num < 10; ++num)
            tp.emplace_back([&, num] {
                std::mt19937 rng(static_cast<unsigned>(num));
                for (int i = 0; i < 10; ++i) {
                    cvar.set(num + i);
                    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 4000));
                    if (cvar.get() != num + i) ++mismatches;
                }
                results[static_cast<std::size_t>(num)] = num;
            });
        for (auto& t : tp) t.join();
        EXPECT_EQ(mismatches.load(), 0);
        for (int i = 0; i < 10; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)], i);
    });
}

// ======================================================================================
// Lib/test/test_asyncio/test_tasks.py and test_threads.py
// ======================================================================================

// test_tasks.py test_context_1
TEST(CpythonTasksContext, Context1) {
    af::ContextVar<std::string> cvar("cvar", "nope");
    af::run([&] {
        EXPECT_EQ(cvar.get(), "nope");
        auto subtask = af::async([&] {
            af::sleep(10ms);
            EXPECT_EQ(cvar.get(), "nope");
            cvar.set("something else");
        });
        cvar.set("yes");
        EXPECT_EQ(cvar.get(), "yes");
        af::await(subtask);
        EXPECT_EQ(cvar.get(), "yes");
    });
}

// test_tasks.py test_context_2 (the future is a task waiting for an Event, completed by a
// call_soon, with the done callback added by main)
TEST(CpythonTasksContext, Context2) {
    af::ContextVar<std::string> cvar("cvar", "nope");
    af::run([&] {
        auto fut_on_done = [&](af::TaskRef) {
            // This change must not pollute the context of the "main()" task.
            cvar.set("something else");
        };
        EXPECT_EQ(cvar.get(), "nope");
        for (int j = 0; j < 2; ++j) {
            auto ev = std::make_shared<af::Event>();
            auto fut = af::async([ev] { ev->wait(); });
            fut.add_done_callback(fut_on_done);
            cvar.set("yes" + std::to_string(j));
            af::Loop::current().call_soon([ev] { ev->set(); });
            af::await(fut);
            EXPECT_EQ(cvar.get(), "yes" + std::to_string(j));
            for (int i = 0; i < 3; ++i) {
                // Test that task passed its context to add_done_callback:
                cvar.set("yes" + std::to_string(i) + "-" + std::to_string(j));
                af::sleep(1ms);
                EXPECT_EQ(cvar.get(), "yes" + std::to_string(i) + "-" + std::to_string(j));
            }
        }
    });
    EXPECT_EQ(cvar.get(), "nope");
}

// test_tasks.py test_context_3: 100 tasks in parallel, each modifying cvar.
TEST(CpythonTasksContext, Context3) {
    af::ContextVar<int> cvar("cvar", -1);
    std::mt19937 rng(3);
    af::run([&] {
        auto sub = [&](int num) {
            for (int i = 0; i < 10; ++i) {
                cvar.set(num + i);
                af::sleep(std::chrono::microseconds(1000 + rng() % 9000));
                EXPECT_EQ(cvar.get(), num + i);
            }
        };
        std::vector<af::Task<void>> tasks;
        for (int i = 0; i < 100; ++i) tasks.push_back(af::async(sub, static_cast<int>(rng() % 11)));
        for (auto& t : tasks) af::await(t);
    });
    EXPECT_EQ(cvar.get(), -1);
}

// test_tasks.py test_context_4, test_context_5 and test_context_6 (create_task(context=ctx)
// through the task factory, asyncio.create_task and loop.create_task: af::async here)
TEST(CpythonTasksContext, Context4to6) {
    af::ContextVar<int> cvar("cvar");
    auto coro = [&](int val) {
        af::sleep(0s);
        cvar.set(val);
    };
    auto ret = af::run([&] {
        std::vector<int> ret;
        af::Context ctx = af::copy_context();
        ret.push_back(ctx.get(cvar, 0));  // None
        af::TaskOptions o1;
        o1.context = ctx;
        auto t1 = af::async(o1, coro, 1);
        af::await(t1);
        ret.push_back(ctx.get(cvar, 0));
        af::TaskOptions o2;
        o2.context = ctx;
        auto t2 = af::async(o2, coro, 2);
        af::await(t2);
        ret.push_back(ctx.get(cvar, 0));
        return ret;
    });
    EXPECT_EQ(ret, std::vector<int>({0, 1, 2}));
}

// test_taskgroups.py test_taskgroup_task_context
TEST(CpythonTasksContext, TaskgroupTaskContext) {
    af::ContextVar<int> cvar("cvar");
    auto coro = [&](int val) {
        af::sleep(0s);
        cvar.set(val);
    };
    af::run([&] {
        af::task_group([&](af::TaskGroup& tg) {
            af::Context ctx = af::copy_context();
            EXPECT_FALSE(ctx.contains(cvar));  // ctx.get(cvar) is None
            af::TaskOptions o;
            o.context = ctx;
            auto t1 = tg.spawn(o, coro, 1);
            af::await(t1);
            EXPECT_EQ(1, ctx.get(cvar));
            auto t2 = tg.spawn(o, coro, 2);
            af::await(t2);
            EXPECT_EQ(2, ctx.get(cvar));
        });
    });
}

// test_threads.py test_to_thread_contextvars
TEST(CpythonTasksContext, ToThreadContextvars) {
    af::ContextVar<std::string> test_ctx("test_ctx");
    auto get_ctx = [&] { return test_ctx.get(); };
    auto result = af::run([&] {
        test_ctx.set("parrot");
        return af::to_thread(get_ctx);
    });
    EXPECT_EQ(result, "parrot");
}

// ======================================================================================
// Context: what asyncio's tests leave out
// ======================================================================================

TEST(Context, ChildSetNeverLeaksToParentAndChildSeesParentsValueAtSpawn) {
    af::ContextVar<int> v("v", 0);
    af::run([&] {
        v.set(1);
        auto child = af::async([&] {
            EXPECT_EQ(v.get(), 1);  // a copy of the creator's, taken at spawn
            v.set(2);
            auto grandchild = af::async([&] { return v.get(); });
            EXPECT_EQ(af::await(grandchild), 2);
            return v.get();
        });
        v.set(3);  // after the spawn: the child does not see it
        EXPECT_EQ(af::await(child), 2);
        EXPECT_EQ(v.get(), 3);
    });
    EXPECT_EQ(v.get(), 0);
}

TEST(Context, CallbacksCarryTheContextOfWhoScheduledThem) {
    af::ContextVar<std::string> v("v", "none");
    std::vector<std::string> seen;
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        v.set("soon");
        loop.call_soon([&] {
            seen.push_back("call_soon:" + v.get());
            v.set("changed by a callback");  // a copy: never seen by the task
        });
        v.set("later");
        loop.call_later(1ms, [&] { seen.push_back("call_later:" + v.get()); });
        v.set("at");
        loop.call_at(af::Clock::now() + 2ms, [&] { seen.push_back("call_at:" + v.get()); });
        v.set("threadsafe");
        std::thread th([&loop, &v, &seen] {
            // The calling thread's context (empty here), not the loop thread's.
            loop.call_soon_threadsafe([&] { seen.push_back("threadsafe:" + v.get()); });
        });
        th.join();
        v.set("task");
        af::sleep(20ms);
        EXPECT_EQ(v.get(), "task");
    });
    // Each saw the context of its scheduler (the order between them is not the point).
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, std::vector<std::string>(
                        {"call_at:at", "call_later:later", "call_soon:soon", "threadsafe:none"}));
}

TEST(Context, CallSoonThreadsafeCarriesTheCallingThreadsContext) {
    af::ContextVar<int> v("v", 0);
    int seen = -1;
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        std::thread th([&] {
            v.set(7);
            loop.call_soon_threadsafe([&] { seen = v.get(); });
        });
        th.join();
        af::sleep(5ms);
    });
    EXPECT_EQ(seen, 7);
}

// Run first in a process (ctest runs each test in a process of its own): the first
// ContextVar ever set is set by a callback, which must keep it to itself.
TEST(Context, FirstSetInACallbackOrAPoolJobStaysThere) {
    af::ContextVar<int> v("first_set", 0);
    af::run([&] {
        af::Loop::current().call_soon([&] { v.set(1); });
        af::sleep(1ms);
        EXPECT_EQ(v.get(), 0);
        af::to_thread([&] { v.set(2); });
        EXPECT_EQ(v.get(), 0);
        EXPECT_EQ(af::to_thread([&] { return v.get(); }), 0);
    });
    EXPECT_EQ(v.get(), 0);  // the thread that ran the loop
}

TEST(Context, RunCoroutineThreadsafeStartsTheTaskInACopyOfTheCallersContext) {
    af::ContextVar<int> v("v", 0);
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        std::atomic<int> seen{-1};
        std::thread th([&] {
            v.set(9);
            seen = af::run_coroutine_threadsafe(loop, [&] {
                       int at_start = v.get();
                       v.set(10);  // the task's own copy
                       return at_start;
                   }).get();
            EXPECT_EQ(v.get(), 9);
        });
        while (seen == -1) af::sleep(1ms);
        th.join();
        EXPECT_EQ(seen.load(), 9);
        EXPECT_EQ(v.get(), 0);
    });
}

TEST(Context, NestedRunOfTheTasksOwnContextThrows) {
    af::run([] {
        af::Context ctx = af::copy_context();
        af::TaskOptions o;
        o.context = ctx;
        auto t = af::async(o, [ctx] {
            assert_raises<af::RuntimeError>([&] { ctx.run([] {}); });
            // Another task running in the same context at the same time is fine (asyncio
            // allows it too), and a copy can be entered.
            ctx.copy().run([] {});
        });
        af::await(t);
    });
}

TEST(Context, RunInsideATaskMaySuspendAndKeepsItsContext) {
    af::ContextVar<int> v("v", 0);
    af::run([&] {
        af::Context ctx = af::Context::create();
        auto other = af::async([&] {
            for (int i = 0; i < 5; ++i) {
                EXPECT_EQ(v.get(), 0);
                af::sleep(0s);
            }
        });
        ctx.run([&] {
            v.set(5);
            af::sleep(1ms);
            EXPECT_EQ(v.get(), 5);
        });
        EXPECT_EQ(v.get(), 0);
        EXPECT_EQ(ctx.get(v), 5);
        af::await(other);
    });
}

TEST(Context, EnteredOnOneThreadRefusedOnAnother) {
    af::Context ctx = af::Context::create();
    std::promise<void> entered, release;
    std::thread holder([&] {
        ctx.run([&] {
            entered.set_value();
            release.get_future().wait();
        });
    });
    entered.get_future().wait();
    assert_raises<af::RuntimeError>([&] { ctx.run([] {}); });
    release.set_value();
    holder.join();
    ctx.run([] {});  // left on the other thread: free again
}

TEST(Context, EmptyHandleAndWrongTokens) {
    af::Context empty;
    assert_raises<af::InvalidStateError>([&] { empty.run([] {}); });
    assert_raises<af::InvalidStateError>([&] { empty.copy(); });
    EXPECT_EQ(empty.size(), 0u);
    af::ContextVar<int> v("v");
    assert_raises<af::RuntimeError>([&] { v.reset(af::ContextVar<int>::Token()); });
    // A token copied is one token: used by either copy, used for both.
    isolated([&] {
        auto t = v.set(1);
        auto copy = t;
        v.reset(copy);
        EXPECT_TRUE(t.used());
        assert_raises<af::RuntimeError>([&] { v.reset(t); });
    });
}

TEST(Context, ResetInATaskWithATokenOfItsCreator) {
    af::ContextVar<int> v("v", 0);
    af::run([&] {
        auto tok = v.set(1);
        auto child = af::async([&] { assert_raises<af::RuntimeError>([&] { v.reset(tok); }); });
        af::await(child);
        v.reset(tok);
        EXPECT_EQ(v.get(), 0);
    });
}

TEST(Context, CancelledAndFailedTasksLeaveTheCreatorsValues) {
    af::ContextVar<int> v("v", 0);
    af::run([&] {
        v.set(1);
        auto sleeper = af::async([&] {
            v.set(2);
            af::sleep(1h);
        });
        auto failer = af::async([&] {
            v.set(3);
            af::sleep(0s);
            throw std::runtime_error("boom");
        });
        af::sleep(1ms);
        sleeper.cancel();
        assert_raises<af::CancelledError>([&] { af::await(sleeper); });
        assert_raises<std::runtime_error>([&] { af::await(failer); });
        EXPECT_EQ(v.get(), 1);
    });
}

// ======================================================================================
// bind_thread_local
// ======================================================================================

thread_local std::string t_request_id = "none";
std::string& request_id() { return t_request_id; }

/// A legacy logger: it knows nothing of tasks and reads the thread's request id.
std::string log_line(const std::string& what) { return "[" + t_request_id + "] " + what; }

TEST(BindThreadLocal, LoggerKeepsEachTasksRequestIdAcross1000InterleavedTasks) {
    auto binding = af::bind_thread_local(&request_id);
    int wrong = 0;
    af::run([&] {
        std::vector<af::Task<void>> tasks;
        for (int i = 0; i < 1000; ++i)
            tasks.push_back(af::async([&wrong, i] {
                t_request_id = "req-" + std::to_string(i);
                for (int step = 0; step < 5; ++step) {
                    af::sleep(0s);
                    if (log_line("step") != "[req-" + std::to_string(i) + "] step") ++wrong;
                }
            }));
        for (auto& t : tasks) af::await(t);
        EXPECT_EQ(t_request_id, "none");  // the main task's own, never overwritten
    });
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(t_request_id, "none");
}

TEST(BindThreadLocal, NewTaskStartsWithACopyOfItsCreatorsAndChangesStayInside) {
    auto binding = af::bind_thread_local(&request_id);
    t_request_id = "outside";
    af::run([&] {
        EXPECT_EQ(t_request_id, "outside");  // the main task: a copy of af::run's caller's
        t_request_id = "parent";
        auto child = af::async([] {
            std::string at_start = t_request_id;
            t_request_id = "child";
            af::sleep(1ms);
            return at_start + "/" + t_request_id;
        });
        t_request_id = "parent, later";
        EXPECT_EQ(af::await(child), "parent/child");
        EXPECT_EQ(t_request_id, "parent, later");
    });
    EXPECT_EQ(t_request_id, "outside");
    t_request_id = "none";
}

// An eager task runs inside its spawner's step: its value goes in over the spawner's and
// comes back out at its first suspension and at its end, nested as deep as eager spawns go.
TEST(BindThreadLocal, EagerTasksNestInsideTheirSpawnersStep) {
    auto binding = af::bind_thread_local(&request_id);
    af::run([&] {
        t_request_id = "parent";
        af::TaskOptions eager;
        eager.eager = true;
        std::string seen_at_start, seen_by_grandchild;
        auto child = af::async(eager, [&] {
            seen_at_start = t_request_id;  // a copy of the parent's
            t_request_id = "child";
            auto grandchild = af::async(eager, [&] {
                seen_by_grandchild = t_request_id;
                t_request_id = "grandchild";
                af::sleep(1ms);
                return t_request_id;
            });
            EXPECT_EQ(t_request_id, "child");  // the grandchild suspended: ours is back
            af::sleep(0s);
            EXPECT_EQ(t_request_id, "child");
            return t_request_id + "/" + af::await(grandchild);
        });
        EXPECT_EQ(t_request_id, "parent");  // the child suspended inside async: ours is back
        EXPECT_EQ(seen_at_start, "parent");
        EXPECT_EQ(seen_by_grandchild, "child");
        EXPECT_EQ(af::await(child), "child/grandchild");
        auto ends_at_once = af::async(eager, [] {
            t_request_id = "short-lived";
            return 1;
        });
        EXPECT_TRUE(ends_at_once.done());
        EXPECT_EQ(t_request_id, "parent");
    });
    EXPECT_EQ(t_request_id, "none");
}

TEST(BindThreadLocal, CancellationAndExceptionsRestoreValues) {
    auto binding = af::bind_thread_local(&request_id);
    af::run([&] {
        t_request_id = "main";
        auto cancelled = af::async([] {
            t_request_id = "cancelled";
            try {
                af::sleep(1h);
            } catch (const af::CancelledError&) {
                EXPECT_EQ(t_request_id, "cancelled");  // its own, in its handler too
                throw;
            }
        });
        auto failed = af::async([] {
            t_request_id = "failed";
            af::sleep(0s);
            throw std::runtime_error(t_request_id);
        });
        af::sleep(1ms);
        EXPECT_EQ(t_request_id, "main");
        cancelled.cancel();
        assert_raises<af::CancelledError>([&] { af::await(cancelled); });
        auto e = assert_raises<std::runtime_error>([&] { af::await(failed); });
        EXPECT_STREQ(e.get().what(), "failed");
        EXPECT_EQ(t_request_id, "main");
    });
    EXPECT_EQ(t_request_id, "none");
}

TEST(BindThreadLocal, BindingDestroyedWhileTasksLive) {
    auto binding = af::bind_thread_local(&request_id);
    af::run([&] {
        t_request_id = "main";
        af::Event go;
        std::vector<std::string> seen;
        auto worker = af::async([&] {
            t_request_id = "worker";
            go.wait();
            seen.push_back(t_request_id);  // unbound now: the thread's (shared) object
        });
        af::sleep(1ms);
        binding.reset();  // inside a task: this thread's object gets its own value back now
        EXPECT_EQ(t_request_id, "none");
        EXPECT_FALSE(static_cast<bool>(binding));
        go.set();
        af::await(worker);
        EXPECT_EQ(seen, std::vector<std::string>({"none"}));
    });
    EXPECT_EQ(t_request_id, "none");
}

TEST(BindThreadLocal, BindingEndedOnAnotherThreadWhileATaskRuns) {
    auto binding = std::make_shared<af::ThreadLocalBinding>(af::bind_thread_local(&request_id));
    af::run([&] {
        t_request_id = "main";
        std::thread th([binding] { binding->reset(); });
        th.join();
        // This task's step still holds its value; the switch gives the thread its own back.
        EXPECT_EQ(t_request_id, "main");
        af::sleep(0s);
        EXPECT_EQ(t_request_id, "none");
    });
    EXPECT_EQ(t_request_id, "none");
}

TEST(BindThreadLocal, MadeOnAnotherThreadCoversEveryLoop) {
    af::ThreadLocalBinding binding;
    std::thread maker([&] { binding = af::bind_thread_local(&request_id); });
    maker.join();
    ASSERT_TRUE(static_cast<bool>(binding));
    std::atomic<int> wrong{0};
    auto loop_thread = [&wrong](std::string prefix) {
        af::run([&] {
            std::vector<af::Task<void>> tasks;
            for (int i = 0; i < 50; ++i)
                tasks.push_back(af::async([&wrong, prefix, i] {
                    t_request_id = prefix + std::to_string(i);
                    for (int s = 0; s < 3; ++s) {
                        af::sleep(0s);
                        if (t_request_id != prefix + std::to_string(i)) ++wrong;
                    }
                }));
            for (auto& t : tasks) af::await(t);
        });
        if (t_request_id != "none") ++wrong;
    };
    std::thread a(loop_thread, "a"), b(loop_thread, "b");
    a.join();
    b.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST(BindThreadLocal, MovedBindingStaysBoundAndTaskSpawnedBeforeStartsFromTheThreadsValue) {
    af::run([] {
        t_request_id = "thread";
        auto early = af::async([] {
            std::string at_start = t_request_id;
            t_request_id = "early";
            af::sleep(0s);
            return at_start + "/" + t_request_id;
        });
        af::ThreadLocalBinding moved;
        {
            auto b = af::bind_thread_local(&request_id);
            moved = std::move(b);
        }  // the moved-from binding ends nothing
        // This step began before the binding: it writes the thread's own object. From the
        // next step on the task has its value (a copy of the thread's), as does `early`.
        af::sleep(0s);
        t_request_id = "main";
        EXPECT_EQ(af::await(early), "thread/early");
        EXPECT_EQ(t_request_id, "main");
        moved.reset();
        EXPECT_EQ(t_request_id, "thread");
        t_request_id = "none";
    });
}

TEST(BindThreadLocal, RefusesNullAndTwiceBound) {
    assert_raises<std::invalid_argument>(
        [] { af::bind_thread_local(static_cast<std::string& (*)()>(nullptr)); });
    auto b = af::bind_thread_local(&request_id);
    assert_raises<std::invalid_argument>([] { af::bind_thread_local(&request_id); });
    b.reset();
    auto again = af::bind_thread_local(&request_id);  // free again
    EXPECT_TRUE(static_cast<bool>(again));
}

}  // namespace

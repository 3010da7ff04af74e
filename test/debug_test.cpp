// Debug mode: slow steps, unretrieved exceptions, never-awaited tasks, the task dump, SIGQUIT,
// and the stack overflow report.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

struct Reports {
    std::vector<af::ExceptionContext> all;
    void install(af::Loop& loop) {
        loop.set_exception_handler([this](const af::ExceptionContext& c) { all.push_back(c); });
    }
    std::size_t count(const std::string& needle) const {
        std::size_t n = 0;
        for (auto& c : all)
            if (c.message.find(needle) != std::string::npos) ++n;
        return n;
    }
};

std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "?";
    }
}

// Blocks the loop's thread without suspending (the bug debug mode exists to find).
void block_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace

TEST(DebugMode, SlowStepIsReportedWithNameAndDuration) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    loop.set_slow_callback_duration(30ms);
    loop.run_until_complete([] {
        auto t = af::async(af::TaskOptions{"blocker", 0}, [] {
            af::sleep(0s);  // a fast step first: not reported
            block_for(80ms);
            af::sleep(0s);  // the step that ends here took >= 80 ms
        });
        af::await(t);
    });
    loop.close();
    ASSERT_EQ(r.count("without suspending"), 1u);
    const af::ExceptionContext& c = r.all.at(0);
    EXPECT_EQ(c.task_name, "blocker");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(c.message, m, std::regex("took ([0-9.]+) ms")));
    EXPECT_GE(std::stod(m[1]), 80.0);
    EXPECT_LT(std::stod(m[1]), 5000.0);
}

TEST(DebugMode, SlowStepIsNotReportedWithoutDebug) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.set_slow_callback_duration(10ms);
    loop.run_until_complete([] { block_for(40ms); });
    loop.close();
    EXPECT_EQ(r.all.size(), 0u);
}

TEST(DebugMode, FastStepsAreNotReported) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    loop.run_until_complete([] {
        std::vector<af::Task<int>> ts;
        for (int i = 0; i < 100; ++i) ts.push_back(af::async([i] {
            af::sleep(0s);
            return i;
        }));
        return af::gather(std::move(ts)).size();
    });
    loop.close();
    EXPECT_EQ(r.all.size(), 0u);
}

TEST(DebugMode, EnvironmentVariableTurnsItOn) {
    ::setenv("ASYNCFIBER_DEBUG", "1", 1);
    {
        af::Loop loop;
        EXPECT_TRUE(loop.get_debug());
    }
    ::setenv("ASYNCFIBER_DEBUG", "0", 1);
    {
        af::Loop loop;
        EXPECT_FALSE(loop.get_debug());
    }
    ::unsetenv("ASYNCFIBER_DEBUG");
    af::Loop loop;
    EXPECT_FALSE(loop.get_debug());
}

TEST(DebugMode, UnretrievedExceptionIsReportedWithNameAndWhat) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.run_until_complete([] {
        af::async(af::TaskOptions{"failer", 0}, []() -> int { throw std::runtime_error("kaboom"); });
        af::sleep(0s);
        af::sleep(0s);
    });
    loop.close();
    ASSERT_EQ(r.count("never retrieved"), 1u);
    EXPECT_EQ(r.all[0].task_name, "failer");
    EXPECT_EQ(what_of(r.all[0].exception), "kaboom");
}

TEST(DebugMode, RetrievedExceptionIsNotReported) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.run_until_complete([] {
        auto t = af::async([]() -> int { throw std::runtime_error("kaboom"); });
        EXPECT_THROW(af::await(t), std::runtime_error);
    });
    loop.close();
    EXPECT_EQ(r.all.size(), 0u);
}

TEST(DebugMode, NeverAwaitedPendingTaskIsReportedAtClose) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    bool cancelled = false;
    loop.run_until_complete([&] {
        af::async(af::TaskOptions{"orphan", 0}, [&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                cancelled = true;
                throw;
            }
        });
        auto awaited = af::async(af::TaskOptions{"watched", 0}, [] { af::sleep(10s); });
        auto watcher = af::async([awaited]() mutable { af::await(awaited); });
        af::sleep(0s);
        af::sleep(0s);
    });
    EXPECT_EQ(r.count("pending"), 0u);
    loop.close();
    EXPECT_TRUE(cancelled);
    std::vector<std::string> names;
    for (auto& c : r.all)
        if (c.message.find("pending") != std::string::npos) names.push_back(c.task_name);
    // "watched" is awaited by the watcher; the watcher itself is not awaited by anyone.
    ASSERT_EQ(names.size(), 2u);
    EXPECT_EQ(names[0], "orphan");
    EXPECT_NE(names[1], "watched");
}

TEST(DebugMode, NeverAwaitedIsSilentWithoutDebug) {
    af::Loop loop;
    Reports r;
    r.install(loop);
    loop.run_until_complete([] { af::async([] { af::sleep(10s); }); });
    loop.close();
    EXPECT_EQ(r.all.size(), 0u);
}

namespace {
// Uses about `bytes` of stack, then parks on `ev` while the frames are still there.
void deep_then_wait(std::size_t bytes, af::Event& ev) {
    volatile char buf[1024];
    for (auto& c : buf) c = 1;
    if (bytes > sizeof buf)
        deep_then_wait(bytes - sizeof buf, ev);
    else
        ev.wait();
    buf[0] = buf[1];  // keeps the frame alive across the call
}

std::string line_of(const std::string& dump, const std::string& name) {
    std::istringstream in(dump);
    std::string line;
    while (std::getline(in, line))
        if (line.find("'" + name + "'") != std::string::npos) return line;
    return {};
}

double stack_kib(const std::string& line) {
    std::smatch m;
    if (!std::regex_search(line, m, std::regex("stack ([0-9.]+) (B|KiB) of"))) return -1;
    double v = std::stod(m[1]);
    return m[2] == "B" ? v / 1024 : v;
}
}  // namespace

TEST(DumpTasks, ShowsEveryStateAgeAndStack) {
    af::Loop loop;
    loop.set_debug(true);
    std::string dump;
    loop.run_until_complete([&] {
        af::Event ev;
        auto sleeper = af::async(af::TaskOptions{"sleeper", 0}, [] { af::sleep(5s); });
        auto waiter = af::async(af::TaskOptions{"waiter", 0}, [&] { ev.wait(); });
        auto deep = af::async(af::TaskOptions{"deep", 0}, [&] { deep_then_wait(96 * 1024, ev); });
        auto yielder = af::async(af::TaskOptions{"yielder", 0}, [&] {
            while (!ev.is_set()) af::sleep(0s);
        });
        auto sub = af::async(af::TaskOptions{"awaiter", 0}, [&] { af::await(waiter); });
        af::sleep(0s);
        auto fresh = af::async(af::TaskOptions{"fresh", 0}, [] {});
        std::ostringstream out;
        af::dump_tasks(out);
        dump = out.str();
        ev.set();
        sleeper.cancel();
        af::await(yielder);
        af::await(deep);
        af::await(sub);
        af::await(fresh);
        EXPECT_THROW(af::await(sleeper), af::CancelledError);
    });
    loop.close();
    SCOPED_TRACE(dump);
    EXPECT_NE(dump.find("7 live task(s)"), std::string::npos);
    EXPECT_TRUE(std::regex_search(line_of(dump, "main"), std::regex("^  #[0-9]+ 'main' running, age [0-9.]+ ms, stack")));
    EXPECT_TRUE(std::regex_search(line_of(dump, "sleeper"), std::regex("sleeping until now\\+[0-9]{4}\\.[0-9] ms")));
    EXPECT_NE(line_of(dump, "waiter").find("waiting on Event"), std::string::npos);
    EXPECT_NE(line_of(dump, "awaiter").find("waiting on a task"), std::string::npos);
    EXPECT_NE(line_of(dump, "yielder").find("ready (in sleep(0))"), std::string::npos);
    EXPECT_NE(line_of(dump, "fresh").find("ready (not started), age"), std::string::npos);
    EXPECT_NE(line_of(dump, "fresh").find("no stack yet"), std::string::npos);
    EXPECT_GE(stack_kib(line_of(dump, "deep")), 96.0);
    EXPECT_LT(stack_kib(line_of(dump, "deep")), 140.0);
    EXPECT_GT(stack_kib(line_of(dump, "waiter")), 0.0);
    EXPECT_LT(stack_kib(line_of(dump, "waiter")), 16.0);
}

TEST(DumpTasks, HighWaterMarkIsPerTaskInDebugMode) {
    // In debug mode a finished task's stack is cleared, so a shallow task that reuses the
    // (warm, reused first) stack of a deep one reports its own usage.
    af::Loop loop;
    loop.set_debug(true);
    std::string dump;
    loop.run_until_complete([&] {
        af::Event ev;
        ev.set();
        af::await(af::async([&] { deep_then_wait(128 * 1024, ev); }));
        af::Event gate;
        auto shallow = af::async(af::TaskOptions{"shallow", 0}, [&] { gate.wait(); });
        af::sleep(0s);
        std::ostringstream out;
        af::dump_tasks(out);
        dump = out.str();
        gate.set();
        af::await(shallow);
    });
    loop.close();
    SCOPED_TRACE(dump);
    EXPECT_GT(stack_kib(line_of(dump, "shallow")), 0.0);
    EXPECT_LT(stack_kib(line_of(dump, "shallow")), 16.0);
}

TEST(DumpTasks, OutsideALoopThrows) {
    std::ostringstream out;
    EXPECT_THROW(af::dump_tasks(out), af::RuntimeError);
    EXPECT_EQ(af::debug::live_task_count(), 0u);
}

TEST(DumpTasks, PrintedOnSigquitInDebugMode) {
    af::Loop loop;
    loop.set_debug(true);
    testing::internal::CaptureStderr();
    loop.run_until_complete([] {
        auto t = af::async(af::TaskOptions{"bystander", 0}, [] { af::sleep(10s); });
        af::sleep(0s);
        std::raise(SIGQUIT);
        af::sleep(50ms);  // the loop waits in its io_context and runs the signal handler
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
    });
    loop.close();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("live task(s)"), std::string::npos) << err;
    EXPECT_NE(err.find("'bystander' sleeping until"), std::string::npos) << err;
    EXPECT_NE(err.find("'main' sleeping until now+"), std::string::npos) << err;
}

namespace {
// Deep enough for any stack: stops only at a depth no test stack reaches.
int recurse_deep(int depth) {
    volatile char frame[512];
    frame[0] = static_cast<char>(depth);
    if (depth > 1000000) return frame[0];
    return recurse_deep(depth + 1) + frame[0];
}
}  // namespace

TEST(StackOverflowDeathTest, ReportsNameSizeAndRemedy) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(af::run([] {
                     auto t = af::async(af::TaskOptions{"deep-recursion", 64 * 1024},
                                        [] { return recurse_deep(0); });
                     return af::await(t);
                 }),
                 "stack overflow in task 'deep-recursion' \\(id [0-9]+\\): hit the guard page\\. "
                 "Its stack is 65536 bytes \\(64 KiB\\)\\. Give the task a larger stack with "
                 "af::async\\(af::TaskOptions\\{name, bytes\\}, fn\\) or raise the default "
                 "with af::set_default_stack_size");
}

TEST(StackPoolStats, NoStackLeftAfterRun) {
    af::run([] {
        std::vector<af::Task<void>> ts;
        for (int i = 0; i < 200; ++i) ts.push_back(af::async([] { af::sleep(0s); }));
        EXPECT_GE(af::debug::live_task_count(), 200u);
        EXPECT_GE(af::debug::stack_pool_stats().live, 1u);
        af::gather(std::move(ts));
    });
    EXPECT_EQ(af::debug::stack_pool_stats().live, 0u);
}

// Debug mode: slow steps, unretrieved exceptions, never-awaited tasks, the task dump and its
// await graph, SIGQUIT (also while the loop is blocked), the watchdog, and the stack overflow
// report.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>
#include <asyncfiber/detail/assert.hpp>
#include "../lib/runtime/watchdog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <functional>
#include <mutex>
#include <poll.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace af = asyncfiber;
using Clock = af::Clock;
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
        for (int i = 0; i < 100; ++i)
            ts.push_back(af::async([i] {
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
        af::async(af::TaskOptions{"failer", 0},
                  []() -> int { throw std::runtime_error("kaboom"); });
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
    EXPECT_TRUE(std::regex_search(line_of(dump, "main"),
                                  std::regex("^  #[0-9]+ 'main' running, age [0-9.]+ ms, stack")));
    EXPECT_TRUE(std::regex_search(line_of(dump, "sleeper"),
                                  std::regex("sleeping until now\\+[0-9]{4}\\.[0-9] ms")));
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

// ---- the watchdog: a step still running is reported while it runs ----

namespace {

// The reports a watchdog delivers (on its own thread), and a way to wait for them.
struct WatchdogReports {
    std::mutex m;
    std::condition_variable cv;
    std::vector<af::WatchdogReport> all;

    void install(af::Loop& loop) {
        loop.set_watchdog_handler([this](const af::WatchdogReport& r) {
            std::lock_guard<std::mutex> lk(m);
            all.push_back(r);
            cv.notify_all();
        });
    }
    /// Waits (generously) until `n` reports of kind `k` have come; false if they never do.
    bool wait_for(af::WatchdogReport::Kind k, std::size_t n = 1) {
        std::unique_lock<std::mutex> lk(m);
        return cv.wait_for(lk, std::chrono::seconds(60), [&] { return count_locked(k) >= n; });
    }
    std::size_t count(af::WatchdogReport::Kind k) {
        std::lock_guard<std::mutex> lk(m);
        return count_locked(k);
    }
    std::vector<af::WatchdogReport> copy() {
        std::lock_guard<std::mutex> lk(m);
        return all;
    }

private:
    std::size_t count_locked(af::WatchdogReport::Kind k) const {
        std::size_t c = 0;
        for (auto& r : all) c += r.kind == k;
        return c;
    }
};

bool stack_mentions(const af::WatchdogReport& r, const std::string& needle) {
    for (auto& f : r.stack)
        if (f.find(needle) != std::string::npos) return true;
    return false;
}

std::string stack_text(const af::WatchdogReport& r) {
    std::string s;
    for (auto& f : r.stack) s += f + "\n";
    return s;
}

// The ways a task blocks its loop. noinline, so that each is a frame of its own in the trace.
__attribute__((noinline)) void lock_a_mutex_held_elsewhere(std::mutex& m) {
    m.lock();
    m.unlock();
}

__attribute__((noinline)) long spin_until_released(const std::atomic<bool>& released) {
    long spins = 0;
    while (!released.load(std::memory_order_acquire)) ++spins;
    return spins;
}

__attribute__((noinline)) char read_from_a_silent_pipe(int fd) {
    char c = 0;
    ssize_t n;
    do {
        n = ::read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? c : 0;
}

std::size_t thread_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

struct NoWatchdogEnvironment {
    NoWatchdogEnvironment() {
        ::unsetenv("ASYNCFIBER_DEBUG");
        ::unsetenv("ASYNCFIBER_WATCHDOG_MS");
    }
};

// A loop whose watchdog (at 50 ms) reports into `reports`, and a thread that ends the blocking
// once the watchdog has reported the blocked step: no timing in the test, only waiting.
struct WatchedLoop {
    NoWatchdogEnvironment env;
    af::Loop loop;
    WatchdogReports reports;
    std::thread releaser;

    explicit WatchedLoop(std::function<void()> release) {
        reports.install(loop);
        loop.set_watchdog(50ms);
        releaser = std::thread([this, release] {
            reports.wait_for(af::WatchdogReport::Kind::running);
            release();
        });
    }
    ~WatchedLoop() {
        if (releaser.joinable()) releaser.join();  // a test that failed early
    }
    /// Joins the releaser and closes the loop (which delivers the "ended" report first).
    std::vector<af::WatchdogReport> finish() {
        releaser.join();
        loop.close();
        return reports.copy();
    }
};

}  // namespace

TEST(Watchdog, ReportsATaskWaitingForAMutexWhileItWaits) {
    std::mutex held;
    held.lock();
    // Another thread lets the mutex go only once the watchdog has reported the blocked step.
    WatchedLoop w([&] { held.unlock(); });
    w.loop.run_until_complete([&] {
        auto t =
            af::async(af::TaskOptions{"holder", 0}, [&] { lock_a_mutex_held_elsewhere(held); });
        af::await(t);
    });
    auto all = w.finish();
    ASSERT_EQ(w.reports.count(af::WatchdogReport::Kind::running), 1u);
    ASSERT_EQ(w.reports.count(af::WatchdogReport::Kind::ended), 1u);
    const af::WatchdogReport& r = all.at(0);
    EXPECT_EQ(r.kind, af::WatchdogReport::Kind::running);
    EXPECT_EQ(r.task_name, "holder");
    EXPECT_NE(r.task_id, 0u);
    EXPECT_GE(r.elapsed, 50ms);
    EXPECT_EQ(r.threshold, 50ms);
    EXPECT_TRUE(stack_mentions(r, "lock_a_mutex_held_elsewhere")) << stack_text(r);
    EXPECT_TRUE(stack_mentions(r, "pthread_mutex_lock") || stack_mentions(r, "lll_lock_wait"))
        << stack_text(r);
    EXPECT_NE(
        r.message.find("task 'holder' (id " + std::to_string(r.task_id) + ") has been running for"),
        std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find("lock_a_mutex_held_elsewhere"), std::string::npos) << r.message;
    const af::WatchdogReport& end = all.at(1);
    EXPECT_EQ(end.kind, af::WatchdogReport::Kind::ended);
    EXPECT_EQ(end.task_name, "holder");
    EXPECT_GE(end.elapsed, r.elapsed);
    EXPECT_TRUE(end.stack.empty());
    EXPECT_NE(end.message.find("task 'holder' (id " + std::to_string(r.task_id) +
                               "): the step ended after"),
              std::string::npos)
        << end.message;
}

TEST(Watchdog, ReportsABusyLoopWhileItSpins) {
    std::atomic<bool> released{false};
    WatchedLoop w([&] { released.store(true, std::memory_order_release); });
    w.loop.run_until_complete([&] {
        auto t =
            af::async(af::TaskOptions{"spinner", 0}, [&] { return spin_until_released(released); });
        EXPECT_GT(af::await(t), 0);
    });
    auto all = w.finish();
    ASSERT_EQ(w.reports.count(af::WatchdogReport::Kind::running), 1u);
    EXPECT_EQ(all.at(0).task_name, "spinner");
    EXPECT_TRUE(stack_mentions(all.at(0), "spin_until_released")) << stack_text(all.at(0));
    EXPECT_EQ(w.reports.count(af::WatchdogReport::Kind::ended), 1u);
}

TEST(Watchdog, ReportsABlockingReadAndTheReadGoesOn) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    WatchedLoop w([&] {
        char c = 'x';
        EXPECT_EQ(::write(fds[1], &c, 1), 1);
    });
    char got = 0;
    w.loop.run_until_complete([&] {
        auto t = af::async(af::TaskOptions{"reader", 0},
                           [&] { return read_from_a_silent_pipe(fds[0]); });
        got = af::await(t);
    });
    auto all = w.finish();
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_EQ(got, 'x');  // the watchdog's signal did not break the read
    ASSERT_EQ(w.reports.count(af::WatchdogReport::Kind::running), 1u);
    EXPECT_EQ(all.at(0).task_name, "reader");
    EXPECT_TRUE(stack_mentions(all.at(0), "read_from_a_silent_pipe")) << stack_text(all.at(0));
    EXPECT_TRUE(stack_mentions(all.at(0), "read")) << stack_text(all.at(0));
}

TEST(Watchdog, ReportsABlockedCallback) {
    std::mutex held;
    held.lock();
    WatchedLoop w([&] { held.unlock(); });
    w.loop.run_until_complete([&] {
        af::Event done;
        af::Loop::current().call_soon([&] {
            lock_a_mutex_held_elsewhere(held);
            done.set();
        });
        done.wait();
    });
    auto all = w.finish();
    ASSERT_GE(all.size(), 1u);
    EXPECT_EQ(all.at(0).task_name, "");
    EXPECT_EQ(all.at(0).task_id, 0u);
    EXPECT_NE(all.at(0).message.find("a loop callback has been running for"), std::string::npos);
    EXPECT_TRUE(stack_mentions(all.at(0), "lock_a_mutex_held_elsewhere")) << stack_text(all.at(0));
}

TEST(Watchdog, OneReportPerBlockedStepAndNoneForShortSteps) {
    NoWatchdogEnvironment env;
    af::Loop loop;
    WatchdogReports reports;
    reports.install(loop);
    loop.set_watchdog(40ms);
    loop.run_until_complete([] {
        for (int i = 0; i < 200; ++i) af::sleep(0s);  // many short steps
        block_for(400ms);                             // ten thresholds in one step
        for (int i = 0; i < 200; ++i) af::sleep(0s);
        block_for(400ms);  // a second blocked step
    });
    loop.close();
    EXPECT_EQ(reports.count(af::WatchdogReport::Kind::running), 2u);
    EXPECT_EQ(reports.count(af::WatchdogReport::Kind::ended), 2u);
    for (auto& r : reports.copy()) {
        EXPECT_EQ(r.task_name, "main");
        if (r.kind == af::WatchdogReport::Kind::ended) {
            EXPECT_GE(r.elapsed, 350ms);
            EXPECT_LT(r.elapsed, 30s);
        }
    }
}

// Whether the watchdog's thread was joined: the library's own count of running watchdog
// threads, exact once a join has returned, must be zero at once; /proc/self/task must then come
// back to `base`. The kernel unlinks a thread from it a moment after pthread_join returns
// (glibc's join wakes when the kernel clears the thread's id, before the thread is released),
// which a loaded machine stretches, so /proc gets up to 5 s — a thread that was never stopped
// would stay listed.
static std::size_t thread_count_once_settled(std::size_t base) {
    const auto until = Clock::now() + 5s;
    std::size_t n = thread_count();
    while (n != base && Clock::now() < until) {
        std::this_thread::sleep_for(1ms);
        n = thread_count();
    }
    return n;
}
#define EXPECT_JOINED(base)                                   \
    do {                                                      \
        EXPECT_EQ(af::detail::watchdog_threads_running(), 0); \
        EXPECT_EQ(thread_count_once_settled(base), (base));   \
    } while (0)

TEST(Watchdog, NoThreadUnlessOnAndClosingJoinsIt) {
    NoWatchdogEnvironment env;
    const std::size_t base = thread_count();
    {
        af::Loop loop;
        std::size_t inside = 0;
        loop.run_until_complete([&] { inside = thread_count(); });
        EXPECT_EQ(inside, base);  // off by default: no thread
        loop.set_watchdog(100ms);
        EXPECT_EQ(af::detail::watchdog_threads_running(), 1);
        EXPECT_EQ(thread_count(), base + 1);
        loop.run_until_complete([&] { inside = thread_count(); });
        EXPECT_EQ(inside, base + 1);
        loop.set_watchdog(Clock::duration::zero());
        EXPECT_JOINED(base);   // off again: joined
        loop.set_debug(true);  // debug mode: on at the slow-callback duration
        EXPECT_EQ(thread_count(), base + 1);
        loop.set_watchdog(Clock::duration::zero());  // explicitly off: the thread stays for SIGQUIT
        EXPECT_EQ(thread_count(), base + 1);
        loop.set_debug(false);
        EXPECT_JOINED(base);
        loop.set_watchdog(30ms);
        EXPECT_EQ(thread_count(), base + 1);
        loop.close();
        EXPECT_JOINED(base);      // the watchdog ends with its loop
        loop.set_watchdog(30ms);  // a closed loop starts none
        EXPECT_EQ(thread_count(), base);
    }
    {
        af::Loop loop;
        loop.set_watchdog(30ms);
        EXPECT_EQ(thread_count(), base + 1);
    }  // destroyed without close(): joined all the same
    EXPECT_JOINED(base);
}

TEST(Watchdog, DebugModeTurnsItOnAtTheSlowCallbackDuration) {
    NoWatchdogEnvironment env;
    af::Loop loop;
    WatchdogReports reports;
    reports.install(loop);
    Reports slow;
    slow.install(loop);
    loop.set_debug(true);
    loop.set_slow_callback_duration(40ms);
    loop.run_until_complete([] { block_for(300ms); });
    loop.close();
    auto all = reports.copy();
    ASSERT_EQ(reports.count(af::WatchdogReport::Kind::running), 1u);
    EXPECT_EQ(all.at(0).threshold, 40ms);
    EXPECT_EQ(all.at(0).task_name, "main");
    // The slow-step report of debug mode comes after the step, as before.
    EXPECT_EQ(slow.count("without suspending"), 1u);
}

TEST(Watchdog, EnvironmentVariableAndBadArguments) {
    NoWatchdogEnvironment env;
    af::Loop plain;
    EXPECT_THROW(plain.set_watchdog(-1ms), std::invalid_argument);
    const std::size_t base = thread_count();
    ::setenv("ASYNCFIBER_WATCHDOG_MS", "40", 1);
    {
        af::Loop loop;
        WatchdogReports reports;
        reports.install(loop);
        std::size_t inside = 0;
        loop.run_until_complete([&] {
            inside = thread_count();
            block_for(300ms);
        });
        loop.close();
        EXPECT_EQ(inside, base + 1);
        ASSERT_EQ(reports.count(af::WatchdogReport::Kind::running), 1u);
        EXPECT_EQ(reports.copy().at(0).threshold, 40ms);
    }
    ::setenv("ASYNCFIBER_WATCHDOG_MS", "often", 1);
    testing::internal::CaptureStderr();
    {
        // (Counted again: the first report started the process's reporter thread.)
        const std::size_t before = thread_count();
        af::Loop loop;
        std::size_t inside = 0;
        loop.run_until_complete([&] { inside = thread_count(); });
        EXPECT_EQ(inside, before);  // ignored, with a message
    }
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("ASYNCFIBER_WATCHDOG_MS=often is not a number of milliseconds"),
              std::string::npos)
        << err;
    ::setenv("ASYNCFIBER_WATCHDOG_MS", "0", 1);
    {
        af::Loop loop;
        loop.set_debug(true);  // debug mode, but the environment turned step reports off
        WatchdogReports reports;
        reports.install(loop);
        loop.set_slow_callback_duration(20ms);
        loop.run_until_complete([] { block_for(200ms); });
        loop.close();
        EXPECT_EQ(reports.copy().size(), 0u);
    }
    ::unsetenv("ASYNCFIBER_WATCHDOG_MS");
}

TEST(Watchdog, DefaultHandlerPrintsToStderr) {
    NoWatchdogEnvironment env;
    af::Loop loop;
    loop.set_watchdog(40ms);
    testing::internal::CaptureStderr();
    loop.run_until_complete([] {
        auto t = af::async(af::TaskOptions{"sleepy", 0}, [] { block_for(300ms); });
        af::await(t);
    });
    loop.close();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("asyncfiber: watchdog: task 'sleepy'"), std::string::npos) << err;
    EXPECT_NE(err.find("Stack of the loop's thread:\n  #0  "), std::string::npos) << err;
    EXPECT_NE(err.find("the step ended after"), std::string::npos) << err;
}

// ---- SIGQUIT while the loop is blocked ----

TEST(DumpTasks, PrintedOnSigquitWhileTheLoopIsBlocked) {
    NoWatchdogEnvironment env;
    af::Loop loop;
    loop.set_debug(true);
    WatchdogReports reports;  // (also keeps the watchdog's reports off stderr)
    reports.install(loop);
    std::mutex held;
    held.lock();
    // stderr goes to a pipe that another thread reads while the loop is stuck.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const int saved_stderr = ::dup(2);
    ::dup2(fds[1], 2);
    std::string dump;
    std::thread prober([&] {
        reports.wait_for(af::WatchdogReport::Kind::running);  // the loop is stuck now
        ::kill(::getpid(), SIGQUIT);
        char buf[4096];
        const auto give_up = std::chrono::steady_clock::now() + 60s;
        while (dump.find("'bystander' sleeping until now+") == std::string::npos &&
               std::chrono::steady_clock::now() < give_up) {
            pollfd p{fds[0], POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            ssize_t n = ::read(fds[0], buf, sizeof buf);
            if (n > 0) dump.append(buf, static_cast<std::size_t>(n));
        }
        held.unlock();
    });
    loop.run_until_complete([&] {
        auto bystander = af::async(af::TaskOptions{"bystander", 0}, [] { af::sleep(10s); });
        auto stuck =
            af::async(af::TaskOptions{"stuck", 0}, [&] { lock_a_mutex_held_elsewhere(held); });
        af::await(stuck);
        bystander.cancel();
        EXPECT_THROW(af::await(bystander), af::CancelledError);
    });
    prober.join();
    ::dup2(saved_stderr, 2);
    ::close(saved_stderr);
    ::close(fds[0]);
    ::close(fds[1]);
    loop.close();
    SCOPED_TRACE(dump);
    EXPECT_NE(dump.find("task dump from a signal handler"), std::string::npos);
    EXPECT_NE(dump.find("live task(s)"), std::string::npos);
    EXPECT_TRUE(
        std::regex_search(dump, std::regex("#[0-9]+ 'stuck' running, age [0-9.]+ ms, stack")));
    EXPECT_TRUE(
        std::regex_search(dump, std::regex("#[0-9]+ 'bystander' sleeping until now\\+[0-9.]+ ms")));
    EXPECT_TRUE(std::regex_search(dump, std::regex("#[0-9]+ 'main' waiting on a task")));
    // The await graph is there too: main awaits stuck.
    EXPECT_TRUE(std::regex_search(
        dump, std::regex("\n  \u251c\u2500\u2500 #[0-9]+ 'main' waiting on a task\n"
                         "  \u2502   \u2514\u2500\u2500 #[0-9]+ 'stuck' running\n")));
}

// ---- the await graph (asyncio 3.14's capture_call_graph and pstree) ----

namespace {
std::string id_of(const af::TaskRef& t) { return std::to_string(t.id()); }
}  // namespace

TEST(AwaitGraph, GatherOfTasksAwaitingTasksNodeByNode) {
    af::Loop loop;
    std::string dump, formatted;
    loop.run_until_complete([&] {
        af::Event go;
        auto leaf = [&](const char* name, int v) {
            return af::async(af::TaskOptions{name, 0}, [&go, v] {
                go.wait();
                return v;
            });
        };
        auto c = leaf("leaf-c", 3), d = leaf("leaf-d", 4), e = leaf("leaf-e", 5),
             f = leaf("leaf-f", 6);
        auto a = af::async(af::TaskOptions{"a", 0}, [c]() mutable { return af::await(c); });
        auto b = af::async(af::TaskOptions{"b", 0}, [d, e]() mutable {
            auto r = af::gather(d, e);
            return std::get<0>(r) + std::get<1>(r);
        });
        auto root = af::async(af::TaskOptions{"root", 0}, [a, b]() mutable {
            auto r = af::gather(a, b);
            return std::get<0>(r) + std::get<1>(r);
        });
        auto loner = af::async(af::TaskOptions{"loner", 0}, [&go] { go.wait(); });
        auto waiter = af::async(af::TaskOptions{"waiter", 0},
                                [f] { EXPECT_EQ(af::wait({f}).done.size(), 1u); });
        af::TaskRef m1, m2;
        auto joiner = af::async(af::TaskOptions{"joiner", 0}, [&] {
            af::TaskGroup g;
            m1 = g.spawn(af::TaskOptions{"m1", 0}, [&go] { go.wait(); });
            m2 = g.spawn(af::TaskOptions{"m2", 0}, [&go] { go.wait(); });
            g.join();
        });
        for (int i = 0; i < 4; ++i) af::sleep(0s);  // every task is at its suspension point

        // Node by node, from a leaf up (asyncio.capture_call_graph).
        af::CallGraph gc = af::capture_call_graph(c);
        EXPECT_EQ(gc.task, af::TaskRef(c));
        EXPECT_EQ(gc.waiting_on, "Event");
        ASSERT_EQ(gc.awaited_by.size(), 1u);
        EXPECT_EQ(gc.awaited_by[0].task, af::TaskRef(a));
        EXPECT_EQ(gc.awaited_by[0].waiting_on, "a task");
        ASSERT_EQ(gc.awaited_by[0].awaited_by.size(), 1u);
        EXPECT_EQ(gc.awaited_by[0].awaited_by[0].task, af::TaskRef(root));
        EXPECT_EQ(gc.awaited_by[0].awaited_by[0].waiting_on, "gather");
        EXPECT_TRUE(gc.awaited_by[0].awaited_by[0].awaited_by.empty());

        for (auto* leaf_task : {&d, &e}) {
            af::CallGraph g = af::capture_call_graph(*leaf_task);
            ASSERT_EQ(g.awaited_by.size(), 1u);
            EXPECT_EQ(g.awaited_by[0].task, af::TaskRef(b));
            EXPECT_EQ(g.awaited_by[0].waiting_on, "gather");
            ASSERT_EQ(g.awaited_by[0].awaited_by.size(), 1u);
            EXPECT_EQ(g.awaited_by[0].awaited_by[0].task, af::TaskRef(root));
        }
        af::CallGraph gf = af::capture_call_graph(f);
        ASSERT_EQ(gf.awaited_by.size(), 1u);
        EXPECT_EQ(gf.awaited_by[0].task, af::TaskRef(waiter));
        EXPECT_EQ(gf.awaited_by[0].waiting_on, "af::wait");
        for (auto* member : {&m1, &m2}) {
            af::CallGraph g = af::capture_call_graph(*member);
            ASSERT_EQ(g.awaited_by.size(), 1u);
            EXPECT_EQ(g.awaited_by[0].task, af::TaskRef(joiner));
            EXPECT_EQ(g.awaited_by[0].waiting_on, "TaskGroup");
        }
        af::CallGraph gl = af::capture_call_graph(loner);
        EXPECT_EQ(gl.waiting_on, "Event");
        EXPECT_TRUE(gl.awaited_by.empty());
        af::CallGraph self = af::capture_call_graph();
        EXPECT_EQ(self.task, af::current_task());
        EXPECT_EQ(self.waiting_on, "");  // running
        EXPECT_TRUE(self.awaited_by.empty());

        formatted = af::format_call_graph(gc);
        EXPECT_EQ(formatted, "* Task 'leaf-c' (id " + id_of(c) +
                                 ") waiting on Event\n"
                                 "  awaited by:\n"
                                 "  * Task 'a' (id " +
                                 id_of(a) +
                                 ") waiting on a task\n"
                                 "    awaited by:\n"
                                 "    * Task 'root' (id " +
                                 id_of(root) + ") waiting on gather\n");

        std::ostringstream out;
        af::dump_tasks(out);
        dump = out.str();
        const std::string tree =
            "asyncfiber: await graph (under each task, the tasks it awaits)\n"
            "  \u251c\u2500\u2500 #" +
            id_of(af::current_task()) +
            " 'main' running\n"
            "  \u251c\u2500\u2500 #" +
            id_of(root) +
            " 'root' waiting on gather\n"
            "  \u2502   \u251c\u2500\u2500 #" +
            id_of(a) +
            " 'a' waiting on a task\n"
            "  \u2502   \u2502   \u2514\u2500\u2500 #" +
            id_of(c) +
            " 'leaf-c' waiting on Event\n"
            "  \u2502   \u2514\u2500\u2500 #" +
            id_of(b) +
            " 'b' waiting on gather\n"
            "  \u2502       \u251c\u2500\u2500 #" +
            id_of(d) +
            " 'leaf-d' waiting on Event\n"
            "  \u2502       \u2514\u2500\u2500 #" +
            id_of(e) +
            " 'leaf-e' waiting on Event\n"
            "  \u251c\u2500\u2500 #" +
            id_of(loner) +
            " 'loner' waiting on Event\n"
            "  \u251c\u2500\u2500 #" +
            id_of(waiter) +
            " 'waiter' waiting on af::wait\n"
            "  \u2502   \u2514\u2500\u2500 #" +
            id_of(f) +
            " 'leaf-f' waiting on Event\n"
            "  \u2514\u2500\u2500 #" +
            id_of(joiner) +
            " 'joiner' waiting on TaskGroup\n"
            "      \u251c\u2500\u2500 #" +
            id_of(m1) +
            " 'm1' waiting on Event\n"
            "      \u2514\u2500\u2500 #" +
            id_of(m2) + " 'm2' waiting on Event\n";
        EXPECT_NE(dump.find(tree), std::string::npos) << dump << "\nexpected:\n" << tree;
        EXPECT_EQ(dump.substr(dump.size() - tree.size()), tree);

        go.set();
        EXPECT_EQ(af::await(root), 3 + 4 + 5);
        af::await(loner);
        af::await(waiter);
        af::await(joiner);
        // Done tasks await nothing and nobody awaits them any more.
        EXPECT_TRUE(af::capture_call_graph(c).awaited_by.empty());
        EXPECT_EQ(af::capture_call_graph(c).waiting_on, "");
        std::ostringstream after;
        af::dump_tasks(after);
        EXPECT_EQ(after.str().find("await graph"), std::string::npos) << after.str();
    });
    loop.close();
}

TEST(AwaitGraph, AnAwaitCycleIsShownOnceAndNotFollowed) {
    af::Loop loop;
    loop.run_until_complete([&] {
        af::TaskRef cb;
        // cyc-a waits (with a timeout) for cyc-b, which awaits cyc-a: a cycle until the timeout.
        auto ca = af::async(af::TaskOptions{"cyc-a", 0}, [&cb] {
            EXPECT_EQ(af::wait({cb}, af::ReturnWhen::all_completed, 300ms).pending.size(), 1u);
            return 1;
        });
        auto cbt =
            af::async(af::TaskOptions{"cyc-b", 0}, [ca]() mutable { return af::await(ca) + 1; });
        cb = cbt;
        af::sleep(0s);
        af::sleep(0s);
        af::CallGraph g = af::capture_call_graph(ca);
        ASSERT_EQ(g.awaited_by.size(), 1u);
        EXPECT_EQ(g.awaited_by[0].task, af::TaskRef(cbt));
        EXPECT_TRUE(g.awaited_by[0].awaited_by.empty());  // cyc-a again: not followed
        std::ostringstream out;
        af::dump_tasks(out);
        const std::string tree = "  \u2514\u2500\u2500 #" + id_of(af::current_task()) +
                                 " 'main' running\n"
                                 "  (an await cycle, which no task outside it awaits:)\n"
                                 "  \u2514\u2500\u2500 #" +
                                 id_of(ca) +
                                 " 'cyc-a' waiting on af::wait\n"
                                 "      \u2514\u2500\u2500 #" +
                                 id_of(cbt) +
                                 " 'cyc-b' waiting on a task\n"
                                 "          \u2514\u2500\u2500 #" +
                                 id_of(ca) +
                                 " 'cyc-a' waiting on af::wait (await cycle: not followed again)\n";
        EXPECT_NE(out.str().find(tree), std::string::npos) << out.str() << "\nexpected:\n" << tree;
        EXPECT_EQ(af::await(cbt), 2);
    });
    loop.close();
}

TEST(AwaitGraph, BadArguments) {
    EXPECT_THROW(af::capture_call_graph(af::TaskRef()), af::InvalidStateError);
    EXPECT_THROW(af::capture_call_graph(), af::RuntimeError);
    af::TaskRef t;
    af::run([&] { t = af::async([] {}); });
    EXPECT_THROW(af::capture_call_graph(t), af::RuntimeError);  // its loop is gone
    EXPECT_EQ(af::format_call_graph(af::CallGraph{}), "");
}

TEST(AwaitGraph, ALongChainOfAwaitsStopsAt256Levels) {
    af::run([] {
        af::Event go;
        std::vector<af::Task<void>> chain;
        chain.push_back(af::async([&go] { go.wait(); }));
        for (int i = 1; i < 300; ++i)
            chain.push_back(af::async([prev = chain.back()]() mutable { af::await(prev); }));
        af::sleep(0s);
        af::CallGraph g = af::capture_call_graph(chain.front());
        std::size_t depth = 1;
        for (const af::CallGraph* n = &g; !n->awaited_by.empty(); n = &n->awaited_by[0]) {
            ASSERT_EQ(n->awaited_by.size(), 1u);
            EXPECT_EQ(n->awaited_by[0].task, af::TaskRef(chain.at(depth)));
            ++depth;
        }
        EXPECT_EQ(depth, 256u);
        std::ostringstream out;
        af::dump_tasks(out);  // the tree stops deeper awaits at its own depth, and says so
        EXPECT_NE(out.str().find("(deeper awaits left out)"), std::string::npos);
        go.set();
        af::await(chain.back());
    });
}

// ---- ASYNCFIBER_ASSERT ----

// Where assertions are on (Debug and sanitizer builds, -DASYNCFIBER_ASSERTIONS=ON), a broken
// invariant says where and what, then aborts; where they are off (release builds), the
// condition is not even evaluated.
TEST(Assertions, ABrokenInvariantAbortsOnlyWhereAssertionsAreOn) {
    int evaluated = 0;
    auto holds_when_first = [&] { return ++evaluated == 1; };
#if ASYNCFIBER_ASSERTIONS
    EXPECT_DEATH(ASYNCFIBER_ASSERT(!holds_when_first(), "a test's invariant"),
                 "internal invariant broken at .*debug_test\\.cpp:[0-9]+: a test's invariant");
    ASYNCFIBER_ASSERT(holds_when_first(), "a test's invariant");  // holds: goes on
    EXPECT_EQ(evaluated, 1);
#else
    ASYNCFIBER_ASSERT(!holds_when_first(), "never evaluated in this build");
    EXPECT_EQ(evaluated, 0);
#endif
}

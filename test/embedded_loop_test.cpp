// A loop over the application's own io_context (Loop(io_context&), docs/embedding.md): the
// order of tasks, callbacks and plain handlers, io.stop()/restart()/run_one()/poll(), idling,
// one thread only, closing with handlers still queued, and every feature on such a loop.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <future>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
}

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

}  // namespace

// ---- order ----

TEST(EmbeddedLoop, TaskFromAPlainHandlerIsQueuedFifoWithCallSoonNeverRunInline) {
    asio::io_context io;
    af::Loop loop(io);
    std::vector<std::string> log;
    af::Task<int> t;
    asio::post(io, [&] {
        log.push_back("h1");
        t = loop.spawn([&] {
            log.push_back("t1");
            af::yield_now();
            log.push_back("t1-after-yield");
            return 7;
        });
        loop.call_soon([&] { log.push_back("cb1"); });
        // Queued behind the loop's handler, which the spawn above queued.
        asio::post(io, [&] { log.push_back("h2"); });
        log.push_back("h1-end");
    });
    io.run();
    // The task ran after h1 returned, in one iteration with the callback queued after it; its
    // next step came in the same handler of the loop (the loop returns to the io_context when
    // nothing is ready), then h2.
    EXPECT_EQ(joined(log), "h1 h1-end t1 cb1 t1-after-yield h2");
    ASSERT_TRUE(t.done());
    EXPECT_EQ(t.result(), 7);
}

TEST(EmbeddedLoop, TasksSpawnedBeforeRunStartInOrderBeforeLaterHandlers) {
    asio::io_context io;
    af::Loop loop(io);
    std::vector<std::string> log;
    auto a = loop.spawn([&] { log.push_back("a"); });
    asio::post(io, [&] { log.push_back("h"); });
    auto b = loop.spawn(
        af::TaskOptions{"b", 0}, [&](int x) { log.push_back("b" + std::to_string(x)); }, 2);
    EXPECT_TRUE(log.empty());
    io.run();
    EXPECT_EQ(joined(log), "a b2 h");
    EXPECT_EQ(b.name(), "b");
}

TEST(EmbeddedLoop, AHandlerPostedByATaskRunsWhenTheLoopReturnsToTheIoContext) {
    asio::io_context io;
    af::Loop loop(io);
    std::vector<std::string> log;
    loop.spawn([&] {
        asio::post(io, [&] { log.push_back("handler"); });
        for (int i = 0; i < 3; ++i) {
            log.push_back("step" + std::to_string(i));
            af::yield_now();
        }
        af::sleep(5ms);  // nothing ready: the loop returns to the io_context
        log.push_back("after-sleep");
    });
    io.run();
    EXPECT_EQ(joined(log), "step0 step1 step2 handler after-sleep");
}

TEST(EmbeddedLoop, ABusyLoopReturnsToTheIoContextEverySixtyFourIterations) {
    asio::io_context io;
    af::Loop loop(io);
    int steps = 0;
    auto t = loop.spawn([&] {
        for (int i = 0; i < 200; ++i) {
            ++steps;
            af::yield_now();
        }
    });
    EXPECT_EQ(io.run_one(), 1u);  // one handler of the loop: at most 64 iterations
    EXPECT_GT(steps, 0);
    EXPECT_LE(steps, 64);
    EXPECT_FALSE(t.done());
    const int after_one = steps;
    EXPECT_EQ(io.run_one(), 1u);
    EXPECT_GT(steps, after_one);
    io.poll();  // the rest of what is ready, without blocking
    io.run();
    EXPECT_TRUE(t.done());
    EXPECT_EQ(steps, 200);
}

// ---- idle, stop, restart ----

TEST(EmbeddedLoop, ALoopWithNothingPendingHoldsNoWork) {
    asio::io_context io;
    af::Loop loop(io);
    EXPECT_EQ(io.run(), 0u);  // returns at once, as without the loop
    auto t = loop.spawn([] { af::sleep(30ms); });
    const auto start = std::chrono::steady_clock::now();
    io.restart();
    io.run();  // the sleeping task holds work; once it ends, run() returns
    EXPECT_TRUE(t.done());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
    io.restart();
    EXPECT_EQ(io.run(), 0u);
}

TEST(EmbeddedLoop, APendingTimerHoldsWorkUntilCancelled) {
    asio::io_context io;
    af::Loop loop(io);
    bool ran = false;
    af::Handle h = loop.call_later(std::chrono::hours(1), [&] { ran = true; });
    io.run_for(30ms);
    EXPECT_FALSE(io.stopped());  // the timer holds work: run_for ran out of time
    asio::post(io, [&] { h.cancel(); });
    io.run();  // returns once the cancel removed the loop's only pending thing
    EXPECT_FALSE(ran);
}

TEST(EmbeddedLoop, IdleUsesNoCpu) {
    asio::io_context io;
    af::Loop loop(io);
    loop.spawn([] { af::sleep(300ms); });
    const double cpu = cpu_seconds();
    io.run();
    EXPECT_LT(cpu_seconds() - cpu, 0.1);  // blocked in epoll, not spinning
}

TEST(EmbeddedLoop, StopAndRestartBehaveAsForAnyHandler) {
    asio::io_context io;
    af::Loop loop(io);
    int ticks = 0;
    auto t = loop.spawn([&] {
        for (int i = 0; i < 6; ++i) {
            af::sleep(5ms);
            ++ticks;
        }
    });
    asio::steady_timer stopper(io, 12ms);
    stopper.async_wait([&](const boost::system::error_code&) { io.stop(); });
    io.run();
    EXPECT_TRUE(io.stopped());
    EXPECT_FALSE(t.done());
    const int at_stop = ticks;
    EXPECT_LT(at_stop, 6);
    io.restart();
    io.run();
    EXPECT_TRUE(t.done());
    EXPECT_EQ(ticks, 6);
}

TEST(EmbeddedLoop, IoStopFromATaskEndsRunAfterTheLoopsHandler) {
    asio::io_context io;
    af::Loop loop(io);
    std::vector<std::string> log;
    auto t = loop.spawn([&] {
        io.stop();
        log.push_back("stopped");
        af::sleep(1ms);
        log.push_back("resumed");
    });
    io.run();
    EXPECT_EQ(joined(log), "stopped");
    io.restart();
    io.run();
    EXPECT_EQ(joined(log), "stopped resumed");
    EXPECT_TRUE(t.done());
}

// ---- Loop::current, spawn, misuse ----

TEST(EmbeddedLoop, CurrentWorksInPlainHandlers) {
    asio::io_context io;
    af::Loop loop(io);
    EXPECT_THROW(af::Loop::current(), af::RuntimeError);  // io not running here
    af::Loop* seen = nullptr;
    asio::post(io, [&] {
        seen = &af::Loop::current();
        af::Loop::current().spawn([&] { EXPECT_EQ(&af::Loop::current(), &loop); });
    });
    io.run();
    EXPECT_EQ(seen, &loop);
}

TEST(EmbeddedLoop, SpawnFromATaskOfTheLoopIsAsync) {
    asio::io_context io;
    af::Loop loop(io);
    int v = 0;
    loop.spawn([&] {
        auto inner = loop.spawn([] { return 41; });
        v = af::await(inner) + 1;
    });
    io.run();
    EXPECT_EQ(v, 42);
}

TEST(EmbeddedLoop, RunUntilCompleteRunForeverAndStopAreRefused) {
    asio::io_context io;
    af::Loop loop(io);
    EXPECT_THROW(loop.run_until_complete([] {}), af::RuntimeError);
    EXPECT_THROW(loop.run_forever(), af::RuntimeError);
    EXPECT_THROW(loop.stop(), af::RuntimeError);
}

TEST(EmbeddedLoop, SpawnFromAnotherThreadWhileBoundNamesCallSoonThreadsafe) {
    asio::io_context io;
    af::Loop loop(io);
    std::promise<void> started;
    std::atomic<bool> done{false};
    std::string error;
    loop.spawn([&] {
        started.set_value();
        while (!done) af::sleep(1ms);
    });
    std::thread other([&] {
        started.get_future().wait();
        try {
            loop.spawn([] {});
        } catch (const af::RuntimeError& e) {
            error = e.what();
        }
        loop.call_soon_threadsafe([&] { done = true; });  // the way from another thread
    });
    io.run();
    other.join();
    EXPECT_NE(error.find("call_soon_threadsafe"), std::string::npos) << error;
}

TEST(EmbeddedLoop, ASecondThreadRunningTheIoContextIsRefused) {
    asio::io_context io;
    af::Loop loop(io);
    std::promise<void> started, may_go_on;
    std::shared_future<void> go = may_go_on.get_future().share();
    std::atomic<bool> finish{false};
    auto t = loop.spawn([&] {
        while (!finish) af::sleep(1ms);
    });
    // Thread A runs the loop's first handler (the task starts on its stacks), then stops
    // running the io_context for a while but lives on.
    std::thread a([&] {
        io.run_one();
        started.set_value();
        go.wait();
        io.restart();
        io.run();
    });
    started.get_future().wait();
    std::string error;
    try {
        io.run();  // the loop's timer fires here, on another thread
    } catch (const af::RuntimeError& e) {
        error = e.what();
    }
    EXPECT_NE(error.find("more than one thread"), std::string::npos) << error;
    EXPECT_FALSE(t.done());
    finish = true;  // A finishes it: its task never moved
    may_go_on.set_value();
    a.join();
    EXPECT_TRUE(t.done());
}

// ---- closing with handlers still queued ----

TEST(EmbeddedLoop, DestroyedBeforeTheIoContextRunsItsHandler) {
    asio::io_context io;
    bool ran = false;
    {
        af::Loop loop(io);
        loop.spawn([&] { ran = true; });  // queues the loop's handler in io
        loop.call_later(1h, [] {});
    }          // the task is cancelled before it ever ran
    io.run();  // the queued handler finds no loop; nothing holds work
    EXPECT_FALSE(ran);
}

TEST(EmbeddedLoop, ClosedFromAPlainHandlerFinishesSuspendedTasks) {
    asio::io_context io;
    auto loop = std::make_shared<af::Loop>(io);
    std::vector<std::string> log;
    loop->spawn([&] {
        try {
            af::sleep(1h);
        } catch (const af::CancelledError&) {
            log.push_back("cancelled");
            throw;
        }
    });
    loop->spawn([&] {
        boost::asio::steady_timer t(io, std::chrono::hours(1));
        try {
            t.async_wait(af::use_await.cancels(t));
        } catch (const af::CancelledError&) {
            log.push_back("use_await cancelled");
            throw;
        }
    });
    asio::steady_timer closer(io, 10ms);
    closer.async_wait([&](const boost::system::error_code&) {
        loop->close();
        log.push_back("closed");
        loop.reset();  // destroyed while its timer's aborted wait is still queued
    });
    io.run();
    EXPECT_EQ(joined(log), "cancelled use_await cancelled closed");
}

TEST(EmbeddedLoop, ClosedFromAPlainHandlerWhileATaskWaitsForToThread) {
    asio::io_context io;
    af::Loop loop(io);
    std::atomic<bool> returned{false};
    bool cancelled = false;
    loop.spawn([&] {
        try {
            af::to_thread([&] {
                std::this_thread::sleep_for(50ms);
                returned = true;
            });
        } catch (const af::CancelledError&) {
            cancelled = true;  // only once the function returned (to_thread waits for it)
            EXPECT_TRUE(returned.load());
            throw;
        }
    });
    asio::steady_timer closer(io, 10ms);
    closer.async_wait([&](const boost::system::error_code&) { loop.close(); });
    io.run_for(30s);
    EXPECT_TRUE(io.stopped());  // ran out of work: the closed loop holds none
    EXPECT_TRUE(loop.is_closed());
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(returned.load());
}

TEST(EmbeddedLoop, DestroyedWithItsHandlersQueuedThenTheIoContextDestroyed) {
    std::unique_ptr<asio::io_context> io(new asio::io_context);
    std::unique_ptr<af::Loop> loop(new af::Loop(*io));
    loop->spawn([] { af::sleep(1ms); });
    loop->call_soon([] {});
    io->run_one();       // the task sleeps: the loop's timer waits in io
    loop->spawn([] {});  // and a drive is queued
    loop.reset();
    io.reset();  // destroys the queued handlers, which keep only the loop's link
}

// ---- every feature on an embedded loop ----

TEST(EmbeddedLoopFeatures, StreamsAndServer) {
    asio::io_context io;
    af::Loop loop(io);
    std::string reply;
    loop.spawn([&] {
        af::Server server = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                w.write("echo: " + r.readline());
                w.drain();
                w.close();
            },
            "127.0.0.1", 0);
        auto rw = af::open_connection("127.0.0.1", server.port());
        rw.second.write("hello\n");
        rw.second.drain();
        reply = rw.first.readline();
        rw.second.close();
        server.close();
        server.wait_closed();
    });
    io.run();
    EXPECT_EQ(reply, "echo: hello\n");
}

TEST(EmbeddedLoopFeatures, UseAwaitOnTheApplicationsIoContext) {
    asio::io_context io;
    af::Loop loop(io);
    bool woke = false;
    loop.spawn([&] {
        asio::steady_timer t(io, 5ms);
        t.async_wait(af::use_await);
        woke = true;
    });
    io.run();
    EXPECT_TRUE(woke);
}

TEST(EmbeddedLoopFeatures, ToThreadHoldsTheIoContextUntilItsResultIsBack) {
    asio::io_context io;
    af::Loop loop(io);
    std::thread::id worker;
    int v = 0;
    loop.spawn([&] {
        v = af::to_thread([&] {
            std::this_thread::sleep_for(20ms);  // no handler of io is pending meanwhile
            worker = std::this_thread::get_id();
            return 5;
        });
    });
    io.run();
    EXPECT_EQ(v, 5);
    EXPECT_NE(worker, std::this_thread::get_id());
}

TEST(EmbeddedLoopFeatures, CallSoonThreadsafeAndRunCoroutineThreadsafe) {
    asio::io_context io;
    af::Loop loop(io);
    std::promise<void> ready;
    std::atomic<bool> finish{false};
    loop.spawn([&] {
        ready.set_value();
        while (!finish) af::sleep(1ms);
    });
    int got = 0;
    bool in_loop = false;
    std::thread other([&] {
        ready.get_future().wait();
        loop.call_soon_threadsafe([&] { in_loop = &af::Loop::current() == &loop; });
        got = af::run_coroutine_threadsafe(loop, [] {
                  af::sleep(1ms);
                  return 9;
              }).get();
        finish = true;  // read by the task after the next sleep
    });
    io.run();
    other.join();
    EXPECT_TRUE(in_loop);
    EXPECT_EQ(got, 9);
}

TEST(EmbeddedLoopFeatures, SignalHandler) {
    asio::io_context io;
    af::Loop loop(io);
    int seen = 0;
    loop.spawn([&] {
        af::Event got;
        af::Loop::current().add_signal_handler(SIGUSR1, [&] {
            ++seen;
            got.set();
        });
        ::raise(SIGUSR1);
        got.wait();
        af::Loop::current().remove_signal_handler(SIGUSR1);
    });
    io.run();
    EXPECT_EQ(seen, 1);
}

TEST(EmbeddedLoopFeatures, DebugDumpNamesTheTasks) {
    asio::io_context io;
    af::Loop loop(io);
    std::string dump;
    loop.spawn(af::TaskOptions{"sleeper", 0}, [] { af::sleep(20ms); });
    loop.spawn([&] {
        af::yield_now();
        std::ostringstream os;
        af::dump_tasks(os);
        dump = os.str();
    });
    io.run();
    EXPECT_NE(dump.find("sleeper"), std::string::npos) << dump;
}

TEST(EmbeddedLoopFeatures, WatchdogReportsABlockedStep) {
    asio::io_context io;
    af::Loop loop(io);
    std::mutex m;
    std::condition_variable cv;
    std::vector<af::WatchdogReport> reports;
    loop.set_watchdog_handler([&](const af::WatchdogReport& r) {
        std::lock_guard<std::mutex> lk(m);
        reports.push_back(r);
        cv.notify_all();
    });
    loop.set_watchdog(30ms);
    loop.spawn(af::TaskOptions{"blocker", 0}, [&] {
        // Blocks its thread until the watchdog has reported it (no timing in the test).
        std::unique_lock<std::mutex> lk(m);
        cv.wait_for(lk, 60s, [&] { return !reports.empty(); });
    });
    io.run();
    loop.close();
    std::lock_guard<std::mutex> lk(m);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.front().kind, af::WatchdogReport::Kind::running);
    EXPECT_EQ(reports.front().task_name, "blocker");
}

TEST(EmbeddedLoopFeatures, AfRunStaysTheSimplePathBesideAnEmbeddedLoop) {
    asio::io_context io;
    af::Loop loop(io);
    int v = 0;
    loop.spawn([&] { v += 1; });
    io.run();
    v += af::run([] { return 2; });
    EXPECT_EQ(v, 3);
}

TEST(EmbeddedLoop, OwnedLoopSpawnBeforeRunAndCloseCancelsUnstartedTasks) {
    bool ran = false;
    af::Loop loop;
    auto t = loop.spawn([&] { ran = true; });
    loop.close();
    EXPECT_FALSE(ran);
    EXPECT_TRUE(t.cancelled());
}

TEST(EmbeddedLoop, OwnedLoopSpawnBeforeRunForever) {
    af::Loop loop;
    int v = 0;
    loop.spawn([&] {
        v = 1;
        af::Loop::current().stop();
    });
    loop.run_forever();
    EXPECT_EQ(v, 1);
}

// asyncio.run's _cancel_all_tasks cancels a task created just before main returned before
// its first step: its body never runs.
TEST(EmbeddedLoop, RunCancelsATaskThatMainLeftUnstartedBeforeItRuns) {
    bool ran = false;
    af::run([&] { af::async([&] { ran = true; }); });
    EXPECT_FALSE(ran);
}

// af::Runtime: N loops on N threads. Cross-loop awaits, exceptions and cancellation across
// loops, run(), stop() with pending futures, shutdown under load, SIGINT, misuse, and one
// reuse_port server per loop on one port.
#include <asyncfiber/channel.hpp>
#include <asyncfiber/net.hpp>
#include <asyncfiber/runtime.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom"), code(c) {}
    int code;
};

// Counts live instances: a shutdown that leaks a task's frame leaves one behind.
struct Tracked {
    static std::atomic<int> live;
    Tracked() { ++live; }
    Tracked(const Tracked&) { ++live; }
    ~Tracked() { --live; }
};
std::atomic<int> Tracked::live{0};
}  // namespace

TEST(Runtime, SizeLoopsAndMisuse) {
    EXPECT_THROW(af::Runtime(0), std::invalid_argument);
    af::Runtime rt(2);
    EXPECT_EQ(rt.size(), 2u);
    EXPECT_NE(&rt.loop(0), &rt.loop(1));
    EXPECT_THROW(rt.loop(2), std::out_of_range);
    EXPECT_THROW(rt.spawn_on(2, [] {}), std::out_of_range);
}

TEST(Runtime, SpawnOnRunsOnTheLoopsOwnThreadAndHandsTheValueBack) {
    af::Runtime rt(2);
    auto a = rt.spawn_on(0, [] { return std::this_thread::get_id(); });
    auto b = rt.spawn_on(
        1, [](int x, std::string s) { return s + std::to_string(x * 2); }, 21, "v");
    auto c = rt.spawn_on(1, [] { return std::this_thread::get_id(); });
    const std::thread::id t0 = a.get(), t1 = c.get();
    EXPECT_NE(t0, std::this_thread::get_id());
    EXPECT_NE(t0, t1);
    EXPECT_EQ(b.get(), "v42");
    // The loop's thread does not change between tasks.
    EXPECT_EQ(rt.spawn_on(0, [] { return std::this_thread::get_id(); }).get(), t0);
}

TEST(Runtime, CrossLoopAwaitSuspendsOnlyTheAwaitingTask) {
    af::Runtime rt(2);
    auto result = rt.spawn_on(0, [&rt] {
        int ticks = 0;
        auto ticker = af::async([&] {
            for (;;) {
                af::sleep(1ms);
                ++ticks;
            }
        });
        auto remote = rt.spawn_on(1, [] {
            af::sleep(50ms);
            return std::this_thread::get_id();
        });
        std::thread::id there = af::await(remote);
        ticker.cancel();
        EXPECT_NE(there, std::this_thread::get_id());
        return ticks;
    });
    EXPECT_GT(result.get(), 5);  // loop 0 went on while its task awaited loop 1
}

TEST(Runtime, ExceptionsCrossLoopsWithTheirType) {
    af::Runtime rt(2);
    auto f = rt.spawn_on(1, []() -> int { throw CustomError(7); });
    try {
        f.get();
        ADD_FAILURE() << "no exception";
    } catch (const CustomError& e) {
        EXPECT_EQ(e.code, 7);
    }
    auto in_task = rt.spawn_on(0, [&rt] {
        auto g = rt.spawn_on(1, []() -> int { throw CustomError(8); });
        try {
            af::await(g);
        } catch (const CustomError& e) {
            return e.code;
        }
        return 0;
    });
    EXPECT_EQ(in_task.get(), 8);
}

// Cancelling the task that awaits a remote task's future cancels that task, and the await
// ends only once it has ended (its clean-up, which suspends, is over).
TEST(Runtime, CancellingTheAwaiterCancelsTheRemoteTaskAndWaitsForItsEnd) {
    af::Runtime rt(2);
    std::atomic<bool> remote_ended{false};
    auto check = rt.spawn_on(0, [&] {
        auto remote = rt.spawn_on(1, [&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                af::sleep(30ms);  // clean-up that takes a while
                remote_ended = true;
                throw;
            }
        });
        auto awaiter = af::async([&] { af::await(remote); });
        af::sleep(20ms);
        awaiter.cancel();
        EXPECT_THROW(af::await(awaiter), af::CancelledError);
        EXPECT_TRUE(remote_ended.load());
        EXPECT_TRUE(remote.done());
        EXPECT_THROW(af::await(remote), af::CancelledError);  // the remote task was cancelled
    });
    check.get();
    EXPECT_TRUE(remote_ended.load());
}

TEST(Runtime, FutureCancelCancelsTheRemoteTask) {
    af::Runtime rt(1);
    std::atomic<bool> saw_cancel{false};
    std::atomic<bool> started{false};
    auto f = rt.spawn_on(0, [&] {
        started = true;
        try {
            af::sleep(10s);
        } catch (const af::CancelledError&) {
            saw_cancel = true;
            throw;
        }
    });
    while (!started) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(f.cancel());
    EXPECT_THROW(f.get(), af::CancelledError);
    EXPECT_TRUE(saw_cancel.load());
    EXPECT_TRUE(f.cancel());  // still cancelled

    // A task that swallows the cancellation and returns: the future still says cancelled,
    // as cancel() returned true.
    std::atomic<bool> go{false};
    auto g = rt.spawn_on(0, [&] {
        go = true;
        try {
            af::sleep(10s);
        } catch (const af::CancelledError&) {
        }
        return 5;
    });
    while (!go) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(g.cancel());
    EXPECT_THROW(g.get(), af::CancelledError);

    auto done = rt.spawn_on(0, [] { return 1; });
    EXPECT_EQ(done.get(), 1);
    EXPECT_FALSE(done.cancel());
}

// Cancelled while its start still waits in the loop's queue (the loop is busy): the task
// never runs, and the future fails with CancelledError.
TEST(Runtime, FutureCancelledBeforeTheTaskStartedKeepsItFromRunning) {
    af::Runtime rt(1);
    std::atomic<bool> release{false};
    std::atomic<bool> blocking{false};
    auto blocker = rt.spawn_on(0, [&] {
        blocking = true;
        while (!release) std::this_thread::sleep_for(1ms);  // holds the loop's thread
    });
    while (!blocking) std::this_thread::sleep_for(1ms);
    std::atomic<bool> ran{false};
    auto f = rt.spawn_on(0, [&] { ran = true; });
    EXPECT_TRUE(f.cancel());
    EXPECT_FALSE(f.done());  // done once the loop has seen it
    release = true;
    EXPECT_THROW(f.get(), af::CancelledError);
    blocker.get();
    EXPECT_FALSE(ran.load());
}

TEST(Runtime, RunRunsAMainOnEveryLoop) {
    af::Runtime rt(3);
    std::vector<std::thread::id> ids(3);
    rt.run([&](std::size_t i) {
        af::sleep(5ms);
        ids[i] = std::this_thread::get_id();
    });
    EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), 3u);
    // Again: the loops are still there.
    std::atomic<int> runs{0};
    rt.run([&](std::size_t) { ++runs; });
    EXPECT_EQ(runs.load(), 3);
}

TEST(Runtime, RunRethrowsTheFirstExceptionAfterCancellingAndFinishingTheOthers) {
    af::Runtime rt(3);
    std::atomic<int> finished_others{0};
    try {
        rt.run([&](std::size_t i) {
            if (i == 1) {
                af::sleep(20ms);
                throw CustomError(1);
            }
            if (i == 2) {
                af::sleep(40ms);
                throw CustomError(2);  // later: not the one run() rethrows (cancelled first)
            }
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                af::sleep(20ms);
                ++finished_others;
                throw;
            }
        });
        ADD_FAILURE() << "no exception";
    } catch (const CustomError& e) {
        EXPECT_EQ(e.code, 1);
    }
    EXPECT_EQ(finished_others.load(), 1);  // loop 0's main finished before run() returned
}

TEST(Runtime, StopFailsPendingFuturesWithCancelledError) {
    af::Runtime rt(2);
    std::atomic<bool> cleaned{false};
    std::atomic<bool> started{false};
    auto pending = rt.spawn_on(1, [&] {
        started = true;
        try {
            af::sleep(10s);
        } catch (const af::CancelledError&) {
            cleaned = true;
            throw;
        }
        return 1;
    });
    while (!started) std::this_thread::sleep_for(1ms);
    rt.stop();
    EXPECT_TRUE(cleaned.load());
    EXPECT_THROW(pending.get(), af::CancelledError);
    EXPECT_THROW(rt.spawn_on(0, [] { return 2; }).get(), af::CancelledError);
    rt.stop();  // idempotent
}

TEST(Runtime, BlockingCallsAreRefusedOnALoopThread) {
    af::Runtime rt(1);
    auto f = rt.spawn_on(0, [&rt] {
        EXPECT_THROW(rt.run([](std::size_t) {}), af::RuntimeError);
        auto g = rt.spawn_on(0, [] { return 3; });
        EXPECT_THROW(g.get(), af::RuntimeError);
        return af::await(g);
    });
    EXPECT_EQ(f.get(), 3);
}

// Loops busy with cross-loop awaits and channel traffic when the Runtime is destroyed:
// every task is cancelled and finished on its own thread, every frame is destroyed.
TEST(Runtime, ShutdownUnderLoadLeavesNothingBehind) {
    std::atomic<int> started{0};
    {
        af::Channel<int> ch(8);  // declared first: outlives the Runtime, whose tasks use it
        af::Runtime rt(2);
        for (std::size_t l = 0; l < 2; ++l) {
            for (int k = 0; k < 20; ++k) {
                rt.spawn_on(l, [&rt, &ch, &started, l, k] {
                    Tracked keep;
                    ++started;
                    for (int n = 0;; ++n) {
                        if (k % 2) {
                            ch.put(n);
                        } else {
                            (void)ch.get();
                        }
                        auto f = rt.spawn_on(1 - l, [] {
                            Tracked inner;
                            af::sleep(0ms);
                            return 1;
                        });
                        (void)af::await(f);
                    }
                });
            }
        }
        while (started < 40) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(50ms);
        // The Runtime is destroyed (before the channel): every task is cancelled in the
        // middle of a channel wait or a cross-loop await, and finished on its own thread.
    }
    EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(Runtime, SigintCancelsTheMainsAndRunThrowsKeyboardInterrupt) {
    af::Runtime rt(2);
    std::atomic<int> cleaned{0};
    EXPECT_THROW(rt.run([&](std::size_t i) {
        if (i == 0) {
            af::sleep(20ms);
            ::kill(::getpid(), SIGINT);
        }
        try {
            af::sleep(10s);
        } catch (const af::CancelledError&) {
            ++cleaned;
            throw;
        }
    }),
                 af::KeyboardInterrupt);
    EXPECT_EQ(cleaned.load(), 2);
    // SIGINT has its default action again, and the runtime still works.
    EXPECT_EQ(rt.spawn_on(1, [] { return 4; }).get(), 4);
}

// ServerOptions::reuse_port: one server per loop on one port, each accepting connections
// of its own (the kernel spreads them over the listening sockets).
TEST(Runtime, ReusePortServersOnEveryLoopShareOnePort) {
    af::Runtime rt(2);
    std::atomic<int> accepted[2];
    accepted[0] = 0;
    accepted[1] = 0;
    std::vector<af::Server> servers(2);
    af::ServerOptions opts;
    opts.reuse_port = true;
    unsigned short port = 0;
    for (std::size_t l = 0; l < 2; ++l) {
        servers[l] = rt.spawn_on(l, [&, l] {
                           return af::start_server(
                               [&, l](af::StreamReader r, af::StreamWriter w) {
                                   ++accepted[l];
                                   std::string line = r.readline();
                                   w.write(std::to_string(l) + "\n");
                                   w.drain();
                               },
                               "127.0.0.1", port, opts);
                       }).get();
        port = servers[l].port();
        ASSERT_NE(port, 0);
    }
    EXPECT_EQ(servers[0].port(), servers[1].port());
    const int connections = 64;
    int answered_by[2] = {0, 0};
    af::run([&] {
        for (int c = 0; c < connections; ++c) {
            auto rw = af::open_connection("127.0.0.1", port);
            rw.second.write("hi\n");
            std::string who = rw.first.readline();
            ASSERT_TRUE(who == "0\n" || who == "1\n") << who;
            ++answered_by[who[0] - '0'];
        }
    });
    EXPECT_EQ(accepted[0] + accepted[1], connections);
    EXPECT_EQ(answered_by[0], accepted[0].load());
    // 64 connections from distinct source ports all hashed to one socket: about 2^-63.
    EXPECT_GT(accepted[0].load(), 0);
    EXPECT_GT(accepted[1].load(), 0);
    for (std::size_t l = 0; l < 2; ++l)
        rt.spawn_on(l, [&, l] {
              servers[l].close();
              servers[l].wait_closed();
          }).get();
}

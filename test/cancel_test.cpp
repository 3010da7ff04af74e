// Cancellation at every suspension point, before start, through await and gather, in run().
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace af = asyncfiber;
using namespace std::chrono_literals;

static_assert(!std::is_base_of<std::exception, af::CancelledError>::value,
              "CancelledError must not be a std::exception");

namespace {
// Runs `wait` in a task, cancels it while it is suspended there, checks CancelledError.
template <class Wait>
void expect_cancelled_at(Wait wait) {
    af::run([&] {
        bool reached = false, after = false;
        auto t = af::async([&] {
            reached = true;
            wait();
            after = true;
        });
        af::sleep(0s);
        af::sleep(0s);
        ASSERT_TRUE(reached);
        EXPECT_TRUE(t.cancel("stop"));
        try {
            af::await(t);
            ADD_FAILURE() << "await did not throw";
        } catch (const af::CancelledError& e) {
            EXPECT_EQ(e.message(), "stop");
        }
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(after);
    });
}
}  // namespace

TEST(Cancel, AtSleep) {
    expect_cancelled_at([] { af::sleep(10s); });
}
TEST(Cancel, AtSleepUntil) {
    expect_cancelled_at([] { af::sleep_until(af::Clock::now() + 10s); });
}
TEST(Cancel, AtYield) {
    expect_cancelled_at([] {
        for (;;) af::sleep(0s);
    });
}
TEST(Cancel, AtEventWait) {
    af::Event ev;
    expect_cancelled_at([&] { ev.wait(); });
}
TEST(Cancel, AtAwaitForwardsToAwaitedTask) {
    af::Task<void> inner;
    expect_cancelled_at([&] {
        inner = af::async([] { af::sleep(10s); });
        af::await(inner);
    });
    EXPECT_TRUE(inner.cancelled());
}
TEST(Cancel, AtGatherCancelsEveryChild) {
    std::vector<af::Task<void>> kids;
    expect_cancelled_at([&] {
        for (int i = 0; i < 3; ++i) kids.push_back(af::async([] { af::sleep(10s); }));
        af::gather(kids);
    });
    for (auto& k : kids) EXPECT_TRUE(k.cancelled());
}

TEST(Cancel, BeforeStartTheBodyNeverRuns) {
    af::run([] {
        bool ran = false;
        auto t = af::async([&] { ran = true; });
        EXPECT_TRUE(t.cancel());
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_FALSE(ran);
        EXPECT_TRUE(t.cancelled());
        EXPECT_THROW(t.result(), af::CancelledError);
        EXPECT_THROW(t.exception(), af::CancelledError);
    });
}

TEST(Cancel, DoneTaskCannotBeCancelled) {
    af::run([] {
        auto t = af::async([] { return 1; });
        af::await(t);
        EXPECT_FALSE(t.cancel());
        EXPECT_FALSE(t.cancelled());
    });
}

TEST(Cancel, CaughtAndNotRethrownCountsAsNormalCompletion) {
    af::run([] {
        auto t = af::async([] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                return 7;  // cleans up and decides to finish normally
            }
            return 0;
        });
        af::sleep(0s);
        t.cancel();
        EXPECT_EQ(af::await(t), 7);
        EXPECT_FALSE(t.cancelled());
        EXPECT_EQ(t.cancelling(), 1);
    });
}

TEST(Cancel, CleanupMaySuspendAfterCatching) {
    af::run([] {
        std::vector<std::string> log;
        auto t = af::async([&] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                log.push_back("caught");
                af::sleep(1ms);  // the cancellation was delivered once: this sleep completes
                log.push_back("cleaned");
                throw;
            }
        });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_EQ(log, (std::vector<std::string>{"caught", "cleaned"}));
    });
}

TEST(Cancel, SelfCancelHitsNextSuspensionPoint) {
    af::run([] {
        std::vector<int> steps;
        auto t = af::async([&] {
            af::current_task().cancel();
            steps.push_back(1);  // not a suspension point: keeps running
            af::sleep(0s);
            steps.push_back(2);
        });
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_EQ(steps, (std::vector<int>{1}));
    });
}

TEST(Cancel, RequestedWhileRunningAndReturningCountsAsCancelled) {
    af::run([] {
        auto t = af::async([] {
            af::current_task().cancel();
            return 5;  // returns before any suspension point
        });
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(t.cancelled());
    });
}

TEST(Cancel, NotCatchableAsStdException) {
    af::run([] {
        bool swallowed = false;
        auto t = af::async([&] {
            try {
                af::sleep(10s);
            } catch (const std::exception&) {
                swallowed = true;
            }
        });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_FALSE(swallowed);
    });
}

TEST(Cancel, UncancelTakesARequestBack) {
    af::run([] {
        auto t = af::async([] {
            try {
                af::sleep(10s);
            } catch (const af::CancelledError&) {
                af::current_task().uncancel();
            }
            return af::current_task().cancelling();
        });
        af::sleep(0s);
        t.cancel();
        EXPECT_EQ(af::await(t), 0);
    });
}

TEST(Cancel, RunCancelsAndFinishesLeftoverTasks) {
    int destroyed = 0, cancelled = 0;
    struct Guard {
        int* n;
        ~Guard() { ++*n; }
    };
    af::run([&] {
        for (int i = 0; i < 10; ++i)
            af::async([&] {
                Guard g{&destroyed};
                try {
                    af::sleep(100s);
                } catch (const af::CancelledError&) {
                    ++cancelled;
                    throw;
                }
            });
        af::sleep(1ms);
    });
    EXPECT_EQ(cancelled, 10);
    EXPECT_EQ(destroyed, 10);
}

TEST(Cancel, RunWaitsForCleanupThatSuspends) {
    bool cleaned = false;
    af::run([&] {
        af::async([&] {
            try {
                af::sleep(100s);
            } catch (const af::CancelledError&) {
                af::sleep(5ms);
                cleaned = true;
                throw;
            }
        });
        af::sleep(0s);
    });
    EXPECT_TRUE(cleaned);
}

// SIGINT cancels main; with RunOptions::throw_on_interrupt, run() then throws
// KeyboardInterrupt (in-process: the default would end this test program).
TEST(Sigint, CancelsMainAndThrowsKeyboardInterruptWhenAskedTo) {
    af::RunOptions options;
    options.throw_on_interrupt = true;
    std::string seen;
    try {
        af::run(options, [&] {
            std::raise(SIGINT);
            try {
                af::sleep(10s);
            } catch (const af::CancelledError& e) {
                seen = e.what();
                throw;
            }
            ADD_FAILURE() << "not cancelled";
        });
        FAIL() << "run did not throw";
    } catch (const af::KeyboardInterrupt& e) {
        EXPECT_STREQ(e.what(), "asyncfiber: interrupted by SIGINT");
    }
    EXPECT_NE(seen.find("SIGINT"), std::string::npos);
    struct sigaction sa;
    sigaction(SIGINT, nullptr, &sa);
    EXPECT_EQ(sa.sa_handler, SIG_DFL);  // restored
}

// A main that handles its cancellation and returns was not interrupted: run() returns.
TEST(Sigint, MainThatReturnsAnywayIsNotAnInterruption) {
    int r = af::run([] {
        std::raise(SIGINT);
        try {
            af::sleep(10s);
        } catch (const af::CancelledError&) {
            return 7;
        }
        return 0;
    });
    EXPECT_EQ(r, 7);
}

namespace {
struct ChildEnd {
    int status = 0;
    std::string out;
};

// Runs test/support/interrupted_program with `mode`, sends it SIGINT once it printed
// "ready", and returns how it ended and what it printed.
ChildEnd interrupt_child(const char* mode) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
        struct sigaction dfl;
        std::memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGINT, &dfl, nullptr);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execl(INTERRUPTED_PROGRAM, INTERRUPTED_PROGRAM, mode, static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    ChildEnd end;
    char buf[256];
    bool sent = false;
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        end.out.append(buf, static_cast<std::size_t>(n));
        if (!sent && end.out.find("ready\n") != std::string::npos) {
            ::kill(pid, SIGINT);
            sent = true;
        }
    }
    ::close(fds[0]);
    while (::waitpid(pid, &end.status, 0) < 0 && errno == EINTR) {
    }
    return end;
}
}  // namespace

// The README's first program interrupted by Ctrl-C: run() cleans up (every task's clean-up
// runs), then the process ends killed by SIGINT, as an interrupted program does (status 130
// in a shell), not by abort() on an uncaught CancelledError.
TEST(Sigint, InterruptedProgramEndsKilledBySigintAfterCleanUp) {
    ChildEnd end = interrupt_child("default");
    EXPECT_TRUE(WIFSIGNALED(end.status)) << end.out;
    if (WIFSIGNALED(end.status)) {
        EXPECT_EQ(WTERMSIG(end.status), SIGINT) << end.out;
    }
    EXPECT_NE(end.out.find("main cancelled: interrupted by SIGINT\n"), std::string::npos)
        << end.out;
    EXPECT_NE(end.out.find("helper cleaned up\n"), std::string::npos) << end.out;
    EXPECT_EQ(end.out.find("run returned"), std::string::npos) << end.out;
    EXPECT_EQ(end.out.find("static destructor"), std::string::npos) << end.out;
}

// The opt-in: run() throws KeyboardInterrupt after the same clean-up; the program goes on.
TEST(Sigint, InterruptedProgramThatAskedForAnExceptionGetsKeyboardInterrupt) {
    ChildEnd end = interrupt_child("throw");
    EXPECT_TRUE(WIFEXITED(end.status)) << end.out;
    if (WIFEXITED(end.status)) {
        EXPECT_EQ(WEXITSTATUS(end.status), 3) << end.out;
    }
    EXPECT_NE(end.out.find("helper cleaned up\ncaught: asyncfiber: interrupted by SIGINT\n"),
              std::string::npos)
        << end.out;
    EXPECT_NE(end.out.find("static destructor"), std::string::npos) << end.out;
}

// test_tasks.py: test_tb_logger_not_called_after_cancel (cancel() of a task that already
// failed marks its exception retrieved: asyncio's cancel() clears _log_traceback first)
TEST(Cancel, CancelOfAFailedTaskSilencesNeverRetrieved) {
    std::vector<std::string> reports;
    af::run([&] {
        af::Loop::current().set_exception_handler(
            [&](const af::ExceptionContext& c) { reports.push_back(c.message); });
        auto task = af::async([] { throw std::invalid_argument("TypeError"); });
        af::sleep(50ms);
        EXPECT_FALSE(task.cancel());
        task = af::Task<void>();
    });
    EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST(Cancel, PendingCancelIsHandedToTheAwaitedTask) {
    af::run([] {
        auto inner = af::async([] { af::sleep(10s); });
        auto outer = af::async([&] {
            af::current_task().cancel("pending");
            af::await(inner);  // the pending cancel goes to `inner`, as in asyncio
        });
        EXPECT_THROW(af::await(outer), af::CancelledError);
        EXPECT_TRUE(inner.cancelled());
        EXPECT_TRUE(outer.cancelled());
    });
}

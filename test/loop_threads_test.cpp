// A loop and its threads: task handles used from another thread, a loop outliving the thread
// that ran it, a closed loop asked for cross-thread work, a start-up that fails.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <dirent.h>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Runs `op` and returns the what() of the RuntimeError it throws ("" if none, "other" for
// another exception).
std::string runtime_error_of(const std::function<void()>& op) {
    try {
        op();
    } catch (const af::RuntimeError& e) {
        return e.what();
    } catch (...) {
        return "other";
    }
    return "";
}

// Every operation on `t` that acts on it or waits for it, from the calling thread, which is
// not the one running t's loop: each must throw RuntimeError naming the thread-safe ways.
// Returns the operations that did not.
std::vector<std::string> foreign_operations_not_refused(af::Task<int> t) {
    std::vector<std::string> bad;
    auto expect = [&](const char* name, const std::function<void()>& op) {
        const std::string what = runtime_error_of(op);
        if (!contains(what, "call_soon_threadsafe") || !contains(what, "run_coroutine_threadsafe"))
            bad.push_back(std::string(name) + ": '" + what + "'");
    };
    expect("await", [&] { af::await(t); });
    expect("await (moved)", [&] { af::await(af::Task<int>(t)); });
    expect("wait_for", [&] { af::wait_for(t, 1s); });
    expect("gather", [&] { af::gather(t); });
    expect("gather vector", [&] { af::gather(std::vector<af::Task<int>>{t}); });
    expect("gather_settled", [&] { af::gather_settled(t); });
    expect("wait", [&] { af::wait({t}); });
    expect("wait with timeout", [&] { af::wait({t}, af::ReturnWhen::first_completed, 1s); });
    expect("as_completed", [&] {
        for (auto x : af::as_completed(std::vector<af::Task<int>>{t})) (void)x;
    });
    expect("shield", [&] { af::shield(t); });
    expect("cancel", [&] { t.cancel(); });
    expect("uncancel", [&] { t.uncancel(); });
    expect("add_done_callback", [&] { t.add_done_callback([](af::TaskRef) {}); });
    expect("set_name", [&] { t.set_name("renamed"); });
    // Reads stay allowed (documented: racy until the task is done and the thread synchronised).
    try {
        (void)t.done();
        (void)t.cancelled();
        (void)t.id();
    } catch (...) {
        bad.push_back("a read threw");
    }
    return bad;
}

}  // namespace

namespace {
// While a task of this thread's loop waits, runs `elsewhere(task)` on another thread: every
// operation it tries must be refused, and nothing of it must reach the task.
void expect_refused_elsewhere(
    const std::function<std::vector<std::string>(af::Task<int>)>& elsewhere) {
    af::run([&] {
        af::Event release;
        auto t = af::async([&] {
            release.wait();
            return 5;
        });
        af::sleep(0s);
        std::vector<std::string> bad;
        std::thread th([&] { bad = elsewhere(t); });
        th.join();
        EXPECT_TRUE(bad.empty()) << ::testing::PrintToString(bad);
        // Neither cancelled nor renamed: it finishes normally.
        EXPECT_EQ(t.cancelling(), 0);
        EXPECT_NE(t.name(), "renamed");
        release.set();
        EXPECT_EQ(af::await(t), 5);
    });
}
}  // namespace

TEST(ForeignThread, EveryTaskOperationFromAPlainThreadIsRefused) {
    expect_refused_elsewhere(foreign_operations_not_refused);
}

TEST(ForeignThread, EveryTaskOperationFromAnotherLoopsTaskIsRefused) {
    expect_refused_elsewhere([](af::Task<int> t) {
        std::vector<std::string> bad;
        af::run([&] { bad = foreign_operations_not_refused(t); });
        return bad;
    });
}

// The report: a task of one thread's loop awaiting a task of another thread's loop
// hung, arrived late or left Loop::close spinning. Now the await is refused at once and both
// loops end and close promptly.
TEST(ForeignThread, AwaitAcrossLoopsIsRefusedAndBothLoopsCloseNormally) {
    // The other thread gets the handle itself, not a copy: a copy's reference count would be
    // touched on both threads at once (handles are not thread-safe).
    std::promise<af::Task<int>*> handle;
    std::atomic<bool> refused{false};
    auto started = std::chrono::steady_clock::now();
    std::thread other([&] {
        af::Task<int>* t = handle.get_future().get();
        af::run([&] {
            try {
                af::await(*t);
            } catch (const af::RuntimeError&) {
                refused = true;
            }
        });
    });
    int v = af::run([&] {
        auto t = af::async([] {
            af::sleep(50ms);
            return 7;
        });
        handle.set_value(&t);
        const int r = af::await(t);
        // t stays alive until the other thread is done with it.
        for (int i = 0; i < 5000 && !refused; ++i) af::sleep(1ms);
        return r;
    });
    other.join();
    EXPECT_EQ(v, 7);
    EXPECT_TRUE(refused);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(ForeignThread, LoopCallSoonAndStopFromAnotherThreadAreRefusedAndTheThreadsafeWayWorks) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        std::string call_soon, call_later, stop;
        af::Event done;
        std::thread th([&] {
            call_soon = runtime_error_of([&] { loop.call_soon([] {}); });
            call_later = runtime_error_of([&] { loop.call_later(1ms, [] {}); });
            // A stop() set from here could go unseen by a loop blocked in its io_context.
            stop = runtime_error_of([&] { loop.stop(); });
            loop.call_soon_threadsafe([&] { done.set(); });
        });
        done.wait();
        th.join();
        EXPECT_TRUE(contains(call_soon, "call_soon_threadsafe")) << call_soon;
        EXPECT_TRUE(contains(call_later, "call_soon_threadsafe")) << call_later;
        EXPECT_TRUE(contains(stop, "call_soon_threadsafe")) << stop;
    });
}

TEST(ForeignThread, OperationsOnTheLoopsOwnThreadOutsideTheRunStillWork) {
    af::Loop loop;
    af::Task<int> t;
    loop.run_until_complete([&] {
        t = af::async([] {
            af::sleep(1h);
            return 1;
        });
        af::sleep(0s);
    });
    // The loop does not run now: acting on its task from its own thread is fine (asyncio
    // checks the thread only while the loop runs).
    EXPECT_TRUE(t.cancel());
    bool called = false;
    t.add_done_callback([&](af::TaskRef) { called = true; });
    loop.run_until_complete([&] {
        EXPECT_THROW(af::await(t), af::CancelledError);
        af::sleep(0s);  // the done callback was queued when the task ended: it runs now
    });
    loop.close();
    EXPECT_TRUE(called);
}

// ---------------------------------------------------------------- a loop outliving its thread

TEST(LoopThreads, LoopDestroyedAfterItsThreadExitedClosesCleanly) {
    std::unique_ptr<af::Loop> loop(new af::Loop);
    std::atomic<int> cleaned{0};
    std::thread::id cleaned_on;
    std::thread th([&] {
        loop->run_until_complete([&] {
            af::async([&] {
                struct Cleanup {
                    std::atomic<int>& n;
                    std::thread::id& on;
                    ~Cleanup() {
                        on = std::this_thread::get_id();
                        ++n;
                    }
                } c{cleaned, cleaned_on};
                af::sleep(1h);
            });
            af::async([] {});  // never started: it has no stack, any thread may finish it
            af::sleep(1ms);
        });
    });
    const std::thread::id th_id = th.get_id();
    th.join();
    // Its task ran on that thread's stacks, which went with it: it was finished there, at
    // the thread's exit, so that its destructors ran.
    EXPECT_EQ(cleaned.load(), 1);
    EXPECT_EQ(cleaned_on, th_id);
    EXPECT_FALSE(loop->is_closed());
    loop.reset();  // was a SIGSEGV in Loop::close
}

TEST(LoopThreads, LoopRunAgainOnAnotherThreadAfterItsThreadExited) {
    af::Loop loop;
    std::thread th([&] {
        loop.run_until_complete([] {
            af::async([] { af::sleep(1h); });
            af::sleep(1ms);
        });
    });
    th.join();
    EXPECT_EQ(loop.run_until_complete([] {
        af::sleep(1ms);
        return 3;
    }),
              3);
    loop.close();
}

TEST(LoopThreads, CloseOnAnotherThreadWhileItsThreadRunsIsRefusedThenDoneAtItsExit) {
    std::unique_ptr<af::Loop> loop(new af::Loop);
    std::mutex m;
    std::condition_variable cv;
    bool ran = false, may_exit = false;
    std::atomic<int> cleaned{0};
    std::thread th([&] {
        loop->run_until_complete([&] {
            af::async([&] {
                struct Cleanup {
                    std::atomic<int>& n;
                    ~Cleanup() { ++n; }
                } c{cleaned};
                af::sleep(1h);
            });
            af::sleep(1ms);
        });
        std::unique_lock<std::mutex> lk(m);
        ran = true;
        cv.notify_all();
        cv.wait(lk, [&] { return may_exit; });
    });
    {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return ran; });
    }
    const std::string what = runtime_error_of([&] { loop->close(); });
    EXPECT_TRUE(contains(what, "close the loop on that thread")) << what;
    EXPECT_EQ(cleaned.load(), 0);
    // Destroyed here all the same: said on stderr, and finished by its thread's exit.
    testing::internal::CaptureStderr();
    loop.reset();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "finished when the thread they run on exits")) << err;
    EXPECT_EQ(cleaned.load(), 0);
    {
        std::lock_guard<std::mutex> lk(m);
        may_exit = true;
    }
    cv.notify_all();
    th.join();
    EXPECT_EQ(cleaned.load(), 1);
}

// ---------------------------------------------------------------- a closed loop

TEST(ClosedLoop, CallSoonThreadsafeThrowsAndRunCoroutineThreadsafeFailsAtOnce) {
    af::Loop loop;
    loop.run_until_complete([] { af::sleep(0s); });
    loop.close();
    ASSERT_TRUE(loop.is_closed());
    const std::string what = runtime_error_of([&] { loop.call_soon_threadsafe([] {}); });
    EXPECT_TRUE(contains(what, "Event loop is closed")) << what;
    std::string from_thread;
    std::future<int> f;
    std::thread th([&] {
        from_thread = runtime_error_of([&] { loop.call_soon_threadsafe([] {}); });
        f = af::run_coroutine_threadsafe(loop, [] { return 1; });
    });
    th.join();
    EXPECT_TRUE(contains(from_thread, "Event loop is closed")) << from_thread;
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    try {
        f.get();
        ADD_FAILURE() << "no exception";
    } catch (const af::RuntimeError& e) {
        EXPECT_TRUE(contains(e.what(), "Event loop is closed")) << e.what();
    }
}

TEST(ClosedLoop, WorkPostedBeforeCloseFailsWhenTheLoopCloses) {
    af::Loop loop;
    bool ran = false;
    loop.call_soon_threadsafe([&] { ran = true; });
    std::future<int> f = af::run_coroutine_threadsafe(loop, [] { return 2; });
    EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
    loop.close();  // never ran: what was posted runs now, on the closed loop
    EXPECT_TRUE(ran);
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    EXPECT_THROW(f.get(), af::RuntimeError);
}

// ---------------------------------------------------------------- a failed start-up

namespace {
int highest_fd() {
    int top = 2;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            int fd = std::atoi(e->d_name);
            if (fd > top) top = fd;
        }
        ::closedir(d);
    }
    return top;
}
}  // namespace

// The report: af::run failing in its start-up (no descriptor free) left the thread
// with a pointer to the destroyed loop: Loop::current() read freed memory (ASan) and every
// later run() said "a loop is already running". Each step of the start-up is made to fail in
// turn (one more descriptor allowed each time); after each, the thread is as it was.
TEST(FailedStart, NoDescriptorLeftThenTheThreadRunsLoopsAgain) {
    rlimit saved;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int failures = 0;
    for (int spare = 0; spare <= 12; ++spare) {
        // Exactly `spare` descriptors free: a low limit, every slot under it taken, then
        // `spare` of them given back.
        rlimit low = saved;
        low.rlim_cur = static_cast<rlim_t>(highest_fd() + 1 + 16);
        if (low.rlim_cur > saved.rlim_cur) break;
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
        std::vector<int> held;
        for (int fd; (fd = ::dup(0)) >= 0;) held.push_back(fd);
        for (int i = 0; i < spare && !held.empty(); ++i) {
            ::close(held.back());
            held.pop_back();
        }
        bool failed = false;
        try {
            af::run([] {
                af::sleep(1ms);
                return 0;
            });
        } catch (const std::exception&) {
            failed = true;
        }
        for (int fd : held) ::close(fd);
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
        if (failed) ++failures;
        EXPECT_THROW(af::Loop::current(), af::RuntimeError) << spare;
        EXPECT_EQ(af::run([] { return 42; }), 42) << spare;
    }
    EXPECT_GE(failures, 1);
}

// Callbacks and threads: Promise/Future, await_callback, to_thread, run_coroutine_threadsafe,
// call_soon_threadsafe, and starting tasks from callback code. One safety rule per test.
#include <asyncfiber/bridge.hpp>
#include <asyncfiber/gather.hpp>
#include <asyncfiber/sync.hpp>
#include <asyncfiber/wait.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// Counts live instances, to show that a dropped result is never constructed or leaked.
struct Tracked {
    static std::atomic<int> live;
    static std::atomic<int> made;
    int v;
    explicit Tracked(int x) : v(x) {
        ++live;
        ++made;
    }
    Tracked(const Tracked& o) : v(o.v) { ++live; }
    Tracked(Tracked&& o) noexcept : v(o.v) { ++live; }
    ~Tracked() { --live; }
};
std::atomic<int> Tracked::live{0};
std::atomic<int> Tracked::made{0};

struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom"), code(c) {}
    int code;
};

}  // namespace

// ---------------------------------------------------------------- Promise / Future

TEST(Promise, SetFromAnotherThreadWakesTheTask) {
    int v = af::run([] {
        af::Promise<int> p;
        auto f = p.get_future();
        std::thread th([&p] {
            std::this_thread::sleep_for(10ms);
            p.set_value(42);
        });
        int r = af::await(f);
        th.join();
        return r;
    });
    EXPECT_EQ(v, 42);
}

TEST(Promise, ReadyFutureIsNotASuspensionPoint) {
    std::vector<int> order;
    af::run([&] {
        af::Promise<std::string> p;
        auto f = p.get_future();
        p.set_value("x");
        EXPECT_TRUE(f.ready());
        auto other = af::async([&] { order.push_back(2); });
        EXPECT_EQ(af::await(f), "x");
        order.push_back(1);
        af::await(other);
    });
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(Promise, SettingTwiceThrowsInvalidState) {
    af::Promise<int> p;
    p.set_value(1);
    EXPECT_THROW(p.set_value(2), af::InvalidStateError);
    EXPECT_THROW(p.set_exception(std::make_exception_ptr(CustomError(1))), af::InvalidStateError);
    af::Promise<void> q;
    q.set_exception(std::make_exception_ptr(CustomError(1)));
    EXPECT_THROW(q.set_value(), af::InvalidStateError);
    EXPECT_THROW(q.set_exception(nullptr), af::InvalidStateError);
}

TEST(Promise, DestroyedUnsetOnAnotherThreadBreaksTheAwait) {
    af::run([] {
        std::unique_ptr<af::Promise<int>> p(new af::Promise<int>);
        auto f = p->get_future();
        std::thread th([&p] {
            std::this_thread::sleep_for(5ms);
            p.reset();
        });
        EXPECT_THROW(af::await(f), af::BrokenPromise);
        th.join();
    });
}

TEST(Promise, ExceptionKeepsItsType) {
    af::run([] {
        af::Promise<int> p;
        auto f = p.get_future();
        std::thread th([&p] { p.set_exception(std::make_exception_ptr(CustomError(7))); });
        try {
            af::await(f);
            FAIL() << "no exception";
        } catch (const CustomError& e) {
            EXPECT_EQ(e.code, 7);
        }
        th.join();
    });
}

TEST(Promise, VoidAndMoveOnlyValues) {
    af::run([] {
        af::Promise<void> p;
        auto f = p.get_future();
        std::thread th([&p] { p.set_value(); });
        af::await(f);
        th.join();
        af::Promise<std::unique_ptr<int>> q;
        auto g = q.get_future();
        q.set_value(std::unique_ptr<int>(new int(5)));
        EXPECT_EQ(*af::await(std::move(g)), 5);
    });
}

TEST(Promise, MisuseThrows) {
    af::Promise<int> p;
    auto f = p.get_future();
    EXPECT_THROW(p.get_future(), af::InvalidStateError);
    EXPECT_THROW(af::await(f), af::RuntimeError);  // outside a task
    af::Future<int> empty;
    EXPECT_FALSE(empty.valid());
    af::Promise<int> moved = std::move(p);
    EXPECT_THROW(p.set_value(1), af::InvalidStateError);  // NOLINT: testing the moved-from state
    moved.set_value(3);
    af::run([&] {
        EXPECT_EQ(af::await(f), 3);
        EXPECT_THROW(af::await(f), af::InvalidStateError);  // the value was moved out
        EXPECT_THROW(af::await(empty), af::InvalidStateError);
    });
}

TEST(Promise, SecondConcurrentAwaiterIsRefused) {
    af::run([] {
        af::Promise<int> p;
        auto f = p.get_future();
        auto first = af::async([&] { return af::await(f); });
        af::sleep(0ms);
        EXPECT_THROW(af::await(f), af::InvalidStateError);
        p.set_value(9);
        EXPECT_EQ(af::await(first), 9);
    });
}

TEST(Promise, CancellingTheAwaitKeepsTheValueForALaterAwait) {
    af::run([] {
        af::Promise<int> p;
        auto f = p.get_future();
        auto t = af::async([&] { return af::await(f); });
        af::sleep(0ms);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        std::thread th([&p] { p.set_value(11); });
        th.join();
        EXPECT_EQ(af::await(f), 11);
    });
}

// ---------------------------------------------------------------- await_callback

namespace {
// A callback-style API that answers on a new thread after `delay`.
template <class Cb, class... V>
void answer_on_thread(std::vector<std::thread>& threads, std::chrono::microseconds delay, Cb cb,
                      V... v) {
    threads.emplace_back([=] {
        std::this_thread::sleep_for(delay);
        cb(v...);
    });
}
void join_all(std::vector<std::thread>& threads) {
    for (auto& t : threads) t.join();
    threads.clear();
}
}  // namespace

TEST(AwaitCallback, ValueOnAnotherThread) {
    af::run([] {
        std::vector<std::thread> th;
        std::thread::id loop_thread = std::this_thread::get_id();
        std::string s = af::await_callback<std::string>([&](af::Callback<std::string> cb) {
            answer_on_thread(th, 1000us, cb, std::string("hi"));
        });
        EXPECT_EQ(s, "hi");
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        join_all(th);
    });
}

TEST(AwaitCallback, StdErrorCodeFirst) {
    af::run([] {
        std::vector<std::thread> th;
        int v = af::await_callback<int>([&](std::function<void(std::error_code, int)> cb) {
            answer_on_thread(th, 100us, cb, std::error_code(), 5);
        });
        EXPECT_EQ(v, 5);
        try {
            af::await_callback<int>([&](std::function<void(std::error_code, int)> cb) {
                answer_on_thread(th, 100us, cb, std::make_error_code(std::errc::connection_refused),
                                 0);
            });
            FAIL() << "no exception";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::make_error_code(std::errc::connection_refused));
        }
        join_all(th);
    });
}

TEST(AwaitCallback, BoostErrorCodeFirst) {
    af::run([] {
        std::vector<std::thread> th;
        try {
            af::await_callback<int>([&](af::Callback<int> cb) {
                answer_on_thread(th, 100us, cb,
                                 boost::system::error_code(boost::asio::error::timed_out), 0);
            });
            FAIL() << "no exception";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), boost::asio::error::timed_out);
        }
        join_all(th);
    });
}

TEST(AwaitCallback, ExceptionPtrFirst) {
    af::run([] {
        std::vector<std::thread> th;
        EXPECT_EQ(af::await_callback<int>([&](af::Callback<int> cb) {
                      answer_on_thread(th, 100us, cb, std::exception_ptr(), 8);
                  }),
                  8);
        try {
            af::await_callback<int>([&](af::Callback<int> cb) {
                answer_on_thread(th, 100us, cb, std::make_exception_ptr(CustomError(3)), 0);
            });
            FAIL() << "no exception";
        } catch (const CustomError& e) {
            EXPECT_EQ(e.code, 3);
        }
        join_all(th);
    });
}

TEST(AwaitCallback, SeveralValuesMakeATuple) {
    af::run([] {
        std::vector<std::thread> th;
        auto t = af::await_callback<std::tuple<int, std::string>>(
            [&](std::function<void(std::error_code, int, std::string)> cb) {
                answer_on_thread(th, 100us, cb, std::error_code(), 4, std::string("four"));
            });
        EXPECT_EQ(std::get<0>(t), 4);
        EXPECT_EQ(std::get<1>(t), "four");
        auto u = af::await_callback<std::tuple<int, int>>(
            [&](af::Callback<std::tuple<int, int>> cb) { cb(1, 2); });
        EXPECT_EQ(u, std::make_tuple(1, 2));
        join_all(th);
    });
}

TEST(AwaitCallback, VoidShapes) {
    af::run([] {
        std::vector<std::thread> th;
        af::await_callback<void>(
            [&](std::function<void()> cb) { answer_on_thread(th, 100us, cb); });
        af::await_callback<void>([&](std::function<void(std::error_code)> cb) {
            answer_on_thread(th, 100us, cb, std::error_code());
        });
        EXPECT_THROW(af::await_callback<void>([&](std::function<void(std::error_code)> cb) {
                         answer_on_thread(th, 100us, cb, std::make_error_code(std::errc::io_error));
                     }),
                     std::system_error);
        join_all(th);
    });
}

TEST(AwaitCallback, CallbackFiringBeforeStartReturns) {
    std::vector<int> order;
    af::run([&] {
        auto other = af::async([&] { order.push_back(2); });
        int v = af::await_callback<int>([&](af::Callback<int> cb) {
            cb(6);
            order.push_back(0);
        });
        order.push_back(1);
        EXPECT_EQ(v, 6);
        af::await(other);
    });
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));  // a ready result does not suspend
}

TEST(AwaitCallback, SecondCallIsIgnoredAndReported) {
    af::run([] {
        std::function<void(int)> keep;
        testing::internal::CaptureStderr();
        int v = af::await_callback<int>([&](std::function<void(int)> cb) {
            keep = cb;
            cb(1);
        });
        keep(2);
        std::string err = testing::internal::GetCapturedStderr();
        EXPECT_EQ(v, 1);
        EXPECT_NE(err.find("more than once"), std::string::npos) << err;
    });
}

TEST(AwaitCallback, DroppedUncalledBreaksThePromise) {
    af::run([] {
        // Dropped at once, on the loop thread.
        EXPECT_THROW(af::await_callback<int>([](af::Callback<int>) {}), af::BrokenPromise);
        // Every copy dropped later, on another thread.
        std::vector<std::thread> th;
        EXPECT_THROW(af::await_callback<int>([&](af::Callback<int> cb) {
                         auto a = std::make_shared<af::Callback<int>>(cb);
                         auto b = std::make_shared<af::Callback<int>>(cb);
                         th.emplace_back([a, b]() mutable {
                             std::this_thread::sleep_for(2ms);
                             a.reset();
                             b.reset();
                         });
                     }),
                     af::BrokenPromise);
        join_all(th);
    });
}

TEST(AwaitCallback, CallAfterCancellationIsDroppedUnbuilt) {
    int made_before = Tracked::made.load();
    std::function<void(int)> late;
    af::run([&] {
        auto t = af::async([&] {
            return af::await_callback<Tracked>([&](std::function<void(int)> cb) { late = cb; }).v;
        });
        af::sleep(0ms);
        auto start = af::Clock::now();
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_LT(af::Clock::now() - start, 1s);
    });
    // The task and its loop are gone; the callback fires on another thread.
    std::thread th([&] { late(1); });
    th.join();
    late = nullptr;
    EXPECT_EQ(Tracked::made.load(), made_before);  // never constructed
    EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(AwaitCallback, StartThrowing) {
    af::run([] {
        EXPECT_THROW(af::await_callback<int>([](af::Callback<int>) { throw CustomError(1); }),
                     CustomError);
        EXPECT_THROW(af::await_callback<int>([](af::Callback<int>) {}), af::BrokenPromise);
    });
    EXPECT_THROW(af::await_callback<int>([](af::Callback<int>) {}), af::RuntimeError);
}

// ---------------------------------------------------------------- to_thread

TEST(ToThread, RunsOnAnotherThreadAndReturns) {
    af::run([] {
        std::thread::id loop_thread = std::this_thread::get_id();
        auto id = af::to_thread([] { return std::this_thread::get_id(); });
        EXPECT_NE(id, loop_thread);
        std::unique_ptr<int> p(new int(4));
        int v =
            af::to_thread([](std::unique_ptr<int> q, int k) { return *q * k; }, std::move(p), 3);
        EXPECT_EQ(v, 12);
        bool ran = false;
        af::to_thread([&ran] { ran = true; });
        EXPECT_TRUE(ran);
    });
}

TEST(ToThread, ExceptionKeepsItsType) {
    af::run([] {
        try {
            af::to_thread([]() -> int { throw CustomError(21); });
            FAIL() << "no exception";
        } catch (const CustomError& e) {
            EXPECT_EQ(e.code, 21);
        }
    });
}

// The opt-in for functions that own what they touch: the task wakes at once.
TEST(ToThread, AbandonOnCancelWakesAtOnceWhileTheWorkRunsOn) {
    std::atomic<bool> started{false}, finished{false};
    af::run([&] {
        auto t = af::async([&] {
            return af::to_thread(af::abandon_on_cancel, [&started, &finished] {
                started = true;
                std::this_thread::sleep_for(100ms);
                finished = true;
                return Tracked(1);
            });
        });
        // The work must be running (not still queued, where a cancel withdraws it): on a
        // loaded machine the pool thread may take a while to pick it up.
        while (!started.load()) af::sleep(1ms);
        auto start = af::Clock::now();
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_LT(af::Clock::now() - start, 50ms);
        EXPECT_FALSE(finished.load());
    });
    // run() joined the pool: the work ended, its result was dropped.
    EXPECT_TRUE(finished.load());
    EXPECT_EQ(Tracked::live.load(), 0);
}

// Cancelling a task in to_thread keeps it waiting until fn has returned on the pool thread,
// then throws CancelledError (Trio's default): fn, a by-reference lambda as the migration
// guide writes them, still writes into the task's frame, which must still be there. (Under
// ASan a frame gone too early is a use-after-return or use-after-scope report.)
TEST(ToThread, CancelWaitsUntilTheFunctionReturned) {
    std::atomic<bool> started{false};
    af::run([&] {
        int seen = 0;
        auto t = af::async([&] {
            int local = 1;  // in the task's frame
            try {
                af::to_thread([&] {
                    started = true;
                    std::this_thread::sleep_for(50ms);
                    local = 2;
                });
            } catch (const af::CancelledError&) {
                seen = local;  // what fn wrote before the task woke
                throw;
            }
        });
        while (!started) af::sleep(1ms);
        t.cancel();
        EXPECT_FALSE(t.done());
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(t.cancelled());
        EXPECT_EQ(seen, 2);
    });
}

// The same under a timeout: TimeoutError comes once fn has returned.
TEST(ToThread, TimeoutWaitsUntilTheFunctionReturned) {
    af::run([] {
        // On a loaded machine the pool thread may not have picked the job up within 5 ms: the
        // job is then withdrawn and never runs (CancelledWhileQueuedNeverRuns). Tries until a
        // run where the function had started when the deadline passed.
        int runs_started = 0;
        for (int attempt = 0; attempt < 20 && runs_started == 0; ++attempt) {
            std::atomic<bool> started{false}, returned{false};
            int local = 0;
            EXPECT_THROW(af::timeout(5ms,
                                     [&] {
                                         af::to_thread([&] {
                                             started = true;
                                             std::this_thread::sleep_for(50ms);
                                             local = 1;
                                             returned = true;
                                         });
                                     }),
                         af::TimeoutError);
            if (!started.load()) continue;
            ++runs_started;
            EXPECT_TRUE(returned.load());
            EXPECT_EQ(local, 1);
        }
        EXPECT_EQ(runs_started, 1);
    });
}

// A job cancelled while it is still queued (every pool thread busy) never runs, and the task
// wakes at once; the job after it takes its place (asyncio's executor drops it too).
TEST(ToThread, CancelledWhileQueuedNeverRuns) {
    af::Loop loop;
    af::set_executor_size(loop, 1);
    std::atomic<bool> release{false}, second_ran{false}, third_ran{false};
    loop.run_until_complete([&] {
        auto first = af::async([&] {
            af::to_thread([&] {
                while (!release) std::this_thread::sleep_for(1ms);
            });
        });
        auto second = af::async([&] { af::to_thread([&] { second_ran = true; }); });
        af::sleep(5ms);  // both submitted; the only thread runs the first
        second.cancel();
        af::sleep(5ms);
        EXPECT_TRUE(second.done());  // did not wait for the first job
        auto third = af::async([&] { af::to_thread([&] { third_ran = true; }); });
        af::sleep(0s);
        release = true;
        af::await(first);
        af::await(third);
        EXPECT_THROW(af::await(second), af::CancelledError);
    });
    loop.close();  // joins the pool: every job that was to run has run
    EXPECT_TRUE(third_ran.load());
    EXPECT_FALSE(second_ran.load());
}

TEST(ToThread, PoolIsBounded) {
    af::Loop loop;
    af::set_executor_size(loop, 2);
    std::atomic<int> now{0}, peak{0};
    loop.run_until_complete([&] {
        std::vector<af::Task<void>> tasks;
        for (int i = 0; i < 6; ++i)
            tasks.push_back(af::async([&] {
                af::to_thread([&] {
                    int n = ++now;
                    int p = peak.load();
                    while (n > p && !peak.compare_exchange_weak(p, n)) {
                    }
                    std::this_thread::sleep_for(10ms);
                    --now;
                });
            }));
        af::gather(tasks);
    });
    loop.close();
    EXPECT_EQ(peak.load(), 2);
    EXPECT_THROW(af::set_executor_size(loop, 1), af::RuntimeError);  // closed
    EXPECT_THROW(af::set_default_executor_size(0), std::invalid_argument);
}

// ---------------------------------------------------------------- threads into the loop

TEST(Threadsafe, SleepingLoopWakesPromptlyWhenPoked) {
    af::run([] {
        auto sleeper = af::async([] { af::sleep(10s); });  // the loop blocks up to 10 s
        af::Loop& loop = af::Loop::current();
        af::Promise<af::Clock::time_point> p;
        auto f = p.get_future();
        std::thread th([&] {
            std::this_thread::sleep_for(20ms);
            auto poked = af::Clock::now();
            loop.call_soon_threadsafe([&p, poked] { p.set_value(poked); });
        });
        auto poked = af::await(f);
        EXPECT_LT(af::Clock::now() - poked, 1s);  // generous: it would be 10 s if missed
        th.join();
        sleeper.cancel();
    });
}

// A thread that answers at random moments finds the loop running, watching for posts or
// asleep in epoll_wait, and each of its posts must wake it (the handshake between
// IoDriver::post and IoDriver::sleep): a lost wake-up shows as a TimeoutError.
TEST(Threadsafe, PostsAtRandomMomentsAlwaysWakeTheLoop) {
    // Outlive the loop: a round that failed is still answered later, maybe as it closes.
    std::vector<std::unique_ptr<af::Event>> events;
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        constexpr int kRounds = 2000;
        std::mutex m;
        std::condition_variable cv;
        af::Event* current = nullptr;
        int round = 0;
        std::thread th([&] {
            std::mt19937 rng(7);
            for (int i = 1; i <= kRounds; ++i) {
                af::Event* ev;
                {
                    std::unique_lock<std::mutex> lk(m);
                    cv.wait(lk, [&] { return round >= i; });
                    ev = current;
                }
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 120));
                loop.call_soon_threadsafe([ev] { ev->set(); });
            }
        });
        int answered = 0;
        for (int i = 1; i <= kRounds; ++i) {
            events.emplace_back(new af::Event);
            af::Event& ev = *events.back();
            {
                std::lock_guard<std::mutex> lk(m);
                current = &ev;
                round = i;
            }
            cv.notify_one();
            try {
                af::wait_for([&] { ev.wait(); }, 5s);
                ++answered;
            } catch (const af::TimeoutError&) {
                ADD_FAILURE() << "round " << i << ": the post did not wake the loop";
                break;
            }
        }
        {
            std::lock_guard<std::mutex> lk(m);
            round = kRounds;  // lets the thread finish if a round failed
        }
        cv.notify_one();
        th.join();
        EXPECT_EQ(answered, kRounds);
    });
}

TEST(Threadsafe, CallbacksFromManyThreadsRunInOrderPerThread) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        constexpr int kThreads = 8, kEach = 500;
        std::vector<int> last(kThreads, -1);
        int total = 0;
        bool in_order = true;
        af::Promise<void> all;
        auto f = all.get_future();
        std::vector<std::thread> th;
        for (int t = 0; t < kThreads; ++t)
            th.emplace_back([&, t] {
                for (int i = 0; i < kEach; ++i)
                    loop.call_soon_threadsafe([&, t, i] {
                        if (last[static_cast<std::size_t>(t)] != i - 1) in_order = false;
                        last[static_cast<std::size_t>(t)] = i;
                        if (++total == kThreads * kEach) all.set_value();
                    });
            });
        af::await(f);
        for (auto& x : th) x.join();
        EXPECT_TRUE(in_order);
        EXPECT_EQ(total, kThreads * kEach);
    });
}

TEST(Threadsafe, RunCoroutineThreadsafe) {
    af::Loop loop;
    std::thread driver;
    std::future<int> ok, failed, cancelled;
    std::future<void> stop;
    std::thread foreign([&] {
        ok = af::run_coroutine_threadsafe(
            loop,
            [](int a) {
                af::sleep(1ms);
                return a * 2;
            },
            21);
        failed = af::run_coroutine_threadsafe(loop, []() -> int { throw CustomError(5); });
        cancelled = af::run_coroutine_threadsafe(loop, [] {
            af::current_task().cancel();
            af::sleep(1ms);
            return 0;
        });
    });
    foreign.join();
    std::thread waiter([&] {
        EXPECT_EQ(ok.get(), 42);
        EXPECT_THROW(failed.get(), CustomError);
        EXPECT_THROW(cancelled.get(), af::CancelledError);
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    waiter.join();
    loop.close();
}

// A loop closed (here by its destruction) before it ran the task fails the future then, as
// asyncio's would say "Event loop is closed", instead of leaving it to a broken promise.
TEST(Threadsafe, RunCoroutineThreadsafeOnALoopDestroyedFirst) {
    std::future<int> f;
    {
        af::Loop loop;
        f = af::run_coroutine_threadsafe(loop, [] { return 1; });
        EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
    }
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    try {
        f.get();
        ADD_FAILURE() << "no exception";
    } catch (const af::RuntimeError& e) {
        EXPECT_NE(std::string(e.what()).find("Event loop is closed"), std::string::npos);
    }
}

// ---------------------------------------------------------------- ConcurrentFuture

// cancel() from a foreign thread cancels the task on its loop: the task's suspension point
// throws CancelledError, its cleanup runs, the future then holds CancelledError and reports
// cancelled(); a second cancel() finds it done.
TEST(ConcurrentFuture, CancelFromAForeignThreadCancelsTheTask) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        bool cleaned_up = false;
        std::promise<void> started;
        af::to_thread([&] {
            af::ConcurrentFuture<int> f = af::run_coroutine_threadsafe(loop, [&] {
                started.set_value();
                try {
                    af::sleep(1h);
                } catch (const af::CancelledError&) {
                    cleaned_up = true;
                    throw;
                }
                return 1;
            });
            EXPECT_TRUE(f.valid());
            started.get_future().wait();  // cancelled while it waits in its sleep
            EXPECT_FALSE(f.done());
            EXPECT_FALSE(f.cancelled());
            EXPECT_TRUE(f.cancel());
            EXPECT_THROW(f.get(), af::CancelledError);
            EXPECT_FALSE(f.valid());  // get() took the result, as std::future's does
            EXPECT_TRUE(f.done());
            EXPECT_TRUE(f.cancelled());
            EXPECT_FALSE(f.cancel());
        });
        EXPECT_TRUE(cleaned_up);
        EXPECT_EQ(af::all_tasks().size(), 1u);
    });
}

// Cancelled before the loop started the task (the loop does not run yet): the task never
// runs, the future holds CancelledError.
TEST(ConcurrentFuture, CancelBeforeTheTaskStarted) {
    af::Loop loop;
    bool ran = false;
    af::ConcurrentFuture<int> f = af::run_coroutine_threadsafe(loop, [&] {
        ran = true;
        return 1;
    });
    EXPECT_FALSE(f.done());
    EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
    EXPECT_TRUE(f.cancel());
    loop.run_until_complete([] { af::sleep(1ms); });
    EXPECT_FALSE(ran);
    ASSERT_TRUE(f.done());
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW(f.get(), af::CancelledError);
    loop.close();
}

// A result already there: cancel() returns false and changes nothing; a task that catches
// the cancellation and returns a value delivers the value (cancelled() stays false).
TEST(ConcurrentFuture, CancelTooLateOrRefused) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        af::to_thread([&] {
            af::ConcurrentFuture<int> done = af::run_coroutine_threadsafe(loop, [] { return 7; });
            EXPECT_EQ(done.wait_until(std::chrono::steady_clock::now() + 10s),
                      std::future_status::ready);
            EXPECT_FALSE(done.cancel());
            EXPECT_FALSE(done.cancelled());
            EXPECT_EQ(done.get(), 7);

            std::promise<void> started;
            af::ConcurrentFuture<std::string> stubborn = af::run_coroutine_threadsafe(loop, [&] {
                started.set_value();
                try {
                    af::sleep(1h);
                } catch (const af::CancelledError&) {
                    af::current_task().uncancel();
                }
                return std::string("refused");
            });
            started.get_future().wait();  // in its sleep, where it catches the cancellation
            EXPECT_TRUE(stubborn.cancel());
            stubborn.wait();
            EXPECT_TRUE(stubborn.done());
            EXPECT_FALSE(stubborn.cancelled());
            EXPECT_EQ(stubborn.get(), "refused");
        });
    });
}

// It converts (by move) to the std::future run_coroutine_threadsafe used to return, and to a
// shared_future; a ConcurrentFuture<void> works the same.
TEST(ConcurrentFuture, ConvertsToStdFutureAndShares) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        af::to_thread([&] {
            std::future<int> plain = af::run_coroutine_threadsafe(loop, [] { return 3; });
            EXPECT_EQ(plain.get(), 3);
            af::ConcurrentFuture<int> cf = af::run_coroutine_threadsafe(loop, [] { return 4; });
            std::future<int> moved = std::move(cf);
            EXPECT_FALSE(cf.valid());
            EXPECT_THROW(cf.done(), std::future_error);
            EXPECT_EQ(moved.get(), 4);
            std::shared_future<int> shared =
                af::run_coroutine_threadsafe(loop, [] { return 5; }).share();
            EXPECT_EQ(shared.get(), 5);
            af::ConcurrentFuture<void> v =
                af::run_coroutine_threadsafe(loop, [] { af::sleep(1ms); });
            v.get();
            EXPECT_TRUE(v.done());
            EXPECT_FALSE(v.cancelled());
        });
    });
}

// Misuse: an empty ConcurrentFuture throws std::future_error (no_state) instead of crashing;
// a closed loop's future is done with RuntimeError and cannot be cancelled.
TEST(ConcurrentFuture, EmptyAndClosedLoop) {
    af::ConcurrentFuture<int> empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_THROW(empty.done(), std::future_error);
    EXPECT_THROW(empty.cancelled(), std::future_error);
    EXPECT_THROW(empty.cancel(), std::future_error);

    af::Loop loop;
    loop.close();
    af::ConcurrentFuture<int> f = af::run_coroutine_threadsafe(loop, [] { return 1; });
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancel());
    EXPECT_FALSE(f.cancelled());
    EXPECT_THROW(f.get(), af::RuntimeError);
}

// ---------------------------------------------------------------- the reverse direction

TEST(Reverse, AsioHandlerStartsATaskAndHearsItsEnd) {
    std::vector<std::string> order;
    af::run([&] {
        af::Event done;
        boost::asio::steady_timer timer(af::Loop::current().io_context(), 1ms);
        // Plain callback code: no task here.
        timer.async_wait([&](const boost::system::error_code& ec) {
            ASSERT_FALSE(ec);
            EXPECT_FALSE(af::current_task());  // an empty handle, as asyncio's None
            af::Task<int> t = af::async([&] {
                order.push_back("task runs");
                af::sleep(1ms);
                return 7;
            });
            order.push_back("spawned");
            t.add_done_callback([&, t](af::TaskRef) {
                order.push_back("done callback " + std::to_string(t.result()));
                done.set();
            });
        });
        done.wait();
    });
    EXPECT_EQ(order, (std::vector<std::string>{"spawned", "task runs", "done callback 7"}));
}

TEST(Reverse, ThreadStartsATaskThroughTheLoop) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        af::Promise<std::string> p;
        auto f = p.get_future();
        std::thread th([&] {
            loop.call_soon_threadsafe([&] {
                af::Task<std::string> t = af::async([] {
                    af::sleep(1ms);
                    return std::string("from a thread");
                });
                t.add_done_callback([&p, t](af::TaskRef) { p.set_value(t.result()); });
            });
        });
        EXPECT_EQ(af::await(f), "from a thread");
        th.join();
    });
}

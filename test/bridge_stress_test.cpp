// Hammering the bridge from many threads: thousands of completions at random times, with
// cancellation racing completion. Built and run under ThreadSanitizer by .ci/extra/20-tsan.sh.
#include <asyncfiber/bridge.hpp>
#include <asyncfiber/gather.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// A callback-style "vendor SDK": answers requests on its own threads after a random delay.
class Sdk {
public:
    explicit Sdk(int threads) {
        for (int i = 0; i < threads; ++i)
            threads_.emplace_back([this, i] { work(static_cast<unsigned>(i)); });
    }
    ~Sdk() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    void submit(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lk(m_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

private:
    void work(unsigned seed) {
        std::mt19937 rng(seed);
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            auto job = std::move(jobs_.front());
            jobs_.pop_front();
            lk.unlock();
            if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
            job();
            job = nullptr;
            lk.lock();
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
};

struct Counted {
    static std::atomic<int> live;
    int v;
    explicit Counted(int x) : v(x) { ++live; }
    Counted(const Counted& o) : v(o.v) { ++live; }
    Counted(Counted&& o) noexcept : v(o.v) { ++live; }
    ~Counted() { --live; }
};
std::atomic<int> Counted::live{0};

constexpr int kTasks = 2000;

}  // namespace

TEST(BridgeStress, ThousandsOfCallbacksFromManyThreads) {
    Sdk sdk(8);
    long long sum = af::run([&] {
        std::vector<af::Task<int>> tasks;
        for (int i = 0; i < kTasks; ++i)
            tasks.push_back(af::async([&sdk, i] {
                int a = af::await_callback<int>([&](af::Callback<int> cb) {
                    sdk.submit([cb, i] { cb(std::error_code(), i); });
                });
                // A second hop, now with a value that needs a destructor.
                return af::await_callback<Counted>(
                           [&](af::Callback<Counted> cb) { sdk.submit([cb, a] { cb(a); }); })
                    .v;
            }));
        long long s = 0;
        for (int v : af::gather(tasks)) s += v;
        return s;
    });
    EXPECT_EQ(sum, static_cast<long long>(kTasks) * (kTasks - 1) / 2);
    EXPECT_EQ(Counted::live.load(), 0);
}

TEST(BridgeStress, CancellationRacingCompletion) {
    Sdk sdk(8);
    std::atomic<int> completed{0}, cancelled{0}, broken{0};
    af::run([&] {
        std::mt19937 rng(12345);
        std::vector<af::Task<void>> tasks;
        for (int i = 0; i < kTasks; ++i)
            tasks.push_back(af::async([&, i] {
                try {
                    int v = af::await_callback<Counted>([&](af::Callback<Counted> cb) {
                                // Some callbacks are dropped uncalled, some called twice.
                                sdk.submit([cb, i] {
                                    if (i % 17 == 0) return;
                                    cb(i);
                                    if (i % 13 == 0) cb(i + 1);
                                });
                            }).v;
                    EXPECT_EQ(v, i);
                    ++completed;
                } catch (const af::BrokenPromise&) {
                    ++broken;
                }
            }));
        // Cancel a random half, at random moments, while the answers come in.
        for (int i = 0; i < kTasks / 2; ++i) {
            tasks[rng() % kTasks].cancel();
            if (i % 50 == 0) af::sleep(std::chrono::microseconds(rng() % 300));
        }
        // Some were cancelled before their first step: count the outcomes, not the bodies.
        for (auto& o : af::gather_settled(tasks))
            if (o.cancelled()) ++cancelled;
    });
    EXPECT_EQ(completed + cancelled + broken, kTasks);
    EXPECT_GT(cancelled.load(), 0);
    EXPECT_EQ(Counted::live.load(), 0);
}

TEST(BridgeStress, PromisesSetOrDroppedFromThreads) {
    std::unique_ptr<Sdk> owned(new Sdk(8));
    Sdk& sdk = *owned;
    std::atomic<int> values{0}, broken{0}, refused{0};
    af::run([&] {
        std::vector<af::Task<void>> tasks;
        for (int i = 0; i < kTasks; ++i)
            tasks.push_back(af::async([&, i] {
                auto p = std::make_shared<af::Promise<int>>();
                auto f = p->get_future();
                // Two threads race to set it; the loser is refused. Some are dropped unset.
                for (int k = 0; k < 2; ++k)
                    sdk.submit([p, i, &refused] {
                        if (i % 11 == 0) return;
                        try {
                            p->set_value(i);
                        } catch (const af::InvalidStateError&) {
                            ++refused;
                        }
                    });
                p.reset();
                try {
                    EXPECT_EQ(af::await(f), i);
                    ++values;
                } catch (const af::BrokenPromise&) {
                    ++broken;
                }
            }));
        af::gather(tasks);
    });
    owned.reset();  // drains the SDK: every losing setter has run
    int dropped = (kTasks + 10) / 11;
    EXPECT_EQ(broken.load(), dropped);
    EXPECT_EQ(values.load(), kTasks - dropped);
    EXPECT_EQ(refused.load(), kTasks - dropped);
}

TEST(BridgeStress, ToThreadWithCancellation) {
    std::atomic<int> ran{0};
    int ok = 0, cancelled = 0;
    af::Loop loop;
    af::set_executor_size(loop, 6);
    loop.run_until_complete([&] {
        std::mt19937 rng(7);
        std::vector<af::Task<int>> tasks;
        for (int i = 0; i < 500; ++i)
            tasks.push_back(af::async([&, i] {
                return af::to_thread([&, i] {
                           ++ran;
                           return Counted(i);
                       })
                    .v;
            }));
        for (int i = 0; i < 150; ++i) {
            tasks[rng() % tasks.size()].cancel();
            if (i % 10 == 0) af::sleep(0ms);
        }
        for (auto& o : af::gather_settled(tasks)) {
            if (o.ok())
                ++ok;
            else if (o.cancelled())
                ++cancelled;
        }
    });
    loop.close();  // joins the pool: every job that was queued has run
    EXPECT_EQ(ok + cancelled, 500);
    EXPECT_GT(cancelled, 0);
    EXPECT_GE(ran.load(), ok);
    EXPECT_EQ(Counted::live.load(), 0);
}

TEST(BridgeStress, RunCoroutineThreadsafeFromManyThreads) {
    af::Loop loop;
    std::vector<std::future<int>> futures[8];
    std::vector<std::thread> threads;
    std::atomic<int> submitted{0};
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                futures[t].push_back(af::run_coroutine_threadsafe(
                    loop,
                    [](int x) {
                        af::sleep(0ms);
                        return x;
                    },
                    t * 1000 + i));
            }
            ++submitted;
        });
    std::thread checker([&] {
        for (auto& th : threads) th.join();
        long long sum = 0;
        for (int t = 0; t < 8; ++t)
            for (auto& f : futures[t]) sum += f.get();
        long long expected = 0;
        for (int t = 0; t < 8; ++t)
            for (int i = 0; i < 200; ++i) expected += t * 1000 + i;
        EXPECT_EQ(sum, expected);
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    checker.join();
    loop.close();
    EXPECT_EQ(submitted.load(), 8);
}

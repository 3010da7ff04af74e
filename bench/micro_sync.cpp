// Google Benchmark micro-benchmarks of the synchronisation primitives: the uncontended paths
// (no suspension) and a pass of an item through a queue between two tasks.
#include <asyncfiber/asyncfiber.hpp>

#include <benchmark/benchmark.h>

#include <mutex>

namespace af = asyncfiber;

// Lock taken and released with nobody else around.
static void BM_LockUncontended(benchmark::State& state) {
    af::run([&] {
        af::Lock lock;
        for (auto _ : state) {
            lock.lock();
            lock.unlock();
        }
        benchmark::DoNotOptimize(lock.locked());
    });
}
BENCHMARK(BM_LockUncontended);

// The same through std::lock_guard.
static void BM_LockGuardUncontended(benchmark::State& state) {
    af::run([&] {
        af::Lock lock;
        for (auto _ : state) {
            std::lock_guard<af::Lock> g(lock);
            benchmark::ClobberMemory();
        }
    });
}
BENCHMARK(BM_LockGuardUncontended);

// Event set, waited on (already set: no suspension) and cleared.
static void BM_EventSetWait(benchmark::State& state) {
    af::run([&] {
        af::Event ev;
        for (auto _ : state) {
            ev.set();
            ev.wait();
            ev.clear();
        }
    });
}
BENCHMARK(BM_EventSetWait);

// Event set by one task and waited on by another: a wake-up and a switch each way.
static void BM_EventPingPong(benchmark::State& state) {
    af::run([&] {
        af::Event ping, pong;
        bool stop = false;
        auto other = af::async([&] {
            for (;;) {
                ping.wait();
                ping.clear();
                if (stop) return;
                pong.set();
            }
        });
        for (auto _ : state) {
            ping.set();
            pong.wait();
            pong.clear();
        }
        stop = true;
        ping.set();
        af::await(other);
    });
}
BENCHMARK(BM_EventPingPong);

// Semaphore acquire/release, uncontended.
static void BM_SemaphoreUncontended(benchmark::State& state) {
    af::run([&] {
        af::Semaphore s(1);
        for (auto _ : state) {
            s.acquire();
            s.release();
        }
    });
}
BENCHMARK(BM_SemaphoreUncontended);

// Queue put_nowait + get_nowait in one task.
static void BM_QueueNowait(benchmark::State& state) {
    af::run([&] {
        af::Queue<long> q;
        long i = 0;
        for (auto _ : state) {
            q.put_nowait(i++);
            benchmark::DoNotOptimize(q.get_nowait());
        }
    });
}
BENCHMARK(BM_QueueNowait);

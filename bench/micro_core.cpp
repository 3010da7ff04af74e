// Google Benchmark micro-benchmarks of the core: spawn, switch (yield) and sleep.
#include <asyncfiber/asyncfiber.hpp>

#include <benchmark/benchmark.h>

#include <vector>

namespace af = asyncfiber;

// Spawn a task and await it, one at a time.
static void BM_SpawnAwait(benchmark::State& state) {
    af::run([&] {
        for (auto _ : state) {
            auto t = af::async([] { return 1; });
            benchmark::DoNotOptimize(af::await(t));
        }
    });
}
BENCHMARK(BM_SpawnAwait);

// Spawn a batch of tasks, then gather them.
static void BM_SpawnGather(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    af::run([&] {
        for (auto _ : state) {
            std::vector<af::Task<int>> tasks;
            tasks.reserve(batch);
            for (std::size_t i = 0; i < batch; ++i) tasks.push_back(af::async([] { return 1; }));
            benchmark::DoNotOptimize(af::gather(std::move(tasks)));
        }
    });
    state.SetItemsProcessed(state.iterations() * static_cast<long>(batch));
}
BENCHMARK(BM_SpawnGather)->Arg(10)->Arg(1000);

// One task yielding alone: scheduler round trip.
static void BM_Yield(benchmark::State& state) {
    af::run([&] {
        for (auto _ : state) af::sleep(std::chrono::seconds(0));
    });
}
BENCHMARK(BM_Yield);

// Two tasks yielding to each other: a switch from task to task.
static void BM_SwitchTwoTasks(benchmark::State& state) {
    af::run([&] {
        bool stop = false;
        auto other = af::async([&] {
            while (!stop) af::sleep(std::chrono::seconds(0));
        });
        for (auto _ : state) af::sleep(std::chrono::seconds(0));
        stop = true;
        af::await(other);
    });
}
BENCHMARK(BM_SwitchTwoTasks);

// A timer that is already due: sleep_until(now) goes through the timer heap.
static void BM_SleepDue(benchmark::State& state) {
    af::run([&] {
        for (auto _ : state) af::sleep_until(af::Clock::now());
    });
}
BENCHMARK(BM_SleepDue);

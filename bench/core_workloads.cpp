// The core runtime's workloads: spawn, sleep, yield, skynet, blocked-task memory.
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <cstdio>
#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {
long N() { return workloads::env_long("N", 100000); }
}  // namespace

// spawn_ns_per_task: spawn N tasks that each return their index, gather, check the sum.
double workloads::spawn_body() {
    const long n = N();
    auto t = clk::now();
    std::vector<af::Task<long>> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) tasks.push_back(af::async([](long i) { return i; }, i));
    long sum = 0;
    for (long v : af::gather(std::move(tasks))) sum += v;
    double el = workloads::seconds_since(t);
    workloads::check(sum == n * (n - 1) / 2, "spawn sum");
    return el / static_cast<double>(n) * 1e9;
}

// yield_ns: one task yields (sleep(0)) 1 000 000 times.
double workloads::yield_body() {
    const long m = 1000000;
    auto t = clk::now();
    for (long i = 0; i < m; ++i) af::sleep(std::chrono::seconds(0));
    return workloads::seconds_since(t) / static_cast<double>(m) * 1e9;
}

namespace {

double spawn_ns_per_task() { return af::run(workloads::spawn_body); }

// spawn_eager_ns_per_task: as spawn_ns_per_task, with TaskOptions::eager: each task runs (and
// ends, without suspending) inside af::async, never going through the ready queue.
double spawn_eager_ns_per_task() {
    return af::run([] {
        const long n = N();
        af::TaskOptions eager;
        eager.eager = true;
        auto t = clk::now();
        std::vector<af::Task<long>> tasks;
        tasks.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i)
            tasks.push_back(af::async(
                eager, [](long i) { return i; }, i));
        long sum = 0;
        for (long v : af::gather(std::move(tasks))) sum += v;
        double el = workloads::seconds_since(t);
        workloads::check(sum == n * (n - 1) / 2, "spawn sum");
        return el / static_cast<double>(n) * 1e9;
    });
}

// One burst of N tasks that each sleep 50 ms, gathered; ms of wall time.
double sleep_burst_ms() {
    const long n = N();
    auto t = clk::now();
    std::vector<af::Task<long>> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
        tasks.push_back(af::async(
            [](long i) {
                af::sleep(std::chrono::milliseconds(50));
                return i;
            },
            i));
    long sum = 0;
    for (long v : af::gather(std::move(tasks))) sum += v;
    workloads::check(sum == n * (n - 1) / 2, "sleep sum");
    return workloads::seconds_since(t) * 1e3;
}

// sleep50ms_100k_wall_ms: N tasks each sleep 50 ms, gathered.
double sleep50ms_100k_wall_ms() {
    return af::run([] { return sleep_burst_ms(); });
}

// sleep50ms_100k_warm_wall_ms (ours only): the same burst again in the same process, with
// the stacks of the first still resident: what a server sees from its second burst on.
double sleep50ms_100k_warm_wall_ms() {
    return af::run([] {
        sleep_burst_ms();
        return sleep_burst_ms();
    });
}

double yield_ns() { return af::run(workloads::yield_body); }

long skynet(long num, long size, long div) {
    if (size == 1) return num;
    long sub = size / div;
    std::vector<af::Task<long>> children;
    children.reserve(static_cast<std::size_t>(div));
    for (long i = 0; i < div; ++i) children.push_back(af::async(skynet, num + i * sub, sub, div));
    long sum = 0;
    for (long v : af::gather(std::move(children))) sum += v;
    return sum;
}

double skynet_once_ms() {
    auto t = clk::now();
    long r = af::await(af::async(skynet, 0L, 1000000L, 10L));
    double el = workloads::seconds_since(t);
    workloads::check(r == 499999500000L, "skynet sum");
    return el * 1e3;
}

// skynet1M_ms: 1 000 000 leaf tasks, 10 children per node, every node a task.
double skynet1M_ms() {
    return af::run([] { return skynet_once_ms(); });
}

// skynet1M_2loops_ms (ours only, issue 13's scaling): a skynet1M tree on each of the 2 loops
// of an af::Runtime at once, so twice skynet1M_ms's work; on 2 free cores it takes about
// skynet1M_ms (goal: 2 * skynet1M_ms / this >= 1.85).
double skynet1M_2loops_ms() {
    af::Runtime rt(2);
    auto t = clk::now();
    rt.run([](std::size_t) {
        workloads::check(af::await(af::async(skynet, 0L, 1000000L, 10L)) == 499999500000L,
                         "skynet sum");
    });
    return workloads::seconds_since(t) * 1e3;
}

// skynet1M_warm_ms (ours only): the same tree again in the same process.
double skynet1M_warm_ms() {
    return af::run([] {
        skynet_once_ms();
        return skynet_once_ms();
    });
}

// mem_bytes_per_blocked_task: MEM_N tasks blocked on one event; resident memory growth.
double mem_bytes_per_blocked_task() {
    return af::run([] {
        const long m = workloads::env_long("MEM_N", 100000);
        af::Event ev;
        std::vector<af::Task<void>> tasks;
        tasks.reserve(static_cast<std::size_t>(m));
        long before = workloads::rss_bytes();
        for (long i = 0; i < m; ++i) tasks.push_back(af::async([&ev] { ev.wait(); }));
        af::sleep(std::chrono::seconds(0));
        long after = workloads::rss_bytes();
        for (auto& t : tasks) workloads::check(!t.done(), "blocked task finished early");
        ev.set();
        af::gather(std::move(tasks));
        return static_cast<double>(after - before) / static_cast<double>(m);
    });
}

const workloads::Register r1("spawn_ns_per_task", spawn_ns_per_task);
const workloads::Register r1e("spawn_eager_ns_per_task", spawn_eager_ns_per_task);
const workloads::Register r2("sleep50ms_100k_wall_ms", sleep50ms_100k_wall_ms);
const workloads::Register r3("yield_ns", yield_ns);
const workloads::Register r5("skynet1M_ms", skynet1M_ms);
const workloads::Register r5b("skynet1M_2loops_ms", skynet1M_2loops_ms);
const workloads::Register r7("mem_bytes_per_blocked_task", mem_bytes_per_blocked_task);
const workloads::Register r8("sleep50ms_100k_warm_wall_ms", sleep50ms_100k_warm_wall_ms);
const workloads::Register r9("skynet1M_warm_ms", skynet1M_warm_ms);

}  // namespace

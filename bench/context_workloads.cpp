// Task-local state's workloads (ours only): what a switch costs per bound thread_local, and
// what a spawn costs once a ContextVar is set. Compared with yield_ns / spawn_ns_per_task of
// the same build (docs/performance.md).
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <string>
#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {

// Legacy per-thread state, as a logger or a tracer keeps it.
thread_local std::string t_request_id = "none";
thread_local std::string t_tenant = "none";
thread_local long t_depth = 0;
thread_local void* t_transaction = nullptr;
std::string& request_id() { return t_request_id; }
std::string& tenant() { return t_tenant; }
long& depth() { return t_depth; }
void*& transaction() { return t_transaction; }

// One task yields (sleep(0)) 1 000 000 times, as yield_ns, while `bound` thread_locals are
// bound: each switch in and out swaps each of them.
double yield_ns_with(int bound) {
    std::vector<af::ThreadLocalBinding> bindings;
    if (bound >= 1) bindings.push_back(af::bind_thread_local(&request_id));
    if (bound >= 2) bindings.push_back(af::bind_thread_local(&tenant));
    if (bound >= 3) bindings.push_back(af::bind_thread_local(&depth));
    if (bound >= 4) bindings.push_back(af::bind_thread_local(&transaction));
    return af::run([] {
        t_request_id = "req-1";
        const long m = 1000000;
        auto t = clk::now();
        for (long i = 0; i < m; ++i) af::sleep(std::chrono::seconds(0));
        double el = workloads::seconds_since(t);
        workloads::check(t_request_id == "req-1", "thread_local kept");
        return el / static_cast<double>(m) * 1e9;
    });
}

// yield_ns_1_thread_local: yield_ns with one bound thread_local (a std::string).
double yield_ns_1_thread_local() { return yield_ns_with(1); }
// yield_ns_4_thread_locals: yield_ns with four bound (two strings, a long, a pointer).
double yield_ns_4_thread_locals() { return yield_ns_with(4); }

// spawn_ns_per_task_contextvar: spawn_ns_per_task in a program that set a ContextVar (every
// task starts with a copy of its creator's context: one reference count).
double spawn_ns_per_task_contextvar() {
    static af::ContextVar<long> request("request");
    return af::run([] {
        request.set(42);
        const long n = workloads::env_long("N", 100000);
        auto t = clk::now();
        std::vector<af::Task<long>> tasks;
        tasks.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i)
            tasks.push_back(af::async([](long i) { return i + request.get() - 42; }, i));
        long sum = 0;
        for (long v : af::gather(std::move(tasks))) sum += v;
        double el = workloads::seconds_since(t);
        workloads::check(sum == n * (n - 1) / 2, "spawn sum");
        return el / static_cast<double>(n) * 1e9;
    });
}

const workloads::Register r1("yield_ns_1_thread_local", yield_ns_1_thread_local);
const workloads::Register r2("yield_ns_4_thread_locals", yield_ns_4_thread_locals);
const workloads::Register r3("spawn_ns_per_task_contextvar", spawn_ns_per_task_contextvar);

}  // namespace

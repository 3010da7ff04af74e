// The registry of asyncfiber_workloads: each workload file adds itself with a
// `static const workloads::Register r("name", fn);`.
#pragma once

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace workloads {

struct Workload {
    const char* name;
    double (*run)();
};

inline std::vector<Workload>& registry() {
    static std::vector<Workload> r;
    return r;
}

struct Register {
    Register(const char* name, double (*fn)()) { registry().push_back(Workload{name, fn}); }
};

using clk = std::chrono::steady_clock;
inline double seconds_since(clk::time_point t) {
    return std::chrono::duration<double>(clk::now() - t).count();
}

inline long env_long(const char* name, long dflt) {
    const char* v = std::getenv(name);
    return v ? std::atol(v) : dflt;
}

/// Resident set size in bytes (as asyncio_bench.py reads it).
inline long rss_bytes() {
    std::ifstream f("/proc/self/statm");
    long size = 0, resident = 0;
    f >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

/// Aborts with a message when a workload computed a wrong result.
inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "workload check failed: %s\n", what);
        std::abort();
    }
}

/// The measured parts of spawn_ns_per_task, yield_ns and echo_msgs_per_s, run as the main
/// task of a loop (af::run there, a loop over an io_context in embedded_workloads.cpp).
double spawn_body();
double yield_body();
double echo_body();

}  // namespace workloads

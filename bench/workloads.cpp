// asyncfiber_workloads: the workloads of the benchmark anchors (asyncio_bench.py, go/,
// fiber_bench.cpp) on asyncfiber, with the same work and the same result checks. Prints
// `name value` lines.
//   asyncfiber_workloads [workload...]     (none: all of them)
// N (default 100000) and MEM_N (default 100000) are read from the environment as the
// anchors do.
#include "workloads.hpp"

#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
    const auto& all = workloads::registry();
    int status = 0;
    for (int i = 1; i < argc; ++i) {
        bool known = false;
        for (const auto& w : all) known |= std::strcmp(argv[i], w.name) == 0;
        if (!known) {
            std::fprintf(stderr, "unknown workload: %s\navailable:", argv[i]);
            for (const auto& w : all) std::fprintf(stderr, " %s", w.name);
            std::fprintf(stderr, "\n");
            return 2;
        }
    }
    for (const auto& w : all) {
        bool selected = argc == 1;
        for (int i = 1; i < argc; ++i) selected |= std::strcmp(argv[i], w.name) == 0;
        if (!selected) continue;
        double v = w.run();
        std::printf("%s %.1f\n", w.name, v);
        std::fflush(stdout);
    }
    return status;
}

// Workloads of the queues: pingpong through two Queue<long>(1), as asyncio_bench.py's
// w_pingpong.
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

namespace af = asyncfiber;
using workloads::clk;

namespace {

// pingpong_ns_per_roundtrip: two tasks pass a counter through two queues of size 1,
// 200 000 round trips; the final value is checked.
double pingpong_ns_per_roundtrip() {
    return af::run([] {
        const long m = 200000;
        af::Queue<long> a(1), b(1);
        auto t = clk::now();
        auto pong = af::async([&] {
            for (long i = 0; i < m; ++i) b.put(a.get() + 1);
        });
        long v = 0;
        for (long i = 0; i < m; ++i) {
            a.put(v);
            v = b.get();
        }
        af::await(pong);
        double el = workloads::seconds_since(t);
        workloads::check(v == m, "pingpong final value");
        return el / static_cast<double>(m) * 1e9;
    });
}

const workloads::Register r("pingpong_ns_per_roundtrip", pingpong_ns_per_roundtrip);

}  // namespace

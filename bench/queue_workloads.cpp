// Workloads of the queues: pingpong through two Queue<long>(1), as asyncio_bench.py's
// w_pingpong, and the same between two loops through two Channel<long>(1).
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

// crossloop_pingpong_ns (ours only, issue 13): the same between a task on each of the two
// loops of an af::Runtime, through two Channel<long>(1); 50 000 round trips. Go's
// pingpong_ns_per_roundtrip with GOMAXPROCS=2 is its anchor (goroutines on two threads).
double crossloop_pingpong_ns() {
    const long m = 50000;
    af::Channel<long> a(1), b(1);
    af::Runtime rt(2);
    long v = 0;
    auto t = clk::now();
    rt.run([&](std::size_t loop) {
        if (loop == 1) {
            for (long i = 0; i < m; ++i) b.put(a.get() + 1);
            return;
        }
        for (long i = 0; i < m; ++i) {
            a.put(v);
            v = b.get();
        }
    });
    double el = workloads::seconds_since(t);
    workloads::check(v == m, "crossloop pingpong final value");
    return el / static_cast<double>(m) * 1e9;
}

const workloads::Register r("pingpong_ns_per_roundtrip", pingpong_ns_per_roundtrip);
const workloads::Register r2("crossloop_pingpong_ns", crossloop_pingpong_ns);

}  // namespace

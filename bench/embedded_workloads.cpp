// The embedded loop's workloads: spawn_ns_per_task, yield_ns and echo_msgs_per_s with the same
// work and checks, on a loop over an io_context that the benchmark runs itself
// (Loop(io_context&), docs/embedding.md). Goal: within 5 % of the owned loop's figures.
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/io_context.hpp>

namespace af = asyncfiber;

namespace {

double run_embedded(double (*body)()) {
    boost::asio::io_context io;
    af::Loop loop(io);
    af::Task<double> main = loop.spawn(body);
    io.run();  // returns once main (and everything it started) is done
    workloads::check(main.done(), "embedded main task done when io.run() returned");
    const double v = main.result();
    loop.close();
    return v;
}

double embedded_spawn_ns_per_task() { return run_embedded(workloads::spawn_body); }
double embedded_yield_ns() { return run_embedded(workloads::yield_body); }
double embedded_echo_msgs_per_s() { return run_embedded(workloads::echo_body); }

const workloads::Register r1("embedded_spawn_ns_per_task", embedded_spawn_ns_per_task);
const workloads::Register r2("embedded_yield_ns", embedded_yield_ns);
const workloads::Register r3("embedded_echo_msgs_per_s", embedded_echo_msgs_per_s);

}  // namespace

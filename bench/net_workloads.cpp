// Networking workloads: echo_msgs_per_s, as w_echo in the anchors' asyncio_bench.py:
// 100 connections x 1000 round trips of 64 bytes, client and server in this one thread.
#include "echo_handler.hpp"
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {

// One echo client: R round trips of 64 bytes; returns how many came back intact.
long echo_client(unsigned short port, long R) {
    auto rw = af::open_connection("127.0.0.1", port);
    const std::string msg(64, 'x');
    long ok = 0;
    for (long i = 0; i < R; ++i) {
        rw.second.write(msg);
        rw.second.drain();
        if (rw.first.readexactly(64) == msg) ++ok;
    }
    rw.second.close();
    rw.second.wait_closed();
    return ok;
}

// `clients` echo clients in tasks of this loop; the round trips that came back intact.
long run_echo_clients(unsigned short port, long clients, long R) {
    std::vector<af::Task<long>> tasks;
    for (long i = 0; i < clients; ++i) tasks.push_back(af::async(echo_client, port, R));
    long ok = 0;
    for (long v : af::gather(std::move(tasks))) ok += v;
    return ok;
}

}  // namespace

// echo_msgs_per_s's body, run by an owned loop here and by an embedded one in
// embedded_workloads.cpp.
double workloads::echo_body() {
    const long C = workloads::env_long("ECHO_C", 100), R = workloads::env_long("ECHO_R", 1000);
    af::Server server = af::start_server(workloads::echo64, "127.0.0.1", 0);
    auto t = clk::now();
    long ok = run_echo_clients(server.port(), C, R);
    double el = workloads::seconds_since(t);
    workloads::check(ok == C * R, "echo round trips");
    server.close();
    server.wait_closed();
    return static_cast<double>(C * R) / el;
}

namespace {

double echo_msgs_per_s() { return af::run(workloads::echo_body); }

// echo_2loops_msgs_per_s (ours only, issue 13's scaling): the echo workload sharded over the
// 2 loops of an af::Runtime: each loop has its own reuse_port server on the one port and
// runs half the clients (the kernel spreads the connections over both servers).
double echo_2loops_msgs_per_s() {
    const long C = workloads::env_long("ECHO_C", 100), R = workloads::env_long("ECHO_R", 1000);
    af::Runtime rt(2);
    af::ServerOptions opts;
    opts.reuse_port = true;
    std::vector<af::Server> servers;
    unsigned short port = 0;
    for (std::size_t l = 0; l < 2; ++l) {
        servers.push_back(rt.spawn_on(l, [&] {
                                return af::start_server(workloads::echo64, "127.0.0.1", port, opts);
                            }).get());
        port = servers.back().port();
    }
    std::atomic<long> ok{0};
    auto t = clk::now();
    rt.run([&](std::size_t l) { ok += run_echo_clients(port, C / 2 + (l == 0 ? C % 2 : 0), R); });
    double el = workloads::seconds_since(t);
    workloads::check(ok == C * R, "echo round trips (2 loops)");
    for (std::size_t l = 0; l < 2; ++l)
        rt.spawn_on(l, [&servers, l] {
              servers[l].close();
              servers[l].wait_closed();
          }).get();
    return static_cast<double>(C * R) / el;
}

const workloads::Register r_echo("echo_msgs_per_s", echo_msgs_per_s);
const workloads::Register r_echo2("echo_2loops_msgs_per_s", echo_2loops_msgs_per_s);

}  // namespace

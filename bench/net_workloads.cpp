// Networking workloads: echo_msgs_per_s, as w_echo in ../shared/anchors/asyncio_bench.py:
// 100 connections x 1000 round trips of 64 bytes, client and server in this one thread.
#include "echo_handler.hpp"
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {

}  // namespace

double workloads::echo_body() {
    const long C = workloads::env_long("ECHO_C", 100), R = workloads::env_long("ECHO_R", 1000);
    af::Server server = af::start_server(workloads::echo64, "127.0.0.1", 0);
    const unsigned short port = server.port();
    auto client = [port, R] {
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
    };
    auto t = clk::now();
    std::vector<af::Task<long>> clients;
    for (long i = 0; i < C; ++i) clients.push_back(af::async(client));
    long ok = 0;
    for (long v : af::gather(std::move(clients))) ok += v;
    double el = workloads::seconds_since(t);
    workloads::check(ok == C * R, "echo round trips");
    server.close();
    server.wait_closed();
    return static_cast<double>(C * R) / el;
}

namespace {

double echo_msgs_per_s() { return af::run(workloads::echo_body); }

const workloads::Register r_echo("echo_msgs_per_s", echo_msgs_per_s);

}  // namespace

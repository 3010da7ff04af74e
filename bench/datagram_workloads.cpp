// Datagram workloads: udp_echo_msgs_per_s, as the anchors' asio_udp_echo.cpp and the UDP
// workload of asyncio_bench.py: 100 client endpoints, each connected to one server endpoint on
// 127.0.0.1, x 1000 round trips of a 64-byte datagram; a client sends its next datagram when
// the echo of the last one is back. The server receives with recvfrom and answers with
// sendto. Every echo is compared (size and bytes); a lost datagram (no result within 60 s)
// or an error fails the run.
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {

// The 64-byte datagram of client i, round k (the same bytes as the anchors').
void fill(std::array<char, 64>& m, std::uint64_t v) {
    for (int j = 0; j < 64; ++j)
        m[static_cast<std::size_t>(j)] = static_cast<char>(v >> (8 * (j % 8)));
}

double udp_echo_msgs_per_s() {
    return af::run([] {
        const long C = workloads::env_long("ECHO_C", 100), R = workloads::env_long("ECHO_R", 1000);
        af::DatagramOptions so;
        so.local_host = "127.0.0.1";
        af::DatagramEndpoint server = af::create_datagram_endpoint(so);
        auto serve = af::async([&server] {
            std::array<char, 2048> buf;
            for (;;) {
                af::DatagramInfo d = server.recvfrom_into(buf.data(), buf.size());
                server.sendto(buf.data(), d.size, d.from);
            }
        });
        af::DatagramOptions co;
        co.remote_host = "127.0.0.1";
        co.remote_port = server.local_address().port;
        std::vector<af::DatagramEndpoint> eps;
        for (long i = 0; i < C; ++i) eps.push_back(af::create_datagram_endpoint(co));
        long ok = 0;
        auto client = [&ok, R](af::DatagramEndpoint& ep, std::uint64_t id) {
            std::array<char, 64> out;
            std::array<char, 2048> in;
            for (long k = 0; k < R; ++k) {
                fill(out, id * static_cast<std::uint64_t>(R) + static_cast<std::uint64_t>(k));
                ep.send(out.data(), out.size());
                af::DatagramInfo d = ep.recvfrom_into(in.data(), in.size());
                workloads::check(
                    d.size == out.size() && std::equal(out.begin(), out.end(), in.begin()),
                    "echo differs from the datagram sent");
                ++ok;
            }
            ep.close();
        };
        auto t = clk::now();
        std::vector<af::Task<void>> clients;
        for (long i = 0; i < C; ++i)
            clients.push_back(af::async(client, std::ref(eps[static_cast<std::size_t>(i)]),
                                        static_cast<std::uint64_t>(i)));
        try {
            af::timeout(std::chrono::seconds(60), [&] { af::gather(std::move(clients)); });
        } catch (const af::TimeoutError&) {
            workloads::check(false, "no result within 60 s: a datagram was lost");
        }
        double el = workloads::seconds_since(t);
        workloads::check(ok == C * R, "udp echo round trips");
        serve.cancel();
        return static_cast<double>(C * R) / el;
    });
}

const workloads::Register r_udp_echo("udp_echo_msgs_per_s", udp_echo_msgs_per_s);

}  // namespace

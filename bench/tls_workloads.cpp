// TLS workloads, as w_tls_echo / w_tls_handshakes in the anchors' asyncio_bench.py and
// asio_tls_echo.cpp, with their setup: a self-signed EC P-256 certificate for localhost (SAN
// DNS:localhost, IP:127.0.0.1) made at start-up, TLS 1.3 only with OpenSSL's default
// ciphersuites, no session resumption, a client that verifies the certificate and the host name
// "localhost" and sends it as SNI (a client expecting another name must be refused before
// timing), TCP_NODELAY on both ends, every echo compared byte for byte, 120 s at most.
//   tls_echo_msgs_per_s    100 TLS connections x 1000 round trips of 64 bytes
//   tls_handshakes_per_s   2000 connections, 50 in flight: handshake, one round trip,
//                          close_notify both ways (close + wait_closed), close
#include "echo_handler.hpp"
#include "workloads.hpp"

#include "../test/support/tls_certs.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/ssl/context.hpp>  // SslContext::native()

#include <cstdint>
#include <vector>

namespace af = asyncfiber;
using workloads::clk;

namespace {

// The 64-byte message v (the anchors' fill() / msg64()), written into `m`.
void fill(std::string& m, std::uint64_t v) {
    m.resize(64);
    for (int j = 0; j < 64; ++j) m[j] = static_cast<char>(v >> (8 * (j % 8)));
}

struct TlsSetup {
    af::SslContext server = af::SslContext::server();
    af::SslContext client = af::SslContext::client();
    TlsSetup() {
        tls_certs::Issued cert = tls_certs::issue(tls_certs::Spec());
        server.use_certificate_chain(cert.cert_pem);
        server.use_private_key(cert.key_pem);
        client.add_certificate_authority(cert.cert_pem);
        for (af::SslContext* c : {&server, &client})
            SSL_CTX_set_min_proto_version(c->native().native_handle(), TLS1_3_VERSION);
    }
};

// The echo server over TLS, after checking that a client expecting another host is refused.
af::Server tls_server(TlsSetup& tls) {
    af::ServerOptions so;
    so.ssl = &tls.server;
    af::Server server = af::start_server(workloads::echo64, "127.0.0.1", 0, so);
    af::ConnectOptions o;
    o.ssl = &tls.client;
    o.server_hostname = "not-localhost.example";
    bool refused = false;
    try {
        af::open_connection("127.0.0.1", server.port(), o);
    } catch (const af::SslCertVerificationError&) {
        refused = true;
    }
    workloads::check(refused, "a client expecting another host name was not refused");
    return server;
}

// One connection: `rounds` verified round trips from message `first` on, then a TLS close.
long round_trips(unsigned short port, TlsSetup& tls, std::uint64_t first, long rounds) {
    af::ConnectOptions o;
    o.ssl = &tls.client;
    o.server_hostname = "localhost";
    auto rw = af::open_connection("127.0.0.1", port, o);
    workloads::check(rw.second.tls_info().version == "TLSv1.3", "not TLS 1.3");
    long ok = 0;
    std::string msg;
    for (long k = 0; k < rounds; ++k) {
        fill(msg, first + static_cast<std::uint64_t>(k));
        rw.second.write(msg);
        rw.second.drain();
        if (rw.first.readexactly(64) == msg) ++ok;
    }
    rw.second.close();
    rw.second.wait_closed();
    return ok;
}

double tls_echo_msgs_per_s() {
    return af::run([] {
        const long C = workloads::env_long("ECHO_C", 100), R = workloads::env_long("ECHO_R", 1000);
        TlsSetup tls;
        af::Server server = tls_server(tls);
        const unsigned short port = server.port();
        auto t = clk::now();
        long ok = af::timeout(std::chrono::seconds(120), [&] {
            std::vector<af::Task<long>> clients;
            for (long i = 0; i < C; ++i)
                clients.push_back(af::async([&, i] {
                    return round_trips(port, tls, static_cast<std::uint64_t>(i * R), R);
                }));
            long sum = 0;
            for (long v : af::gather(std::move(clients))) sum += v;
            return sum;
        });
        double el = workloads::seconds_since(t);
        workloads::check(ok == C * R, "echo differs from the message sent");
        server.close();
        server.wait_closed();
        return static_cast<double>(C * R) / el;
    });
}

double tls_handshakes_per_s() {
    return af::run([] {
        const long H = workloads::env_long("HANDSHAKES", 2000), P = 50;
        TlsSetup tls;
        af::Server server = tls_server(tls);
        const unsigned short port = server.port();
        auto worker = [&](long j) {
            long ok = 0;
            for (long i = j; i < H; i += P)
                ok += round_trips(port, tls, static_cast<std::uint64_t>(i), 1);
            return ok;
        };
        auto t = clk::now();
        long ok = af::timeout(std::chrono::seconds(120), [&] {
            std::vector<af::Task<long>> workers;
            for (long j = 0; j < P; ++j)
                workers.push_back(af::async([&worker, j] { return worker(j); }));
            long sum = 0;
            for (long v : af::gather(std::move(workers))) sum += v;
            return sum;
        });
        double el = workloads::seconds_since(t);
        workloads::check(ok == H, "echo differs from the message sent");
        server.close();
        server.wait_closed();
        return static_cast<double>(H) / el;
    });
}

const workloads::Register r_echo("tls_echo_msgs_per_s", tls_echo_msgs_per_s);
const workloads::Register r_handshakes("tls_handshakes_per_s", tls_handshakes_per_s);

}  // namespace

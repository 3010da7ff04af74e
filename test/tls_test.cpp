// TLS streams: contexts and their secure defaults, verification failures and what they say,
// mutual TLS, ALPN, start_tls, close_notify, every stream feature over TLS (lines, limits,
// back-pressure, cancellation, timeouts), hostile peers (silent, slow, resetting, cutting
// records), and many connections. Certificates are made at run time (support/tls_certs.hpp).
#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/ssl/context.hpp>  // SslContext::native()

#include "support/echo.hpp"
#include "support/process_probes.hpp"
#include "support/tls_certs.hpp"
#include "support/tls_peer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

const tls_certs::Pki& pki() {
    static const tls_certs::Pki p = tls_certs::make_pki();
    return p;
}

af::SslContext server_context(const tls_certs::Issued& cert = pki().server) {
    af::SslContext s = af::SslContext::server();
    s.use_certificate_chain(cert.cert_pem);
    s.use_private_key(cert.key_pem);
    return s;
}

// A client that trusts the test CA (and, as every client context, the system's).
af::SslContext client_context() {
    af::SslContext c = af::SslContext::client();
    c.add_certificate_authority(pki().ca.cert_pem);
    return c;
}

af::ConnectOptions tls_to(const af::SslContext& ctx, std::string server_hostname = {}) {
    af::ConnectOptions o;
    o.ssl = &ctx;
    o.server_hostname = std::move(server_hostname);
    return o;
}

af::ServerOptions serve_tls(const af::SslContext& ctx) {
    af::ServerOptions o;
    o.ssl = &ctx;
    return o;
}

using Streams = std::pair<af::StreamReader, af::StreamWriter>;

// Sends `line` and expects it back.
void expect_echo(Streams& rw, const std::string& line) {
    rw.second.write(line);
    EXPECT_EQ(rw.first.readline(), line);
}

// Closes the server and waits until every connection task has ended.
void close_and_wait(af::Server& s) {
    s.close();
    s.wait_closed();
}

// The handshake error of a client with `client` against a server with `server`; fails the
// test if the connection succeeds.
template <class E>
E handshake_error(const af::SslContext& server, const af::ConnectOptions& client,
                  const std::string& host = "127.0.0.1") {
    return af::run([&]() -> E {
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(server));
        try {
            af::open_connection(host, s.port(), client);
        } catch (const E& e) {
            close_and_wait(s);
            return e;
        }
        ADD_FAILURE() << "the handshake succeeded";
        throw std::runtime_error("no error");
    });
}

}  // namespace

// ---- secure defaults, verification ----

TEST(Tls, VerifiedClientEchoesLinesAndSeesWhatWasNegotiated) {
    af::run([] {
        af::SslContext sctx = server_context();
        af::TlsInfo server_side;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                server_side = w.tls_info();
                echo_lines(r, w);
            },
            "localhost", 0, serve_tls(sctx));
        af::SslContext cctx = client_context();
        auto rw = af::open_connection("localhost", s.port(), tls_to(cctx));
        rw.second.write("hello\nworld\n");
        EXPECT_EQ(rw.first.readline(), "hello\n");
        EXPECT_EQ(rw.first.readline(), "world\n");
        af::TlsInfo info = rw.second.tls_info();
        EXPECT_EQ(info.version, "TLSv1.3");
        EXPECT_EQ(info.cipher, "TLS_AES_256_GCM_SHA384");
        EXPECT_EQ(info.alpn_protocol, "");
        EXPECT_EQ(info.peer_certificate_pem, pki().server.cert_pem);
        EXPECT_EQ(server_side.version, "TLSv1.3");
        EXPECT_EQ(server_side.cipher, info.cipher);
        EXPECT_EQ(server_side.peer_certificate_pem, "");  // no client certificate was asked for
        EXPECT_FALSE(rw.second.can_write_eof());
        rw.second.close();
        rw.second.wait_closed();
        close_and_wait(s);
    });
}

TEST(Tls, PlainConnectionHasEmptyTlsInfo) {
    af::run([] {
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0);
        auto rw = af::open_connection("127.0.0.1", s.port());
        af::TlsInfo info = rw.second.tls_info();
        EXPECT_EQ(info.version, "");
        EXPECT_EQ(info.cipher, "");
        EXPECT_EQ(info.alpn_protocol, "");
        EXPECT_EQ(info.peer_certificate_pem, "");
        rw.second.close();
        close_and_wait(s);
    });
}

TEST(Tls, DefaultClientContextIsSecure) {
    af::SslContext c = af::SslContext::client();
    EXPECT_TRUE(c.verify_peer());
    EXPECT_TRUE(c.check_hostname());
    EXPECT_FALSE(c.is_server());
    EXPECT_EQ(SSL_CTX_get_min_proto_version(c.native().native_handle()), TLS1_2_VERSION);
    af::SslContext s = af::SslContext::server();
    EXPECT_FALSE(s.verify_peer());
    EXPECT_FALSE(s.check_hostname());
    EXPECT_TRUE(s.is_server());
    EXPECT_EQ(SSL_CTX_get_min_proto_version(s.native().native_handle()), TLS1_2_VERSION);
}

TEST(Tls, DefaultClientRejectsAnUnknownCa) {
    // SslContext::client() trusts the system's CAs only; the test CA is not one of them.
    af::SslContext client = af::SslContext::client();
    auto e = handshake_error<af::SslCertVerificationError>(server_context(),
                                                           tls_to(client, "localhost"));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    EXPECT_EQ(e.reason(), "certificate verify failed");
    EXPECT_EQ(e.verify_message(), "unable to get local issuer certificate");
    EXPECT_NE(std::string(e.what()).find(
                  "certificate verify failed: unable to get local issuer certificate"),
              std::string::npos)
        << e.what();
}

TEST(Tls, UnverifiedClientOnlyWhenToldExplicitly) {
    af::SslContext client = af::SslContext::client();
    // As Python: verification cannot go while host names are checked.
    EXPECT_THROW(client.set_verify_peer(false), std::invalid_argument);
    EXPECT_TRUE(client.verify_peer());
    client.set_check_hostname(false);
    client.set_verify_peer(false);
    EXPECT_FALSE(client.verify_peer());
    af::run([&] {
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(sctx));
        auto rw =
            af::open_connection("127.0.0.1", s.port(), tls_to(client, "not-the-name.example"));
        expect_echo(rw, "ok\n");
        rw.second.close();
        close_and_wait(s);
    });
    // Checking host names again turns verification back on.
    client.set_check_hostname(true);
    EXPECT_TRUE(client.verify_peer());
}

TEST(Tls, WrongHostNameIsACertVerificationError) {
    af::SslContext client = client_context();
    auto e = handshake_error<af::SslCertVerificationError>(server_context(),
                                                           tls_to(client, "other.example"));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_HOSTNAME_MISMATCH);
    EXPECT_EQ(e.verify_message(), "hostname mismatch");
    EXPECT_NE(std::string(e.what()).find("hostname mismatch"), std::string::npos) << e.what();
    // An empty server_hostname means the host connected to: an IP literal is checked
    // against the certificate's IP addresses.
    tls_certs::Spec no_ip;
    no_ip.ips.clear();
    auto e2 = handshake_error<af::SslCertVerificationError>(
        server_context(tls_certs::issue(no_ip, &pki().ca)), tls_to(client));
    EXPECT_EQ(e2.verify_code(), X509_V_ERR_IP_ADDRESS_MISMATCH);
    EXPECT_EQ(e2.verify_message(), "IP address mismatch");
}

TEST(Tls, ExpiredCertificateIsRefused) {
    tls_certs::Spec expired;
    expired.valid_from_s = -10 * 24 * 3600;
    expired.valid_until_s = -24 * 3600;
    af::SslContext client = client_context();
    auto e = handshake_error<af::SslCertVerificationError>(
        server_context(tls_certs::issue(expired, &pki().ca)), tls_to(client, "localhost"));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_CERT_HAS_EXPIRED);
    EXPECT_EQ(e.verify_message(), "certificate has expired");
}

TEST(Tls, SelfSignedCertificateIsRefusedUnlessTrusted) {
    tls_certs::Issued self_signed = tls_certs::issue(tls_certs::Spec());
    af::SslContext client = client_context();
    auto e = handshake_error<af::SslCertVerificationError>(server_context(self_signed),
                                                           tls_to(client, "localhost"));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    EXPECT_EQ(e.verify_message(), "self-signed certificate");
    // Trusted explicitly, it is accepted.
    af::run([&] {
        af::SslContext sctx = server_context(self_signed);
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(sctx));
        af::SslContext trusting = af::SslContext::client();
        trusting.add_certificate_authority(self_signed.cert_pem);
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(trusting, "localhost"));
        expect_echo(rw, "x\n");
        rw.second.close();
        close_and_wait(s);
    });
}

TEST(Tls, MutualTlsPresentsAndVerifiesClientCertificates) {
    af::run([] {
        af::SslContext sctx = server_context();
        sctx.add_certificate_authority(pki().ca.cert_pem);
        sctx.set_verify_peer(true);  // a client certificate is required
        std::string seen;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                seen = w.tls_info().peer_certificate_pem;
                echo_lines(r, w);
            },
            "127.0.0.1", 0, serve_tls(sctx));
        af::SslContext with_cert = client_context();
        with_cert.use_certificate_chain(pki().client.cert_pem);
        with_cert.use_private_key(pki().client.key_pem);
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(with_cert, "localhost"));
        expect_echo(rw, "me\n");
        EXPECT_EQ(seen, pki().client.cert_pem);
        rw.second.close();
        rw.second.wait_closed();

        // In TLS 1.3 a client's handshake is over before the server has judged its
        // certificate: the server's refusal is the first read's error.
        auto refused = [&](const af::SslContext& client) {
            auto c = af::open_connection("127.0.0.1", s.port(), tls_to(client, "localhost"));
            c.second.write("me\n");
            try {
                c.first.readline();
                ADD_FAILURE() << "the server accepted the client";
            } catch (const af::SslCertVerificationError& e) {
                ADD_FAILURE() << "the client's own verification failed: " << e.what();
            } catch (const af::SslError& e) {
                return e.reason();
            }
            return std::string();
        };
        EXPECT_EQ(refused(client_context()), "tlsv13 alert certificate required");
        tls_certs::Spec other_ca;
        other_ca.ca = true;
        other_ca.dns.clear();
        other_ca.ips.clear();
        tls_certs::Issued stranger_ca = tls_certs::issue(other_ca);
        tls_certs::Spec client_spec;
        client_spec.client = true;
        tls_certs::Issued stranger = tls_certs::issue(client_spec, &stranger_ca);
        af::SslContext with_strange_cert = client_context();
        with_strange_cert.use_certificate_chain(stranger.cert_pem);
        with_strange_cert.use_private_key(stranger.key_pem);
        EXPECT_EQ(refused(with_strange_cert), "tlsv1 alert unknown ca");
        close_and_wait(s);
    });
}

TEST(Tls, AlpnPicksTheServersFirstChoiceThatTheClientOffers) {
    af::run([] {
        af::SslContext sctx = server_context();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        std::string server_saw;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                server_saw = w.tls_info().alpn_protocol;
                echo_lines(r, w);
            },
            "127.0.0.1", 0, serve_tls(sctx));
        auto agreed = [&](std::vector<std::string> offer) {
            af::SslContext c = client_context();
            c.set_alpn_protocols(offer);
            auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
            expect_echo(rw, "x\n");
            std::string got = rw.second.tls_info().alpn_protocol;
            EXPECT_EQ(got, server_saw);
            rw.second.close();
            rw.second.wait_closed();
            return got;
        };
        EXPECT_EQ(agreed({"http/1.1", "h2"}), "h2");
        EXPECT_EQ(agreed({"http/1.1"}), "http/1.1");
        EXPECT_EQ(agreed({"spdy/1"}), "");  // nothing in common: no ALPN, as Python
        EXPECT_EQ(agreed({}), "");
        close_and_wait(s);
    });
    af::SslContext c = af::SslContext::client();
    EXPECT_THROW(c.set_alpn_protocols({"h2", ""}), std::invalid_argument);
    EXPECT_THROW(c.set_alpn_protocols({std::string(256, 'a')}), std::invalid_argument);
}

TEST(Tls, ProtocolMismatchIsAnSslErrorNamingTheCause) {
    // The client wants TLS 1.3, the server stops at TLS 1.2.
    af::SslContext tls12 = server_context();
    SSL_CTX_set_max_proto_version(tls12.native().native_handle(), TLS1_2_VERSION);
    af::SslContext wants13 = client_context();
    SSL_CTX_set_min_proto_version(wants13.native().native_handle(), TLS1_3_VERSION);
    auto e = handshake_error<af::SslError>(tls12, tls_to(wants13, "localhost"));
    EXPECT_EQ(e.reason(), "tlsv1 alert protocol version") << e.what();
    // TLS 1.2 itself is fine with the default client.
    af::run([&] {
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(tls12));
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        EXPECT_EQ(rw.second.tls_info().version, "TLSv1.2");
        EXPECT_EQ(rw.second.tls_info().cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");
        expect_echo(rw, "x\n");
        rw.second.close();
        close_and_wait(s);
    });
    // A peer that does not speak TLS at all.
    af::run([] {
        af::Server http = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                w.write("HTTP/1.1 400 Bad Request\r\n\r\n");
                r.read(-1);
            },
            "127.0.0.1", 0);
        af::SslContext c = client_context();
        try {
            af::open_connection("127.0.0.1", http.port(), tls_to(c, "localhost"));
            ADD_FAILURE() << "no SslError";
        } catch (const af::SslCertVerificationError& e) {
            ADD_FAILURE() << e.what();
        } catch (const af::SslError& e) {
            EXPECT_EQ(e.reason(), "wrong version number") << e.what();
            EXPECT_NE(std::string(e.what()).find("TLS handshake with 127.0.0.1:"),
                      std::string::npos)
                << e.what();
        }
        close_and_wait(http);
    });
}

TEST(Tls, ServerHandshakeFailuresCloseTheConnectionAndAreReportedOnlyInDebugMode) {
    for (bool debug : {false, true}) {
        af::run([debug] {
            af::Loop::current().set_debug(debug);
            std::vector<std::string> reports;
            af::Loop::current().set_exception_handler([&](const af::ExceptionContext& c) {
                // (Debug mode also reports slow steps: loading OpenSSL's configuration is one.)
                if (c.message.find("TLS") == std::string::npos) return;
                std::string what = c.message;
                try {
                    std::rethrow_exception(c.exception);
                } catch (const af::SslError& e) {
                    what += ": " + e.reason();
                } catch (...) {
                }
                reports.push_back(what);
            });
            af::SslContext sctx = server_context();
            int handled = 0;
            af::Server s = af::start_server(
                [&](af::StreamReader r, af::StreamWriter w) {
                    ++handled;
                    echo_lines(r, w);
                },
                "127.0.0.1", 0, serve_tls(sctx));
            // A plain HTTP client at a TLS server.
            auto plain = af::open_connection("127.0.0.1", s.port());
            plain.second.write("GET / HTTP/1.0\r\n\r\n");
            try {
                EXPECT_EQ(plain.first.read(-1), "");  // closed without an answer
            } catch (const std::system_error& e) {    // with its request unread: a reset
                EXPECT_EQ(e.code().value(), ECONNRESET);
            }
            // The server goes on serving.
            af::SslContext c = client_context();
            auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
            expect_echo(rw, "fine\n");
            rw.second.close();
            close_and_wait(s);
            EXPECT_EQ(handled, 1);
            if (debug) {
                ASSERT_EQ(reports.size(), 1u);
                EXPECT_EQ(reports[0],
                          "TLS handshake of an accepted connection failed: http request");
            } else {
                EXPECT_TRUE(reports.empty());
            }
        });
    }
}

// ---- hostile and broken peers ----

namespace {

// A listening socket the test drives by hand (to reset, to stall).
struct RawListener {
    int fd = -1;
    unsigned short port = 0;
    RawListener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 16) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::system_error(errno, std::system_category(), "RawListener");
        port = ntohs(a.sin_port);
    }
    ~RawListener() { ::close(fd); }
    // Polls (the loop goes on) until a connection comes.
    int accept() {
        for (;;) {
            int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) return c;
            af::sleep(1ms);
        }
    }
};

// Polls until `n` bytes came (or EOF / an error).
std::string raw_read(int fd, std::size_t n) {
    std::string s;
    char buf[4096];
    while (s.size() < n) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
            s.append(buf, static_cast<std::size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            break;
        } else {
            af::sleep(1ms);
        }
    }
    return s;
}

void reset(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
}

// The first flight of a TLS 1.3 client: a ClientHello.
std::string client_hello() {
    SSL_CTX* ctx = tls_peer::make_ctx(false);
    tls_peer::MemoryTls peer(ctx, false);
    SSL_CTX_free(ctx);
    peer.handshake_step();
    return peer.take_output();
}

}  // namespace

TEST(Tls, ClientHandshakeTimeoutIsATimeoutErrorAndLeavesNothing) {
    af::run([] {
        const std::size_t fds = probes::open_fds();
        // A server that accepts and never answers.
        af::Server silent = af::start_server(
            [](af::StreamReader r, af::StreamWriter) { r.read(-1); }, "127.0.0.1", 0);
        af::SslContext c = client_context();
        af::ConnectOptions o = tls_to(c, "localhost");
        o.ssl_handshake_timeout = 200ms;
        auto t0 = af::Clock::now();
        try {
            af::open_connection("127.0.0.1", silent.port(), o);
            ADD_FAILURE() << "no TimeoutError";
        } catch (const af::TimeoutError& e) {
            EXPECT_NE(std::string(e.what()).find("did not complete within 200 ms"),
                      std::string::npos)
                << e.what();
        }
        EXPECT_GE(af::Clock::now() - t0, 200ms);
        EXPECT_LT(af::Clock::now() - t0, 5s);
        // An outer deadline that comes first is the outer scope's TimeoutError, and a cancel
        // is a CancelledError: each leaves nothing behind either.
        o.ssl_handshake_timeout = 10s;
        EXPECT_THROW(af::timeout(50ms, [&] { af::open_connection("127.0.0.1", silent.port(), o); }),
                     af::TimeoutError);
        auto t = af::async([&] { af::open_connection("127.0.0.1", silent.port(), o); });
        af::sleep(50ms);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        close_and_wait(silent);  // each handler saw its client go away
        EXPECT_EQ(probes::open_fds(), fds);
    });
}

TEST(Tls, SlowlorisHandshakeIsEndedByTheServerTimeout) {
    af::run([] {
        af::SslContext sctx = server_context();
        af::ServerOptions o = serve_tls(sctx);
        o.ssl_handshake_timeout = 300ms;
        int handled = 0;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                ++handled;
                echo_lines(r, w);
            },
            "127.0.0.1", 0, o);
        // A real ClientHello, one byte every 20 ms: it would take seconds.
        const std::string hello = client_hello();
        ASSERT_GT(hello.size(), 100u);
        auto slow = af::open_connection("127.0.0.1", s.port());
        auto t0 = af::Clock::now();
        auto dripper = af::async([&] {
            for (char ch : hello) {
                slow.second.write(&ch, 1);
                af::sleep(20ms);
            }
        });
        // Meanwhile a good client is served.
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        expect_echo(rw, "served\n");
        // The server closes the slow connection once its handshake timeout has passed.
        std::string got;
        try {
            got = slow.first.read(-1);
        } catch (const std::system_error&) {  // or resets it, if bytes were still coming
        }
        EXPECT_EQ(got, "");
        auto took = af::Clock::now() - t0;
        EXPECT_GE(took, 300ms);
        EXPECT_LT(took, 2s);
        EXPECT_FALSE(dripper.done());
        dripper.cancel();
        EXPECT_THROW(af::await(dripper), af::CancelledError);
        rw.second.close();
        close_and_wait(s);
        EXPECT_EQ(handled, 1);
    });
}

TEST(Tls, PeerResetOrCloseMidHandshake) {
    af::run([] {
        // Server side: a client sends half a ClientHello and resets; the server drops it and
        // goes on.
        af::SslContext sctx = server_context();
        int handled = 0;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                ++handled;
                echo_lines(r, w);
            },
            "127.0.0.1", 0, serve_tls(sctx));
        for (int i = 0; i < 20; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(s.port());
            ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            const std::string hello = client_hello();
            ASSERT_GT(::send(fd, hello.data(), hello.size() / 2, 0), 0);
            af::sleep(1ms);
            reset(fd);
        }
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        expect_echo(rw, "still\n");
        rw.second.close();

        // Client side: the server reads the ClientHello, then resets (a system error), or
        // closes (an SslError that says so).
        for (bool hard : {true, false}) {
            RawListener l;
            auto server = af::async([&] {
                int fd = l.accept();
                EXPECT_GT(raw_read(fd, 1).size(), 0u);
                if (hard)
                    reset(fd);
                else
                    ::close(fd);
            });
            try {
                af::open_connection("127.0.0.1", l.port, tls_to(c, "localhost"));
                ADD_FAILURE() << "the handshake succeeded";
            } catch (const af::SslError& e) {
                EXPECT_FALSE(hard) << e.what();
                EXPECT_EQ(e.reason(), "unexpected eof while reading");
                EXPECT_NE(std::string(e.what()).find("closed the connection during the handshake"),
                          std::string::npos)
                    << e.what();
            } catch (const std::system_error& e) {
                EXPECT_TRUE(hard) << e.what();
                EXPECT_EQ(e.code().value(), ECONNRESET);
            }
            af::await(server);
        }
        close_and_wait(s);
        EXPECT_EQ(handled, 1);
    });
}

namespace {

// A TLS server driven by the test (tls_peer::MemoryTls) behind a plain listening socket; the
// client under test connects to it with TLS.
struct PeerServer {
    SSL_CTX* ctx = tls_peer::make_ctx(true, pki().server.cert_pem, pki().server.key_pem);
    af::Server server;
    ~PeerServer() { SSL_CTX_free(ctx); }
    // Runs `script(peer, r, w)` after the handshake, for each connection.
    template <class Script>
    void start(Script script) {
        SSL_CTX* c = ctx;
        server = af::start_server(
            [c, script](af::StreamReader r, af::StreamWriter w) {
                tls_peer::MemoryTls peer(c, true);
                tls_peer::handshake_over(peer, r, w);
                script(peer, r, w);
            },
            "127.0.0.1", 0);
    }
};

}  // namespace

TEST(Tls, PeerClosingMidRecordIsAnErrorAtARecordBoundaryAnEof) {
    af::run([] {
        af::SslContext c = client_context();
        for (int mode = 0; mode < 3; ++mode) {  // close_notify, plain close, cut record
            PeerServer p;
            p.start([mode](tls_peer::MemoryTls& peer, af::StreamReader, af::StreamWriter w) {
                std::string records = peer.encrypt("hello\n");
                records += peer.encrypt("world\n");
                if (mode == 0) records += peer.close_notify();
                if (mode == 2) records.resize(records.size() - 5);  // the last record cut short
                w.write(records);
                w.drain();
                w.close();
            });
            auto rw = af::open_connection("127.0.0.1", p.server.port(), tls_to(c, "localhost"));
            EXPECT_EQ(rw.first.readline(), "hello\n");
            if (mode < 2) {
                EXPECT_EQ(rw.first.readline(), "world\n");
                EXPECT_EQ(rw.first.readline(), "");
                EXPECT_TRUE(rw.first.at_eof());
            } else {
                try {
                    rw.first.readline();
                    ADD_FAILURE() << "a cut record read as data or EOF";
                } catch (const af::SslError& e) {
                    EXPECT_EQ(e.reason(), "unexpected eof while reading");
                    EXPECT_NE(std::string(e.what()).find("in the middle of a TLS record"),
                              std::string::npos)
                        << e.what();
                }
            }
            rw.second.close();
            rw.second.wait_closed();
            close_and_wait(p.server);
        }
    });
}

TEST(Tls, PeersCloseNotifyIsEofAndWeMayStillWrite) {
    // TLS lets a peer close its sending side only (close_notify) and keep reading.
    af::run([] {
        std::string reply;
        bool our_close_notify = false;
        PeerServer p;
        p.start([&](tls_peer::MemoryTls& peer, af::StreamReader r, af::StreamWriter w) {
            std::string records = peer.encrypt("question\n");
            records += peer.close_notify();
            w.write(records);
            w.drain();
            while (!our_close_notify) {
                std::string in = r.read(65536);
                if (in.empty()) break;
                peer.feed(in);
                reply += peer.decrypt(&our_close_notify);
            }
        });
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", p.server.port(), tls_to(c, "localhost"));
        EXPECT_EQ(rw.first.readline(), "question\n");
        EXPECT_EQ(rw.first.read(-1), "");
        EXPECT_TRUE(rw.first.at_eof());
        rw.second.write("answer\n");
        rw.second.drain();
        rw.second.close();  // our close_notify; the peer's came already
        rw.second.wait_closed();
        close_and_wait(p.server);
        EXPECT_EQ(reply, "answer\n");
        EXPECT_TRUE(our_close_notify);
    });
}

TEST(Tls, CloseSendsEverythingThenCloseNotifyAndWaitsForThePeers) {
    af::run([] {
        const std::string big(300000, 'b');
        std::string got;
        bool close_notify = false;
        af::Event answer;
        PeerServer p;
        p.start([&](tls_peer::MemoryTls& peer, af::StreamReader r, af::StreamWriter w) {
            while (!close_notify) {
                std::string in = r.read(65536);
                if (in.empty()) break;
                peer.feed(in);
                got += peer.decrypt(&close_notify);
            }
            answer.wait();
            w.write(peer.close_notify());
            w.drain();
        });
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", p.server.port(), tls_to(c, "localhost"));
        rw.second.write(big);
        rw.second.close();
        EXPECT_TRUE(rw.second.is_closing());
        EXPECT_THROW(rw.second.write("late"), af::RuntimeError);
        EXPECT_EQ(rw.first.read(-1), "");  // reading ends with close()
        // wait_closed() waits for the peer's close_notify.
        auto waiting = af::async([&] { rw.second.wait_closed(); });
        af::sleep(50ms);
        EXPECT_FALSE(waiting.done());
        EXPECT_TRUE(close_notify);
        EXPECT_EQ(got.size(), big.size());
        EXPECT_TRUE(got == big);
        answer.set();
        af::await(waiting);
        close_and_wait(p.server);
    });
}

TEST(Tls, ShutdownTimeoutEndsACloseThePeerNeverAnswers) {
    af::run([] {
        af::Event release;
        PeerServer p;
        p.start([&](tls_peer::MemoryTls&, af::StreamReader r, af::StreamWriter) {
            release.wait();  // reads nothing, answers nothing, keeps the socket open
            r.read(-1);
        });
        af::SslContext c = client_context();
        af::ConnectOptions o = tls_to(c, "localhost");
        o.ssl_shutdown_timeout = 200ms;
        auto rw = af::open_connection("127.0.0.1", p.server.port(), o);
        auto t0 = af::Clock::now();
        rw.second.close();
        rw.second.wait_closed();
        EXPECT_GE(af::Clock::now() - t0, 200ms);
        EXPECT_LT(af::Clock::now() - t0, 5s);
        release.set();
        close_and_wait(p.server);
    });
}

TEST(Tls, WriteEofIsRefusedOverTls) {
    af::run([] {
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(sctx));
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        EXPECT_FALSE(rw.second.can_write_eof());
        EXPECT_THROW(rw.second.write_eof(), af::RuntimeError);
        expect_echo(rw, "still open\n");
        rw.second.close();
        close_and_wait(s);
    });
}

// ---- start_tls ----

TEST(Tls, StartTlsUpgradesBothEndsInPlace) {
    af::run([] {
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                EXPECT_EQ(r.readline(), "STARTTLS\n");
                w.write("GO\n");    // in the clear, before the upgrade
                w.start_tls(sctx);  // as the server: this end was accepted
                EXPECT_EQ(w.tls_info().version, "TLSv1.3");
                echo_lines(r, w);
            },
            "127.0.0.1", 0);
        af::SslContext c = client_context();
        auto rw = af::open_connection("localhost", s.port());
        rw.second.write("STARTTLS\n");
        EXPECT_EQ(rw.first.readline(), "GO\n");
        EXPECT_EQ(rw.second.tls_info().version, "");
        EXPECT_THROW(rw.second.start_tls(sctx), std::invalid_argument);  // a server context
        rw.second.start_tls(c);  // no server_hostname: "localhost", the host connected to
        EXPECT_EQ(rw.second.tls_info().peer_certificate_pem, pki().server.cert_pem);
        expect_echo(rw, "secret\n");
        EXPECT_THROW(rw.second.start_tls(c), af::RuntimeError);  // already TLS
        rw.second.close();
        rw.second.wait_closed();
        EXPECT_THROW(rw.second.start_tls(c), af::RuntimeError);  // closed
        close_and_wait(s);
    });
}

TEST(Tls, StartTlsAfterACancelledReadDoesNotLoseTheHandshake) {
    // A read cancelled before the upgrade leaves a plain read pending; the peer's first TLS
    // bytes must not land in it as plaintext.
    af::run([] {
        af::SslContext sctx = server_context();
        af::Event client_ready;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                EXPECT_EQ(r.readline(), "STARTTLS\n");
                client_ready.wait();
                w.start_tls(sctx);
                echo_lines(r, w);
            },
            "127.0.0.1", 0);
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port());
        rw.second.write("STARTTLS\n");
        EXPECT_THROW(af::timeout(20ms, [&] { rw.first.readline(); }), af::TimeoutError);
        client_ready.set();
        rw.second.start_tls(c, "localhost");
        expect_echo(rw, "after\n");
        rw.second.close();
        close_and_wait(s);
    });
}

TEST(Tls, WritesAndReadsDuringAStartTlsHandshakeWaitForIt) {
    af::run([] {
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                w.start_tls(sctx);
                echo_lines(r, w);
            },
            "127.0.0.1", 0);
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port());
        // Another task writes and reads while this one upgrades the connection (it starts
        // once start_tls waits for the handshake).
        auto other = af::async([&] {
            rw.second.write("during\n");
            return rw.first.readline();
        });
        rw.second.start_tls(c, "localhost");
        EXPECT_EQ(af::await(other), "during\n");
        rw.second.close();
        close_and_wait(s);
    });
}

TEST(Tls, StartTlsCancelledWhileFlushingKeepsThePlainStreamCancelledInTheHandshakeClosesIt) {
    af::run([] {
        const std::size_t fds = probes::open_fds();
        af::SslContext sctx = server_context();
        af::Event read_now;
        std::size_t received = 0;
        std::string server_saw;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                read_now.wait();
                received = r.readexactly(4 << 20).size();
                w.write("plain still\n");
                try {
                    w.start_tls(sctx);
                } catch (const af::SslError& e) {  // the client gave up during the handshake
                    server_saw = e.reason();
                }
            },
            "127.0.0.1", 0);
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port());
        // The peer reads nothing yet: start_tls waits for the queued plaintext to go out, and
        // a deadline there changes nothing: the stream is still plain, the bytes still queued.
        rw.second.write(std::string(4 << 20, 'p'));
        EXPECT_THROW(af::timeout(50ms, [&] { rw.second.start_tls(c, "localhost"); }),
                     af::TimeoutError);
        EXPECT_EQ(rw.second.tls_info().version, "");
        EXPECT_FALSE(rw.second.is_closing());
        EXPECT_GT(rw.second.write_buffer_size(), 0u);
        read_now.set();
        EXPECT_EQ(rw.first.readline(), "plain still\n");
        EXPECT_EQ(received, 4u << 20);
        // Cancelled in the handshake: the connection is closed, as asyncio's start_tls does.
        auto t = af::async([&] { rw.second.start_tls(c, "localhost"); });
        af::sleep(0s);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(rw.second.is_closing());
        rw.second.wait_closed();
        close_and_wait(s);
        EXPECT_EQ(server_saw, "unexpected eof while reading");
        EXPECT_EQ(probes::open_fds(), fds);
    });
}

// ---- every stream feature over TLS ----

namespace {

struct TlsLink {
    af::SslContext server_ctx = server_context();
    af::SslContext client_ctx = client_context();
    af::Server server;
    af::StreamReader r;
    af::StreamWriter w;
};

std::unique_ptr<TlsLink> tls_link(af::ConnectionHandler h) {
    std::unique_ptr<TlsLink> l(new TlsLink);
    l->server = af::start_server(std::move(h), "127.0.0.1", 0, serve_tls(l->server_ctx));
    auto rw =
        af::open_connection("127.0.0.1", l->server.port(), tls_to(l->client_ctx, "localhost"));
    l->r = rw.first;
    l->w = rw.second;
    return l;
}

// The client's side first: a close_notify is answered by the side that reads, and the
// server's wait_closed() waits for it (up to ssl_shutdown_timeout, 30 s) on a client that
// never reads again.
void close_link(TlsLink& l) {
    l.w.close();
    l.w.wait_closed();
    close_and_wait(l.server);
}

}  // namespace

TEST(Tls, PartialReadsReadExactlyAndIncompleteReads) {
    af::run([] {
        af::Event go;
        auto l = tls_link([&go](af::StreamReader, af::StreamWriter w) {
            w.write("hel");
            w.drain();
            go.wait();
            w.write("lo world");
        });
        EXPECT_EQ(l->r.read(100), "hel");
        go.set();
        EXPECT_EQ(l->r.readexactly(5), "lo wo");
        try {
            l->r.readexactly(10);
            ADD_FAILURE() << "no IncompleteReadError";
        } catch (const af::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), "rld");
            EXPECT_EQ(e.expected(), 10u);
        }
        EXPECT_TRUE(l->r.at_eof());
        EXPECT_EQ(l->r.read(10), "");
        close_link(*l);
    });
}

TEST(Tls, ReaduntilReadlineAndLimits) {
    af::run([] {
        auto l = tls_link([](af::StreamReader, af::StreamWriter w) {
            w.write("a--b--" + std::string(200, 'x') + "--" + std::string(300, 'y') +
                    "\nnext\ntail");
        });
        l->r.set_limit(100);
        EXPECT_EQ(l->r.readuntil("--"), "a--");
        EXPECT_EQ(l->r.readuntil("--"), "b--");
        EXPECT_THROW(l->r.readuntil("--"), af::LimitOverrunError);
        l->r.set_limit(1000);  // the data stayed buffered
        EXPECT_EQ(l->r.readuntil("--"), std::string(200, 'x') + "--");
        l->r.set_limit(64);
        EXPECT_THROW(l->r.readline(), af::LimitOverrunError);  // the line is dropped
        EXPECT_EQ(l->r.readline(), "next\n");
        try {
            l->r.readuntil("\n");
            ADD_FAILURE() << "no IncompleteReadError";
        } catch (const af::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), "tail");
        }
        close_link(*l);
    });
}

TEST(Tls, EveryReadIsCancellableAndKeepsWhatCame) {
    af::run([] {
        af::Event more;
        auto l = tls_link([&](af::StreamReader, af::StreamWriter w) {
            w.write("01234");
            w.drain();
            more.wait();
            w.write("56789\n");
            w.drain();
            more.clear();
            more.wait();
        });
        auto expect_timeout = [&](const char* what, std::function<void()> op) {
            try {
                af::timeout(20ms, op);
                ADD_FAILURE() << what << " returned";
            } catch (const af::TimeoutError&) {
            }
        };
        expect_timeout("readexactly", [&] { l->r.readexactly(10); });
        EXPECT_EQ(l->r.buffered(), 5u);  // what came before the deadline stays
        expect_timeout("readline", [&] { l->r.readline(); });
        expect_timeout("readuntil", [&] { l->r.readuntil("9"); });
        more.set();
        EXPECT_EQ(l->r.readexactly(11), "0123456789\n");
        expect_timeout("read", [&] { l->r.read(5); });
        // Another task waiting on the same stream is refused, not corrupted.
        auto waiter = af::async([&] { return l->r.read(1); });
        af::sleep(5ms);
        EXPECT_THROW(l->r.read(1), af::RuntimeError);
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        more.set();
        EXPECT_EQ(l->r.read(-1), "");
        close_link(*l);
    });
}

TEST(Tls, LargeTransferWithBackPressureBothWays) {
    af::run([] {
        // 8 MiB of a pattern no two records share.
        std::string data(8 << 20, '\0');
        std::mt19937 rng(7);
        for (auto& ch : data) ch = static_cast<char>(rng());
        af::Event start_reading;
        std::string received;
        auto l = tls_link([&](af::StreamReader r, af::StreamWriter w) {
            start_reading.wait();
            // Echoes in 64 KiB pieces while the client is still sending: both directions
            // are full at once, and each side's drain() waits for the other to read.
            while (received.size() < data.size()) {
                std::string chunk = r.read(64 * 1024);
                if (chunk.empty()) break;
                received += chunk;
                w.write(chunk);
                w.drain();
            }
            w.close();
        });
        l->w.set_write_buffer_limits(64 * 1024);
        const std::size_t block = 256 * 1024;
        // The peer does not read yet: the kernel buffers fill, then ours, then drain() waits.
        std::size_t sent = 0;
        try {
            af::timeout(100ms, [&] {
                for (;;) {
                    l->w.write(data.data() + sent, block);
                    sent += block;
                    l->w.drain();
                }
            });
        } catch (const af::TimeoutError&) {
        }
        EXPECT_GT(l->w.write_buffer_size(), 64u * 1024);
        EXPECT_LT(sent, data.size());
        start_reading.set();
        std::string echoed;
        auto reader = af::async([&] {
            for (;;) {
                std::string chunk = l->r.read(100000);
                if (chunk.empty()) break;
                echoed += chunk;
            }
        });
        while (sent < data.size()) {
            l->w.write(data.data() + sent, block);
            sent += block;
            l->w.drain();
            EXPECT_LE(l->w.write_buffer_size(), 64u * 1024 + block);
        }
        af::await(reader);  // until the server's close_notify
        EXPECT_EQ(received.size(), data.size());
        EXPECT_TRUE(received == data);
        EXPECT_EQ(echoed.size(), data.size());
        EXPECT_TRUE(echoed == data);
        l->w.close();
        l->w.wait_closed();
        close_and_wait(l->server);
    });
}

TEST(Tls, CancellationStormLosesNoByte) {
    // Servers stream a numbered byte sequence in random pieces at random moments; clients
    // read it with readexactly / readuntil / readline / read under random tiny deadlines and
    // random cancellations, and must see every byte exactly once, in order. Some clients are
    // cancelled during their handshake instead, and leave nothing behind.
    af::run([] {
        const std::size_t fds = probes::open_fds();
        const std::size_t total = 200000;
        auto byte_at = [](std::size_t i) {
            return static_cast<char>(i % 10 == 9 ? '\n' : 'a' + i % 7);
        };
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                std::mt19937 rng(static_cast<unsigned>(r.readline().size() * 7919 + 13));
                for (std::size_t i = 0; i < total;) {
                    std::size_t n = std::min<std::size_t>(1 + rng() % 3000, total - i);
                    std::string piece(n, '\0');
                    for (std::size_t k = 0; k < n; ++k) piece[k] = byte_at(i + k);
                    w.write(piece);
                    i += n;
                    if (rng() % 3 == 0) w.drain();
                    if (rng() % 5 == 0) af::sleep(std::chrono::microseconds(rng() % 500));
                }
                w.drain();
                r.read(-1);  // until the client closes
            },
            "127.0.0.1", 0, serve_tls(sctx));
        af::SslContext c = client_context();
        int interrupted = 0, handshakes_cancelled = 0;
        std::vector<af::Task<void>> clients;
        for (int id = 0; id < 12; ++id) {
            clients.push_back(af::async([&, id] {
                std::mt19937 rng(static_cast<unsigned>(id));
                auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
                rw.second.write(std::string(static_cast<std::size_t>(id), 'x') + "\n");
                std::string got;
                while (got.size() < total) {
                    try {
                        af::timeout(std::chrono::microseconds(rng() % 2000), [&] {
                            switch (rng() % 4) {
                            case 0:
                                got += rw.first.readexactly(
                                    std::min<std::size_t>(1 + rng() % 5000, total - got.size()));
                                break;
                            case 1:
                                got += rw.first.readuntil("\n");
                                break;
                            case 2:
                                got += rw.first.readline();
                                break;
                            default:
                                got += rw.first.read(static_cast<std::ptrdiff_t>(1 + rng() % 9000));
                                break;
                            }
                        });
                    } catch (const af::TimeoutError&) {
                        ++interrupted;
                    }
                }
                EXPECT_EQ(got.size(), total) << "client " << id;
                bool same = true;
                for (std::size_t i = 0; i < got.size() && same; ++i) same = got[i] == byte_at(i);
                EXPECT_TRUE(same) << "client " << id << ": a byte was lost, doubled or moved";
                rw.second.close();
                rw.second.wait_closed();
            }));
        }
        // Handshakes cancelled at random points.
        for (int k = 0; k < 20; ++k) {
            auto t = af::async(
                [&] { af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost")); });
            af::sleep(std::chrono::microseconds(k * 150));
            if (t.cancel()) ++handshakes_cancelled;
            try {
                af::await(t);
            } catch (const af::CancelledError&) {
            }
        }
        af::gather(clients);
        EXPECT_GT(interrupted, 50);
        EXPECT_GT(handshakes_cancelled, 5);
        s.close();
        // Connections whose client was cancelled mid-handshake, on the server's side, end by
        // their handshake failing or by the client's EOF.
        s.wait_closed();
        EXPECT_EQ(probes::open_fds(), fds);
    });
}

TEST(Tls, ThousandConnections) {
    af::run([] {
        const std::size_t fds = probes::open_fds();
        af::SslContext sctx = server_context();
        af::ServerOptions so = serve_tls(sctx);
        so.backlog = 1024;
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, so);
        af::SslContext c = client_context();
        int ok = 0;
        std::vector<af::Task<void>> clients;
        for (int i = 0; i < 1000; ++i) {
            clients.push_back(af::async([&, i] {
                auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
                const std::string line = "client " + std::to_string(i) + "\n";
                rw.second.write(line);
                if (rw.first.readline() == line) ++ok;
                rw.second.close();
                rw.second.wait_closed();
            }));
        }
        af::gather(clients);
        EXPECT_EQ(ok, 1000);
        close_and_wait(s);
        EXPECT_EQ(probes::open_fds(), fds);
    });
}

// ---- contexts, options, lifetimes ----

TEST(Tls, ContextMisuseIsAClearError) {
    af::SslContext c = af::SslContext::client();
    EXPECT_THROW(c.use_certificate_chain("not a certificate"), af::SslError);
    try {
        c.add_certificate_authority(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        ADD_FAILURE() << "a broken certificate was accepted";
    } catch (const af::SslError& e) {
        EXPECT_FALSE(e.reason().empty());
        EXPECT_NE(std::string(e.what()).find("SslContext::add_certificate_authority"),
                  std::string::npos);
    }
    try {
        c.load_verify_file("/nonexistent/ca.pem");
        ADD_FAILURE() << "a missing file was accepted";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/ca.pem"), std::string::npos);
    }
    EXPECT_THROW(c.use_private_key_file("/nonexistent/key.pem"), std::system_error);
    // A key that is not the certificate's, in either order.
    af::SslContext s = af::SslContext::server();
    s.use_certificate_chain(pki().server.cert_pem);
    try {
        s.use_private_key(pki().client.key_pem);
        ADD_FAILURE() << "a mismatched key was accepted";
    } catch (const af::SslError& e) {
        EXPECT_EQ(e.reason(), "key values mismatch");
    }
    af::SslContext s2 = af::SslContext::server();
    s2.use_private_key(pki().client.key_pem);
    EXPECT_THROW(s2.use_certificate_chain(pki().server.cert_pem), af::SslError);
    af::SslContext empty;
    EXPECT_FALSE(empty);
    EXPECT_THROW(empty.set_verify_peer(true), af::InvalidStateError);

    af::run([] {
        af::SslContext client = client_context();
        af::SslContext server = server_context();
        af::SslContext no_cert = af::SslContext::server();
        // The wrong side's context, a server context without a certificate, bad timeouts.
        EXPECT_THROW(af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(client)),
                     std::invalid_argument);
        EXPECT_THROW(af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(no_cert)),
                     std::invalid_argument);
        af::ServerOptions bad = serve_tls(server);
        bad.ssl_handshake_timeout = 0s;
        EXPECT_THROW(af::start_server(echo_lines, "127.0.0.1", 0, bad), std::invalid_argument);
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(server));
        EXPECT_THROW(af::open_connection("127.0.0.1", s.port(), tls_to(server)),
                     std::invalid_argument);
        af::ConnectOptions o = tls_to(client, "localhost");
        o.ssl_shutdown_timeout = -1s;
        EXPECT_THROW(af::open_connection("127.0.0.1", s.port(), o), std::invalid_argument);
        // A Unix connection has no host name to check: it must be named.
        EXPECT_THROW(af::open_unix_connection("/tmp/none.sock", tls_to(client)),
                     std::invalid_argument);
        close_and_wait(s);
    });
}

TEST(Tls, ContextIsASharedHandleThatConnectionsKeepAlive) {
    af::run([] {
        af::Server s;
        af::StreamReader r;
        af::StreamWriter w;
        {
            af::SslContext sctx = server_context();
            af::SslContext copy = sctx;
            copy.set_alpn_protocols({"x-proto"});  // seen through the other handle too
            s = af::start_server(echo_lines, "127.0.0.1", 0, serve_tls(sctx));
            af::SslContext c = client_context();
            af::SslContext c2 = c;
            c2.set_alpn_protocols({"x-proto"});
            std::tie(r, w) = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        }  // every handle of both contexts is gone
        EXPECT_EQ(w.tls_info().alpn_protocol, "x-proto");
        w.write("alive\n");
        EXPECT_EQ(r.readline(), "alive\n");
        // New connections to the server still use its context.
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        expect_echo(rw, "again\n");
        rw.second.close();
        w.close();
        close_and_wait(s);
    });
}

TEST(Tls, UnixSocketsWithTls) {
    af::run([] {
        const std::string path = "/tmp/asyncfiber-tls-test-" + std::to_string(::getpid()) + ".sock";
        af::SslContext sctx = server_context();
        af::Server s = af::start_unix_server(echo_lines, path, serve_tls(sctx));
        af::SslContext c = client_context();
        auto rw = af::open_unix_connection(path, tls_to(c, "localhost"));
        expect_echo(rw, "over unix\n");
        EXPECT_EQ(rw.second.tls_info().version, "TLSv1.3");
        rw.second.close();
        rw.second.wait_closed();
        close_and_wait(s);
    });
}

TEST(Tls, LoopEndWithTlsStreamsOpenLeavesNothing) {
    const std::size_t fds = probes::open_fds();
    af::StreamWriter kept;
    af::run([&] {
        af::SslContext sctx = server_context();
        af::Server s = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                w.write("hi\n");
                r.read(-1);
            },
            "127.0.0.1", 0, serve_tls(sctx));
        af::SslContext c = client_context();
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        EXPECT_EQ(rw.first.readline(), "hi\n");
        // A cancelled read leaves a TLS read pending; a write is in flight; a handshake is
        // under way; a close waits for close_notify: the loop's end closes all of it.
        EXPECT_THROW(af::timeout(5ms, [&] { rw.first.readline(); }), af::TimeoutError);
        rw.second.write(std::string(1 << 20, 'w'));
        auto rw2 = af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost"));
        rw2.second.close();
        af::async([&] { af::open_connection("127.0.0.1", s.port(), tls_to(c, "localhost")); });
        af::sleep(0s);
        kept = rw.second;  // outlives the loop
    });
    EXPECT_TRUE(kept.is_closing());
    EXPECT_EQ(kept.tls_info().version, "TLSv1.3");
    kept = af::StreamWriter();
    EXPECT_EQ(probes::open_fds(), fds);
}

#ifdef ASYNCFIBER_HTTPS_GET
TEST(Tls, HttpsGetExampleVerifiesTheServerAndFetches) {
    // The test CA as a file, for the example's "trust these CAs too" argument.
    char path[] = "/tmp/asyncfiber-ca-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string& ca = pki().ca.cert_pem;
    ASSERT_EQ(::write(fd, ca.data(), ca.size()), static_cast<ssize_t>(ca.size()));
    ::close(fd);
    af::run([&] {
        af::SslContext sctx = server_context();
        sctx.set_alpn_protocols({"http/1.1"});
        af::Server s = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                std::string request = r.readline();
                while (r.readline() != "\r\n") {
                }
                w.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nyou asked for " + request);
                w.close();
            },
            "127.0.0.1", 0, serve_tls(sctx));
        const std::string url = "https://localhost:" + std::to_string(s.port()) + "/some/path";
        af::ProcessOptions po;
        po.stdout_mode = af::Stdio::pipe;
        po.stderr_mode = af::Stdio::pipe;
        // Trusting the test CA: verified, fetched.
        af::Process ok = af::create_subprocess_exec({ASYNCFIBER_HTTPS_GET, url, path}, po);
        auto out = ok.communicate();
        EXPECT_EQ(ok.returncode(), 0) << out.second;
        EXPECT_EQ(out.first,
                  "TLSv1.3 TLS_AES_256_GCM_SHA384 alpn=http/1.1\nHTTP/1.1 200 OK\r\n"
                  "you asked for GET /some/path HTTP/1.1\r\n");
        // With the system's CAs only: refused, and it says why.
        af::Process refused = af::create_subprocess_exec({ASYNCFIBER_HTTPS_GET, url}, po);
        auto err = refused.communicate();
        EXPECT_EQ(refused.returncode(), 1);
        EXPECT_EQ(err.first, "");
        EXPECT_NE(err.second.find("did not verify: unable to get local issuer certificate"),
                  std::string::npos)
            << err.second;
        close_and_wait(s);
    });
    ::unlink(path);
}
#endif

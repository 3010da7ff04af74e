// TLS streams: contexts and their secure defaults, verification failures and what they say,
// mutual TLS, ALPN, start_tls, close_notify, every stream feature over TLS (lines, limits,
// back-pressure, cancellation, timeouts), hostile peers (silent, slow, resetting, cutting
// records), and many connections. Certificates are made at run time (support/tls_certs.hpp).
#include <asyncfiber/asyncfiber.hpp>

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

void echo_lines(af::StreamReader r, af::StreamWriter w) {
    for (;;) {
        std::string line = r.readline();
        if (line.empty()) break;
        w.write(line);
        w.drain();
    }
    w.close();
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
            s.close();
            s.wait_closed();
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
        s.close();
        s.wait_closed();
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
        s.close();
        s.wait_closed();
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
    auto e = handshake_error<af::SslCertVerificationError>(server_context(), tls_to(client, "localhost"));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    EXPECT_EQ(e.reason(), "certificate verify failed");
    EXPECT_EQ(e.verify_message(), "unable to get local issuer certificate");
    EXPECT_NE(std::string(e.what()).find("certificate verify failed: unable to get local issuer certificate"),
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
        auto rw = af::open_connection("127.0.0.1", s.port(), tls_to(client, "not-the-name.example"));
        rw.second.write("ok\n");
        EXPECT_EQ(rw.first.readline(), "ok\n");
        rw.second.close();
        s.close();
        s.wait_closed();
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
        rw.second.write("x\n");
        EXPECT_EQ(rw.first.readline(), "x\n");
        rw.second.close();
        s.close();
        s.wait_closed();
    });
}

// A TLS peer that the test drives byte by byte: an OpenSSL SSL object over memory BIOs whose
// records travel over a plain asyncfiber stream. Tests and the TLS fuzz target use it to do
// what a well-behaved TLS stack never does on its own: cut records, stop mid-handshake, close
// without close_notify, half-close, corrupt bytes.
#pragma once

#include <asyncfiber/asyncfiber.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>
#include <string>

namespace tls_peer {

/// An SSL_CTX for a peer: a server with `cert_pem` / `key_pem`, or a client that trusts
/// nothing and checks nothing (the peer is the test's, not the code under test).
inline SSL_CTX* make_ctx(bool server, const std::string& cert_pem = {},
                         const std::string& key_pem = {}) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) throw std::runtime_error("SSL_CTX_new");
    if (server) {
        BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
        X509* x = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
        BIO_free(cb);
        BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
        EVP_PKEY* k = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
        BIO_free(kb);
        bool ok =
            x && k && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, k) == 1;
        X509_free(x);
        EVP_PKEY_free(k);
        if (!ok) throw std::runtime_error("tls_peer: certificate or key");
    }
    return ctx;
}

class MemoryTls {
public:
    /// Takes a reference to `ctx`.
    MemoryTls(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
        if (!ssl_) throw std::runtime_error("SSL_new");
        in_ = BIO_new(BIO_s_mem());
        out_ = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(in_, -1);  // "no data yet", not EOF
        SSL_set_bio(ssl_, in_, out_);
        if (server)
            SSL_set_accept_state(ssl_);
        else
            SSL_set_connect_state(ssl_);
    }
    ~MemoryTls() { SSL_free(ssl_); }
    MemoryTls(const MemoryTls&) = delete;
    MemoryTls& operator=(const MemoryTls&) = delete;

    SSL* ssl() const { return ssl_; }

    /// Bytes that came from the network.
    void feed(const std::string& bytes) {
        if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
    }
    /// Bytes OpenSSL wants sent.
    std::string take_output() {
        std::string s;
        char buf[16384];
        int n;
        while ((n = BIO_read(out_, buf, sizeof buf)) > 0)
            s.append(buf, static_cast<std::size_t>(n));
        return s;
    }
    /// One handshake step: true once it is done; throws on failure.
    bool handshake_step() {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl_);
        if (r == 1) return true;
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
        const char* why = ERR_reason_error_string(ERR_get_error());
        throw std::runtime_error(std::string("tls_peer: handshake failed: ") + (why ? why : "?"));
    }
    /// The records for `plain` (one per 16 KiB).
    std::string encrypt(const std::string& plain) {
        if (!plain.empty() && SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) <= 0)
            throw std::runtime_error(std::string("tls_peer: SSL_write failed: ") +
                                     ERR_error_string(ERR_get_error(), nullptr) + " state " +
                                     SSL_state_string_long(ssl_));
        return take_output();
    }
    /// Decrypts what was fed; sets `closed` when the peer's close_notify came.
    std::string decrypt(bool* closed = nullptr) {
        std::string s;
        char buf[16384];
        for (;;) {
            int n = SSL_read(ssl_, buf, sizeof buf);
            if (n > 0) {
                s.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (closed) *closed = SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
            return s;
        }
    }
    /// Our close_notify record (the sending side only: reading may go on).
    std::string close_notify() {
        SSL_shutdown(ssl_);
        return take_output();
    }

private:
    SSL* ssl_;
    BIO* in_;
    BIO* out_;
};

/// Runs the handshake of `tls` over a plain stream: reads what the other end sends, writes
/// what OpenSSL answers, until done (bytes read beyond the handshake stay in `tls`).
inline void handshake_over(MemoryTls& tls, asyncfiber::StreamReader& r,
                           asyncfiber::StreamWriter& w) {
    for (;;) {
        bool done = tls.handshake_step();
        std::string out = tls.take_output();
        if (!out.empty()) {
            w.write(out);
            w.drain();
        }
        if (done) return;
        std::string in = r.read(65536);
        if (in.empty()) throw std::runtime_error("tls_peer: EOF during the handshake");
        tls.feed(in);
    }
}

}  // namespace tls_peer

// The TLS layer of a stream: per-connection setup (SNI, host-name check) and what the
// handshake negotiated.
#include "tls_channel.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstring>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace asyncfiber {
namespace detail {

namespace {

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};

}  // namespace

TlsChannel::TlsChannel(std::shared_ptr<SslContextState> context, Socket&& socket, bool client,
                       const std::string& host)
    : context_(std::move(context)), stream_(std::move(socket), context_->native), client_(client) {
    if (!client_ || host.empty()) return;
    SSL* s = ssl();
    // "[::1]" is how open_connection accepts an IPv6 literal; certificates name it bare.
    std::string name = host;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']')
        name = name.substr(1, name.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(name, ec);
    const bool ip_literal = !ec;
    // SNI names hosts only (RFC 6066 forbids IP literals there).
    if (!ip_literal && !SSL_set_tlsext_host_name(s, name.c_str()))
        throw SslError("asyncfiber: cannot send '" + name + "' as the TLS server name", "SNI");
    if (context_->check_hostname) {
        X509_VERIFY_PARAM* param = SSL_get0_param(s);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                            : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
        if (ok != 1)
            throw SslError("asyncfiber: cannot check the TLS server name '" + name + "'",
                           "host name check");
    }
}

bool TlsChannel::inside_record() noexcept {
    SSL* s = ssl();
    // Unprocessed bytes in OpenSSL's record buffer or in its input BIO, or a header read
    // whose body has not come.
    return SSL_has_pending(s) == 1 || BIO_ctrl_pending(SSL_get_rbio(s)) > 0 ||
           std::strcmp(SSL_rstate_string(s), "RB") == 0;
}

TlsInfo TlsChannel::info() {
    TlsInfo i;
    SSL* s = ssl();
    i.version = SSL_get_version(s);
    if (const char* c = SSL_get_cipher_name(s)) i.cipher = c;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(s, &alpn, &alpn_len);
    if (alpn) i.alpn_protocol.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    std::unique_ptr<X509, X509Free> peer(SSL_get1_peer_certificate(s));
    if (peer) {
        std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
        if (!bio || !PEM_write_bio_X509(bio.get(), peer.get())) throw std::bad_alloc();
        char* p = nullptr;
        long n = BIO_get_mem_data(bio.get(), &p);
        i.peer_certificate_pem.assign(p, static_cast<std::size_t>(n));
    }
    return i;
}

void TlsChannel::cancel() noexcept {
    boost::system::error_code ec;
    stream_.next_layer().cancel(ec);
}

void TlsChannel::close() noexcept {
    boost::system::error_code ec;
    stream_.next_layer().close(ec);
}

}  // namespace detail
}  // namespace asyncfiber

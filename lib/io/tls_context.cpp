// af::SslContext: Boost.Asio's ssl::context with Python's secure defaults, shared by handles.
#include "tls_context.hpp"

#include "runtime/state_share.hpp"

#include <boost/asio/buffer.hpp>

#include <cerrno>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

namespace asyncfiber {
namespace detail {

namespace {

// Python's default cipher list for TLS 1.2 (TLS 1.3 has its own, all AEAD): forward secrecy
// and AEAD first, no NULL, DSS, SHA-1 MACs or CCM.
const char kCipherList[] =
    "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM";

// A server's ALPN choice: the first of its own protocols that the client offers (Python's
// rule). No protocol in common: no ALPN, and the handshake goes on.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    const SslContextState* s = static_cast<const SslContextState*>(arg);
    if (s->alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, s->alpn.data(),
                              static_cast<unsigned int>(s->alpn.size()), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

void check(const boost::system::error_code& ec, const char* call) {
    if (ec) throw_context_error(ec, std::string("SslContext::") + call);
}

// A file OpenSSL would fail to open gets the system's error, naming the file.
void check_readable(const std::string& path, const char* call) {
    if (::access(path.c_str(), R_OK) != 0)
        throw std::system_error(errno, std::system_category(),
                                std::string("asyncfiber: SslContext::") + call + ": " + path);
}

// Once both a certificate and a key are loaded they must match (asyncio's load_cert_chain
// checks it too). `had_key`: a key was there before this call; OpenSSL silently drops a key
// loaded first when the certificate that follows does not match it.
void check_key_matches(SslContextState& s, const char* call, bool had_key) {
    SSL_CTX* h = s.native.native_handle();
    if (!SSL_CTX_get0_certificate(h)) return;
    if (SSL_CTX_get0_privatekey(h) ? SSL_CTX_check_private_key(h) != 1 : had_key) {
        ERR_clear_error();
        boost::system::error_code ec(
            static_cast<int>(ERR_PACK(ERR_LIB_X509, 0, X509_R_KEY_VALUES_MISMATCH)),
            boost::asio::error::get_ssl_category());
        check(ec, call);
    }
}

bool has_key(SslContextState& s) {
    return SSL_CTX_get0_privatekey(s.native.native_handle()) != nullptr;
}

}  // namespace

SslContextState::SslContextState(bool server_side)
    : native(server_side ? boost::asio::ssl::context::tls_server
                         : boost::asio::ssl::context::tls_client),
      server(server_side) {
    SSL_CTX* h = native.native_handle();
    SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_cipher_list(h, kCipherList);
    SSL_CTX_set_alpn_select_cb(h, &select_alpn, this);
    if (server_side) {
        SSL_CTX_set_verify(h, SSL_VERIFY_NONE, nullptr);
    } else {
        boost::system::error_code ec;
        native.set_default_verify_paths(ec);
        check(ec, "client (loading the system's trusted CAs)");
        SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
        check_hostname = true;
    }
}

void check_tls_timeouts(Clock::duration handshake, Clock::duration shutdown, const char* who) {
    if (handshake <= Clock::duration::zero() || shutdown <= Clock::duration::zero())
        throw std::invalid_argument(
            std::string("asyncfiber: ") + who +
            ": ssl_handshake_timeout and ssl_shutdown_timeout must be positive");
}

void check_server_context(const SslContext& ctx, const char* who) {
    SslContextState& s = state_of(ctx);
    if (!s.server)
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": ssl needs a server-side SslContext (SslContext::server())");
    if (!SSL_CTX_get0_certificate(s.native.native_handle()) ||
        !SSL_CTX_get0_privatekey(s.native.native_handle()))
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": the SslContext needs a certificate and its private key");
}

SslContextState& state_of(const SslContext& ctx) {
    if (!ctx) throw InvalidStateError("asyncfiber: use of an empty SslContext");
    return *detail::Access::state(ctx)->state;
}

// The handle's share counting (detail/state_share.hpp), instantiated beside the state.
template void intrusive_add_ref<SslContextState>(StateShare<SslContextState>*) noexcept;
template void intrusive_release<SslContextState>(StateShare<SslContextState>*) noexcept;

}  // namespace detail

SslContext SslContext::client() {
    return detail::share_state<SslContext>(std::make_shared<detail::SslContextState>(false));
}

SslContext SslContext::server() {
    return detail::share_state<SslContext>(std::make_shared<detail::SslContextState>(true));
}

void SslContext::use_certificate_chain_file(const std::string& path) {
    detail::SslContextState& s = detail::state_of(*this);
    detail::check_readable(path, "use_certificate_chain_file");
    const bool had_key = detail::has_key(s);
    boost::system::error_code ec;
    s.native.use_certificate_chain_file(path, ec);
    detail::check(ec, "use_certificate_chain_file");
    detail::check_key_matches(s, "use_certificate_chain_file", had_key);
}

void SslContext::use_certificate_chain(const std::string& pem) {
    detail::SslContextState& s = detail::state_of(*this);
    const bool had_key = detail::has_key(s);
    boost::system::error_code ec;
    s.native.use_certificate_chain(boost::asio::buffer(pem), ec);
    detail::check(ec, "use_certificate_chain");
    detail::check_key_matches(s, "use_certificate_chain", had_key);
}

void SslContext::use_private_key_file(const std::string& path) {
    detail::SslContextState& s = detail::state_of(*this);
    detail::check_readable(path, "use_private_key_file");
    boost::system::error_code ec;
    s.native.use_private_key_file(path, boost::asio::ssl::context::pem, ec);
    detail::check(ec, "use_private_key_file");
    detail::check_key_matches(s, "use_private_key_file", true);
}

void SslContext::use_private_key(const std::string& pem) {
    detail::SslContextState& s = detail::state_of(*this);
    boost::system::error_code ec;
    s.native.use_private_key(boost::asio::buffer(pem), boost::asio::ssl::context::pem, ec);
    detail::check(ec, "use_private_key");
    detail::check_key_matches(s, "use_private_key", true);
}

void SslContext::load_verify_file(const std::string& path) {
    detail::SslContextState& s = detail::state_of(*this);
    detail::check_readable(path, "load_verify_file");
    boost::system::error_code ec;
    s.native.load_verify_file(path, ec);
    detail::check(ec, "load_verify_file");
}

void SslContext::add_certificate_authority(const std::string& pem) {
    detail::SslContextState& s = detail::state_of(*this);
    boost::system::error_code ec;
    s.native.add_certificate_authority(boost::asio::buffer(pem), ec);
    detail::check(ec, "add_certificate_authority");
}

void SslContext::set_verify_peer(bool on) {
    detail::SslContextState& s = detail::state_of(*this);
    if (!on && s.check_hostname)
        throw std::invalid_argument(
            "asyncfiber: SslContext::set_verify_peer(false) while host names are checked: call "
            "set_check_hostname(false) first");
    int mode = SSL_VERIFY_NONE;
    if (on) mode = s.server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(s.native.native_handle(), mode,
                       SSL_CTX_get_verify_callback(s.native.native_handle()));
}

void SslContext::set_check_hostname(bool on) {
    detail::SslContextState& s = detail::state_of(*this);
    if (on && !verify_peer()) set_verify_peer(true);
    s.check_hostname = on;
}

bool SslContext::verify_peer() const {
    return (SSL_CTX_get_verify_mode(detail::state_of(*this).native.native_handle()) &
            SSL_VERIFY_PEER) != 0;
}

bool SslContext::check_hostname() const { return detail::state_of(*this).check_hostname; }

void SslContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
    detail::SslContextState& s = detail::state_of(*this);
    std::vector<unsigned char> wire;
    for (const std::string& p : protocols) {
        if (p.empty() || p.size() > 255)
            throw std::invalid_argument(
                "asyncfiber: an ALPN protocol name must be 1 to 255 bytes, not " +
                std::to_string(p.size()));
        wire.push_back(static_cast<unsigned char>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
    }
    // The offer a client sends (OpenSSL returns 0 on success here); an empty one offers none.
    if (SSL_CTX_set_alpn_protos(s.native.native_handle(), wire.data(),
                                static_cast<unsigned int>(wire.size())) != 0)
        throw std::bad_alloc();
    s.alpn = std::move(wire);
}

boost::asio::ssl::context& SslContext::native() { return detail::state_of(*this).native; }

bool SslContext::is_server() const { return detail::state_of(*this).server; }

}  // namespace asyncfiber

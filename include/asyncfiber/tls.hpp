// asyncfiber/tls.hpp - TLS for streams and servers, like asyncio's ssl= arguments, over
// Boost.Asio's ssl::stream and OpenSSL.
//
//   af::SslContext ctx = af::SslContext::client();    // system CAs, host name checked
//   af::ConnectOptions o;
//   o.ssl = &ctx;
//   auto rw = af::open_connection("example.org", 443, o);
//   rw.second.write("GET / HTTP/1.0\r\nHost: example.org\r\n\r\n");
//
// Secure by default, as Python's ssl.create_default_context(): a client verifies the server's
// certificate against the system's trusted CAs and checks that it names the host (the host
// connected to, or ConnectOptions::server_hostname), sends that name as SNI, and speaks TLS 1.2
// or later with forward-secret AEAD ciphers; turning verification off takes an explicit call.
//
// Errors (each an af::SslError carrying OpenSSL's reason string in what() and reason()):
// - the peer's certificate is not trusted, expired, self-signed, or names another host:
//   SslCertVerificationError (verify_code() / verify_message() say which);
// - no protocol version or cipher in common, a peer that does not speak TLS, a handshake alert
//   from the peer (e.g. it rejected our certificate), a corrupted record: SslError;
// - the peer closing the connection during the handshake, or in the middle of a TLS record:
//   SslError whose reason() is OpenSSL's "unexpected eof while reading" and whose what() says
//   which; a peer that closes at a record boundary without close_notify is an ordinary EOF
//   (as asyncio and Python's suppress_ragged_eofs do);
// - a handshake past its timeout: TimeoutError; a reset by the peer: std::system_error.
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/net.hpp>

#include <string>
#include <vector>

// SslContext::native() hands out Boost.Asio's context; naming it needs only its declaration
// (include <boost/asio/ssl/context.hpp> to use it), so this header stays free of Boost.Asio.
namespace boost {
namespace asio {
namespace ssl {
class context;
}  // namespace ssl
}  // namespace asio
}  // namespace boost

namespace asyncfiber {

namespace detail {
struct SslContextState;
}  // namespace detail

/// A TLS failure (asyncio's ssl.SSLError). what() names the operation and OpenSSL's reason.
class SslError : public Error {
public:
    SslError(const std::string& what, std::string reason)
        : Error(what), reason_(std::move(reason)) {}
    /// OpenSSL's reason string: "wrong version number", "tlsv1 alert unknown ca",
    /// "certificate verify failed", "unexpected eof while reading"...
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string reason_;
};

/// The peer's certificate did not verify (ssl.SSLCertVerificationError): unknown CA, expired,
/// self-signed, host-name mismatch...
class SslCertVerificationError : public SslError {
public:
    SslCertVerificationError(const std::string& what, std::string reason, long verify_code,
                             std::string verify_message)
        : SslError(what, std::move(reason)),
          verify_code_(verify_code),
          verify_message_(std::move(verify_message)) {}
    /// OpenSSL's X509_V_ERR_* code (e.g. 62, X509_V_ERR_HOSTNAME_MISMATCH).
    long verify_code() const noexcept { return verify_code_; }
    /// OpenSSL's text for it ("hostname mismatch", "certificate has expired"...).
    const std::string& verify_message() const noexcept { return verify_message_; }

private:
    long verify_code_;
    std::string verify_message_;
};

/// The TLS configuration of connections (Python's ssl.SSLContext). A cheap shared handle:
/// copies share one context, and every connection made with it keeps it alive. Configure it
/// before making connections; a connection takes the settings of the moment it starts. Once
/// configured, loops on several threads may use it at once (OpenSSL's SSL_CTX is shared).
/// Every call throws SslError (with OpenSSL's reason) for bad PEM data or a key that does not
/// match the certificate, std::system_error for a file that cannot be read.
class SslContext {
public:
    /// Empty: using it throws InvalidStateError.
    SslContext() noexcept = default;

    /// For clients (ssl.create_default_context()): the system's trusted CAs, peer
    /// verification, host-name check, TLS 1.2 minimum.
    static SslContext client();
    /// For servers: TLS 1.2 minimum, no client certificate asked for; give it a certificate
    /// chain and its key. set_verify_peer(true) requires clients to present a certificate
    /// that verifies against the CAs given with load_verify_file / add_certificate_authority
    /// (only those: a server does not trust the system's CAs for clients).
    static SslContext server();

    /// Our certificate, then the intermediates, from a PEM file / PEM text.
    void use_certificate_chain_file(const std::string& path);
    void use_certificate_chain(const std::string& pem);
    /// Our private key (unencrypted PEM); must match the certificate.
    void use_private_key_file(const std::string& path);
    void use_private_key(const std::string& pem);
    /// Trusts the CA certificates of a PEM file / PEM text (for verifying the peer).
    void load_verify_file(const std::string& path);
    void add_certificate_authority(const std::string& pem);
    /// Whether the peer must present a certificate that verifies (clients: on by default; a
    /// server with it on requires client certificates). Turning it off while host names are
    /// checked throws std::invalid_argument, as Python does: call set_check_hostname(false)
    /// first.
    void set_verify_peer(bool on);
    /// Whether a client checks that the server's certificate names the host (on by default
    /// for clients). Turning it on also turns peer verification on.
    void set_check_hostname(bool on);
    bool verify_peer() const;
    bool check_hostname() const;
    /// ALPN: the protocols offered (client) or accepted (server), most preferred first. A
    /// server picks the first of its own that the client offers; with none in common the
    /// connection goes on without ALPN (as Python). Each name 1 to 255 bytes
    /// (std::invalid_argument otherwise); an empty list turns ALPN off.
    void set_alpn_protocols(const std::vector<std::string>& protocols);
    /// The Boost.Asio context underneath, for everything else (versions, ciphers, callbacks).
    boost::asio::ssl::context& native();
    /// True for a context made by server().
    bool is_server() const;

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }

private:
    friend struct detail::Access;
    using Share = detail::StateShare<detail::SslContextState>;
    const detail::IntrusivePtr<Share>& state() const noexcept { return s_; }
    explicit SslContext(detail::IntrusivePtr<Share> s) noexcept : s_(std::move(s)) {}
    detail::IntrusivePtr<Share> s_;  // a share in the state, which connections share too
};

}  // namespace asyncfiber

// Internal: what an af::SslContext handle shares, and how TLS failures become exceptions.
#pragma once

#include <asyncfiber/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <exception>
#include <string>
#include <vector>

namespace asyncfiber {
namespace detail {

struct SslContextState {
    explicit SslContextState(bool server_side);

    boost::asio::ssl::context native;
    const bool server;
    bool check_hostname = false;
    std::vector<unsigned char> alpn;  // ALPN wire format: length-prefixed names
};

/// The context behind a handle, or InvalidStateError for an empty one.
SslContextState& state_of(const SslContext& ctx);

/// The exception for a failed TLS operation on `ssl` (nullptr if there is none): SslError,
/// SslCertVerificationError when the peer's certificate did not verify, std::system_error for
/// a system error. `during` names the operation ("TLS handshake with 127.0.0.1:443").
std::exception_ptr tls_failure(const boost::system::error_code& ec, SSL* ssl,
                               const std::string& during);

/// SslError for the peer closing the connection where TLS says it must not: during the
/// handshake, or in the middle of a record. Its reason is OpenSSL's for that case.
std::exception_ptr tls_truncated(const std::string& during, const char* where);

/// Throws std::invalid_argument unless both timeouts are positive (as asyncio's ValueError).
void check_tls_timeouts(Clock::duration handshake, Clock::duration shutdown, const char* who);

/// Throws std::invalid_argument unless `ctx` can serve TLS: server-side, with a certificate.
void check_server_context(const SslContext& ctx, const char* who);

/// Throws SslError for `ec`, an error of a context setting (`call` names it).
[[noreturn]] void throw_context_error(const boost::system::error_code& ec, const std::string& call);

}  // namespace detail
}  // namespace asyncfiber

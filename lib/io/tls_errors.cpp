// How a failed TLS operation becomes a typed exception that names its cause.
#include "tls_context.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <system_error>

namespace asyncfiber {
namespace detail {

namespace {

std::string openssl_reason(unsigned long code) {
    const char* r = ERR_reason_error_string(code);
    return r ? r : "unknown OpenSSL error " + std::to_string(ERR_GET_REASON(code));
}

}  // namespace

std::exception_ptr tls_truncated(const std::string& during, const char* where) {
    // OpenSSL's own reason for an EOF where a record or handshake message was due (Asio never
    // hands the EOF to OpenSSL, so the reason is looked up rather than taken from its queue).
    const std::string reason =
        openssl_reason(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNEXPECTED_EOF_WHILE_READING));
    return std::make_exception_ptr(SslError(
        "asyncfiber: " + during + ": the peer closed the connection " + where + " (" + reason + ")",
        reason));
}

std::exception_ptr tls_failure(const boost::system::error_code& ec, SSL* ssl,
                               const std::string& during) {
    try {
        if (ec.category() == boost::asio::error::get_ssl_category()) {
            const unsigned long code = static_cast<unsigned long>(ec.value());
            const std::string reason = openssl_reason(code);
            if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
                ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl) {
                const long v = SSL_get_verify_result(ssl);
                const std::string vmsg = X509_verify_cert_error_string(v);
                throw SslCertVerificationError(
                    "asyncfiber: " + during + ": " + reason + ": " + vmsg, reason, v, vmsg);
            }
            throw SslError("asyncfiber: " + during + ": " + reason, reason);
        }
        if (ec == boost::asio::ssl::error::stream_truncated)
            return tls_truncated(during, "during the exchange");
        if (ec.category() == boost::asio::ssl::error::get_stream_category())
            throw SslError("asyncfiber: " + during + ": " + ec.message(), ec.message());
        // The transport's own errors (reset, broken pipe...) stay system errors, as for plain
        // streams.
        throw std::system_error(ec.value(), std::system_category(), during);
    } catch (...) {
        return std::current_exception();
    }
}

[[noreturn]] void throw_context_error(const boost::system::error_code& ec,
                                      const std::string& call) {
    const std::string reason = ec.category() == boost::asio::error::get_ssl_category()
                                   ? openssl_reason(static_cast<unsigned long>(ec.value()))
                                   : ec.message();
    throw SslError("asyncfiber: " + call + ": " + reason, reason);
}

}  // namespace detail
}  // namespace asyncfiber

// open_connection / open_unix_connection: non-blocking connect, awaited on write readiness,
// then the TLS handshake when the options ask for TLS.
#include "resolve.hpp"
#include "stream_core.hpp"
#include "tls_context.hpp"

#include <asyncfiber/net.hpp>
#include <asyncfiber/tls.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace asyncfiber {

namespace detail {

namespace {

// Connects one socket; returns the stream, or nullptr with `err` set when this address failed.
std::shared_ptr<StreamCore> try_connect(LoopImpl* L, const sockaddr* sa, socklen_t len,
                                        std::size_t limit, int& err) {
    int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_errno(errno, "socket");
    if (sa->sa_family != AF_UNIX) set_nodelay(fd);
    auto core = std::make_shared<StreamCore>(L, fd, StreamCore::Kind::socket, limit);
    try {
        int r;
        do {
            r = ::connect(fd, sa, len);
        } while (r != 0 && errno == EINTR);
        if (r != 0) {
            int e = errno;
            if (e != EINPROGRESS) {
                err = e;
                core->abort();
                return nullptr;
            }
            core->wait_writable("open_connection");
            socklen_t elen = sizeof e;
            if (core->closed) {
                e = ECONNABORTED;
            } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0) {
                e = errno;
            }
            if (e != 0) {
                err = e;
                core->abort();
                return nullptr;
            }
        }
    } catch (...) {
        core->abort();
        throw;
    }
    return core;
}

// Misuse of the TLS options fails before anything is connected.
void check_tls_options(const ConnectOptions& o, const std::string& host, const char* who) {
    if (!o.ssl) return;
    const SslContext& ctx = *o.ssl;
    if (ctx.is_server())
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": ssl needs a client-side SslContext (SslContext::client())");
    if (ctx.check_hostname() && o.server_hostname.empty() && host.empty())
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": the SslContext checks host names: set server_hostname");
    check_tls_timeouts(o.ssl_handshake_timeout, o.ssl_shutdown_timeout, who);
}

// The pair over a connected socket; over TLS once the handshake succeeded (the connection is
// closed if it does not).
std::pair<StreamReader, StreamWriter> client_streams(std::shared_ptr<StreamCore> core,
                                                     const std::string& host,
                                                     const ConnectOptions& o) {
    core->role = StreamCore::Role::client;
    core->peer_host = host;
    core->tls_handshake_timeout = o.ssl_handshake_timeout;
    core->tls_shutdown_timeout = o.ssl_shutdown_timeout;
    if (o.ssl) core->start_tls(*o.ssl, o.server_hostname);
    return make_stream_pair(std::move(core));
}

}  // namespace
}  // namespace detail

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, unsigned short port,
                                                      std::size_t limit) {
    ConnectOptions o;
    o.limit = limit;
    return open_connection(host, port, o);
}

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, unsigned short port,
                                                      const ConnectOptions& options) {
    detail::LoopImpl* L = detail::loop_checked("af::open_connection");
    detail::current_task_checked("af::open_connection");
    detail::check_stream_limit(options.limit, "open_connection");
    detail::check_tls_options(options, host, "open_connection");
    std::vector<detail::Endpoint> eps = detail::resolve(L, host, port, false);
    int err = 0;
    for (const auto& ep : eps) {
        auto core = detail::try_connect(L, ep.sa(), ep.len, options.limit, err);
        if (core) return detail::client_streams(std::move(core), host, options);
    }
    detail::throw_errno(err, "connect to " + host + ":" + std::to_string(port));
}

std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path,
                                                           std::size_t limit) {
    ConnectOptions o;
    o.limit = limit;
    return open_unix_connection(path, o);
}

std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path,
                                                           const ConnectOptions& options) {
    detail::LoopImpl* L = detail::loop_checked("af::open_unix_connection");
    detail::current_task_checked("af::open_unix_connection");
    detail::check_stream_limit(options.limit, "open_unix_connection");
    // A Unix socket's path is no host name: a context that checks names needs one given.
    detail::check_tls_options(options, std::string(), "open_unix_connection");
    sockaddr_un un = detail::unix_address(path, "open_unix_connection");
    int err = 0;
    auto core =
        detail::try_connect(L, reinterpret_cast<sockaddr*>(&un), sizeof un, options.limit, err);
    if (!core) detail::throw_errno(err, "connect to " + path);
    return detail::client_streams(std::move(core), std::string(), options);
}

}  // namespace asyncfiber

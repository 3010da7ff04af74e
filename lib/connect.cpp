// open_connection / open_unix_connection: non-blocking connect, awaited on write readiness.
#include "resolve.hpp"
#include "stream_core.hpp"

#include <asyncfiber/net.hpp>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace asyncfiber {

namespace detail {

/// Small echoes and request/response exchanges must not wait for Nagle's algorithm (asyncio
/// sets TCP_NODELAY on every TCP transport too).
void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

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

}  // namespace
}  // namespace detail

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, unsigned short port,
                                                      std::size_t limit) {
    detail::LoopImpl* L = detail::loop_checked("af::open_connection");
    detail::current_task_checked("af::open_connection");
    detail::check_stream_limit(limit, "open_connection");
    std::vector<detail::Endpoint> eps = detail::resolve(L, host, port, false);
    int err = 0;
    for (const auto& ep : eps) {
        auto core = detail::try_connect(L, ep.sa(), ep.len, limit, err);
        if (core) return detail::make_stream_pair(std::move(core));
    }
    detail::throw_errno(err, "connect to " + host + ":" + std::to_string(port));
}

std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path,
                                                           std::size_t limit) {
    detail::LoopImpl* L = detail::loop_checked("af::open_unix_connection");
    detail::current_task_checked("af::open_unix_connection");
    detail::check_stream_limit(limit, "open_unix_connection");
    sockaddr_un un = detail::unix_address(path, "open_unix_connection");
    int err = 0;
    auto core = detail::try_connect(L, reinterpret_cast<sockaddr*>(&un), sizeof un, limit, err);
    if (!core) detail::throw_errno(err, "connect to " + path);
    return detail::make_stream_pair(std::move(core));
}

}  // namespace asyncfiber

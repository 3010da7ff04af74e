// af::SocketAddress: printing, and reading one from a socket.
#include "socket_address.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace asyncfiber {

std::string SocketAddress::to_string() const {
    switch (family) {
    case Family::ipv4:
        return host + ":" + std::to_string(port);
    case Family::ipv6:
        return "[" + host + "]:" + std::to_string(port);
    case Family::unix_domain:
        return host;
    case Family::none:
        break;
    }
    return std::string();
}

namespace detail {

namespace {

// Dotted quad text of an IPv4 address. glibc's inet_ntop formats it with sprintf, which was
// the largest user-space cost of a datagram echo server (one sender address per datagram).
std::size_t ipv4_text(const in_addr& addr, char* out) {
    const auto* b = reinterpret_cast<const unsigned char*>(&addr.s_addr);
    char* p = out;
    for (int i = 0; i < 4; ++i) {
        unsigned v = b[i];
        if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
        if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
        *p++ = static_cast<char>('0' + v % 10);
        if (i < 3) *p++ = '.';
    }
    return static_cast<std::size_t>(p - out);
}

}  // namespace

SocketAddress to_socket_address(const sockaddr* sa, socklen_t len) {
    SocketAddress a;
    char text[INET6_ADDRSTRLEN] = {0};
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        a.family = SocketAddress::Family::ipv4;
        a.host.assign(text, ipv4_text(in->sin_addr, text));
        a.port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        a.family = SocketAddress::Family::ipv6;
        a.host = text;
        a.port = ntohs(in6->sin6_port);
    } else if (sa->sa_family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
        a.family = SocketAddress::Family::unix_domain;
        std::size_t off = offsetof(sockaddr_un, sun_path);
        if (len > off) a.host.assign(un->sun_path, ::strnlen(un->sun_path, len - off));
    }
    return a;
}

SocketAddress socket_address_of(int fd, bool peer) {
    sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    socklen_t len = sizeof ss;
    int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                 : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r != 0) return SocketAddress();
    return to_socket_address(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace detail
}  // namespace asyncfiber

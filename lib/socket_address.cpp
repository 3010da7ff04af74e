// af::SocketAddress: printing, and reading one from a socket.
#include <asyncfiber/net.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace asyncfiber {

std::string SocketAddress::to_string() const {
    switch (family) {
    case Family::ipv4: return host + ":" + std::to_string(port);
    case Family::ipv6: return "[" + host + "]:" + std::to_string(port);
    case Family::unix_domain: return host;
    case Family::none: break;
    }
    return std::string();
}

namespace detail {

SocketAddress to_socket_address(const sockaddr* sa, socklen_t len) {
    SocketAddress a;
    char text[INET6_ADDRSTRLEN] = {0};
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        a.family = SocketAddress::Family::ipv4;
        a.host = text;
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

// Internal: af::SocketAddress from the system's socket addresses.
#pragma once

#include <asyncfiber/net.hpp>

#include <sys/socket.h>

namespace asyncfiber {
namespace detail {

/// The address `sa` (IPv4, IPv6 or Unix-domain) as a SocketAddress; family none otherwise.
SocketAddress to_socket_address(const sockaddr* sa, socklen_t len);

/// The local (or, with `peer`, the remote) address of socket `fd`; family none on error.
SocketAddress socket_address_of(int fd, bool peer);

}  // namespace detail
}  // namespace asyncfiber

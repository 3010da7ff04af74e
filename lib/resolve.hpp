// Internal: host names to socket addresses, without blocking the loop.
#pragma once

#include "loop_impl.hpp"

#include <sys/socket.h>

#include <string>
#include <vector>

namespace asyncfiber {
namespace detail {

struct Endpoint {
    sockaddr_storage addr;
    socklen_t len;
    const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&addr); }
};

/// An IPv4 or IPv6 literal ("::1" or "[::1]") as an address with `port`; false otherwise.
bool ip_literal(const std::string& host, unsigned short port, Endpoint& ep);

/// IP literals are converted at once; names go to Asio's asynchronous resolver (which runs
/// getaddrinfo off the loop's thread) while the calling task is parked. `passive`: addresses
/// to listen on. Cancellable. Throws boost::system::system_error when the name is unknown.
std::vector<Endpoint> resolve(LoopImpl* L, const std::string& host, unsigned short port,
                              bool passive);

/// The wildcard addresses for a server on every interface: 0.0.0.0 and ::.
std::vector<Endpoint> wildcard_endpoints(unsigned short port);

}  // namespace detail
}  // namespace asyncfiber

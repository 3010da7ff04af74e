// Name resolution through boost::asio::ip::tcp::resolver, awaited with af::use_await.
#include "resolve.hpp"

#include "runtime/io_driver.hpp"

#include <asyncfiber/bridge.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/system_error.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>

namespace asyncfiber {
namespace detail {

bool ip_literal(const std::string& host, unsigned short port, Endpoint& ep) {
    std::memset(&ep.addr, 0, sizeof ep.addr);
    auto* in = reinterpret_cast<sockaddr_in*>(&ep.addr);
    if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        ep.len = sizeof(sockaddr_in);
        return true;
    }
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    if (::inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        ep.len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

std::vector<Endpoint> wildcard_endpoints(unsigned short port) {
    std::vector<Endpoint> v(2);
    ip_literal("0.0.0.0", port, v[0]);
    ip_literal("::", port, v[1]);
    return v;
}

std::vector<Endpoint> resolve(LoopImpl* L, const std::string& host, unsigned short port,
                              bool passive) {
    std::vector<Endpoint> out;
    Endpoint ep;
    if (ip_literal(host, port, ep)) {
        out.push_back(ep);
        return out;
    }
    current_task_checked("resolving a host name");
    // Asio runs getaddrinfo on its own thread; only this task waits. Cancelling it cancels
    // the lookup (a late answer is dropped by use_await).
    boost::asio::ip::tcp::resolver resolver(L->io->context());
    auto flags =
        passive ? boost::asio::ip::resolver_base::passive : boost::asio::ip::resolver_base::flags();
    boost::system::error_code ec;
    auto results = resolver.async_resolve(host, std::to_string(port),
                                          flags | boost::asio::ip::resolver_base::numeric_service,
                                          use_await[ec].cancels(resolver));
    if (ec) throw boost::system::system_error(ec, "resolve '" + host + "'");
    for (const auto& r : results) {
        Endpoint e;
        std::memset(&e.addr, 0, sizeof e.addr);
        auto epnt = r.endpoint();
        std::memcpy(&e.addr, epnt.data(), epnt.size());
        e.len = static_cast<socklen_t>(epnt.size());
        out.push_back(e);
    }
    if (out.empty())
        throw boost::system::system_error(boost::asio::error::host_not_found,
                                          "resolve '" + host + "'");
    return out;
}

}  // namespace detail
}  // namespace asyncfiber

// Name resolution through boost::asio::ip::tcp::resolver, awaited by a parked task.
#include "resolve.hpp"

#include "io_driver.hpp"

#include <asyncfiber/detail/wait.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/system_error.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <memory>
#include <netinet/in.h>

namespace asyncfiber {
namespace detail {

namespace {

bool literal(const std::string& host, unsigned short port, Endpoint& ep) {
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

// Shared by the parked task and the resolver's completion handler: whichever is last frees
// it, so a completion that arrives after the task was cancelled touches live memory only.
struct ResolveOp {
    explicit ResolveOp(boost::asio::io_context& io) : resolver(io) {}
    boost::asio::ip::tcp::resolver resolver;
    TaskBase* waiter = nullptr;
    bool done = false;
    boost::system::error_code ec;
    boost::asio::ip::tcp::resolver::results_type results;
};

}  // namespace

std::vector<Endpoint> wildcard_endpoints(unsigned short port) {
    std::vector<Endpoint> v(2);
    literal("0.0.0.0", port, v[0]);
    literal("::", port, v[1]);
    return v;
}

std::vector<Endpoint> resolve(LoopImpl* L, const std::string& host, unsigned short port,
                              bool passive) {
    std::vector<Endpoint> out;
    Endpoint ep;
    if (literal(host, port, ep)) {
        out.push_back(ep);
        return out;
    }
    TaskBase* self = current_task_checked("resolving a host name");
    throw_if_cancelled(self);
    auto op = std::make_shared<ResolveOp>(L->io->context());
    auto flags = passive ? boost::asio::ip::resolver_base::passive
                         : boost::asio::ip::resolver_base::flags();
    op->resolver.async_resolve(
        host, std::to_string(port), flags | boost::asio::ip::resolver_base::numeric_service,
        [op](const boost::system::error_code& ec,
             boost::asio::ip::tcp::resolver::results_type results) {
            op->done = true;
            op->ec = ec;
            op->results = std::move(results);
            if (op->waiter) wake(op->waiter);
        });
    op->waiter = self;
    while (!op->done && !self->must_cancel) suspend(self, "resolve");
    op->waiter = nullptr;
    if (!op->done) {
        op->resolver.cancel();
        throw_if_cancelled(self);
    }
    if (op->ec) throw boost::system::system_error(op->ec, "resolve '" + host + "'");
    for (const auto& r : op->results) {
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

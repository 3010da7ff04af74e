// af::create_datagram_endpoint, af::create_unix_datagram_endpoint and af::DatagramEndpoint
// over a DatagramCore: resolving, binding and connecting, addresses to and from SocketAddress.
#include "datagram_core.hpp"
#include "runtime/io_driver.hpp"
#include "runtime/state_share.hpp"
#include "resolve.hpp"
#include "socket_address.hpp"
#include "stream_core.hpp"

#include <asyncfiber/datagram.hpp>

#include <boost/asio/socket_base.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

namespace asyncfiber {

namespace detail {
namespace {

using Address = DatagramCore::Address;

// SO_REUSEPORT, which Asio names no option for.
using ReusePort = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

Address to_address(const Endpoint& ep) { return Address(ep.sa(), ep.len); }

SocketAddress from_address(const Address& a) {
    return to_socket_address(a.data(), static_cast<socklen_t>(a.size()));
}

bool same_address(const Address& a, const Address& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

/// "host:port" for messages ("[::1]:53" for IPv6, "*:53" for any interface).
std::string host_port(const std::string& host, unsigned short port) {
    if (host.empty()) return "*:" + std::to_string(port);
    SocketAddress a;
    a.family = host.find(':') != std::string::npos ? SocketAddress::Family::ipv6
                                                   : SocketAddress::Family::ipv4;
    a.host = host;
    a.port = port;
    return a.to_string();
}

/// A socket of the family of `local` (or `remote`), options set, bound and/or connected.
std::shared_ptr<DatagramCore> open_udp(LoopImpl* L, const DatagramOptions& o, const Endpoint* local,
                                       const Endpoint* remote) {
    const int family = (local ? local->addr : remote->addr).ss_family;
    auto core = std::make_shared<DatagramCore>(L, family);
    try {
        boost::system::error_code ec;
        if (o.reuse_port) core->socket().set_option(ReusePort(true), ec);
        if (!ec && o.allow_broadcast)
            core->socket().set_option(boost::asio::socket_base::broadcast(true), ec);
        if (ec) throw_asio_error(ec, "create_datagram_endpoint: setsockopt");
        if (local)
            core->bind(
                to_address(*local), std::string(),
                "create_datagram_endpoint: bind to " + host_port(o.local_host, o.local_port));
        if (remote)
            core->connect(to_address(*remote), "create_datagram_endpoint: connect to " +
                                                   host_port(o.remote_host, o.remote_port));
    } catch (...) {
        core->close();
        throw;
    }
    return core;
}

/// The wildcard address of `family` (0.0.0.0 or ::) with `port`.
Endpoint wildcard(int family, unsigned short port) {
    Endpoint ep;
    ip_literal(family == AF_INET ? "0.0.0.0" : "::", port, ep);
    return ep;
}

/// Replaces a stale socket file at `path` (a socket left by a process that ended), as
/// start_unix_server and asyncio do; anything else there makes bind fail with EADDRINUSE.
void remove_stale_socket(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

Address unix_endpoint(const std::string& path, const char* who) {
    sockaddr_un un = unix_address(path, who);
    return Address(&un, sizeof un);
}

/// `to` as a socket address of the endpoint's family: a Unix path, an IP literal, or a host
/// name resolved without blocking the loop.
Address destination(DatagramCore& c, const SocketAddress& to, const char* what) {
    if (c.family == AF_UNIX) {
        if (to.family != SocketAddress::Family::unix_domain)
            throw std::invalid_argument(std::string("asyncfiber: ") + what + ": '" +
                                        to.to_string() + "' is no Unix socket address");
        return unix_endpoint(to.host, what);
    }
    if (to.family == SocketAddress::Family::unix_domain || to.host.empty())
        throw std::invalid_argument(std::string("asyncfiber: ") + what + ": '" + to.to_string() +
                                    "' is no host and port");
    Endpoint literal;  // the common case (an address from recvfrom): no resolver, no allocation
    if (ip_literal(to.host, to.port, literal) && literal.addr.ss_family == c.family)
        return to_address(literal);
    for (const Endpoint& ep : resolve(c.loop, to.host, to.port, false))
        if (ep.addr.ss_family == c.family) return to_address(ep);
    throw std::system_error(
        EAFNOSUPPORT, std::system_category(),
        std::string(what) + ": '" + to.host + "' has no address of the endpoint's family");
}

}  // namespace
}  // namespace detail

// ---- creating ----

DatagramEndpoint create_datagram_endpoint(const DatagramOptions& o) {
    detail::LoopImpl* L = detail::loop_checked("af::create_datagram_endpoint");
    detail::current_task_checked("af::create_datagram_endpoint");
    if (o.remote_host.empty() && o.remote_port != 0)
        throw std::invalid_argument(
            "asyncfiber: create_datagram_endpoint: remote_port without remote_host");
    std::exception_ptr last;
    if (o.remote_host.empty()) {
        const std::string host = o.local_host.empty() ? "0.0.0.0" : o.local_host;
        for (const auto& local : detail::resolve(L, host, o.local_port, true)) {
            try {
                return detail::share_state<DatagramEndpoint>(
                    detail::open_udp(L, o, &local, nullptr));
            } catch (const std::system_error&) {
                last = std::current_exception();  // e.g. no IPv6 here: try the next address
            }
        }
        std::rethrow_exception(last);
    }
    // Connected: each remote address in turn, bound to a local address of its family.
    std::vector<detail::Endpoint> locals;
    const bool bind_local = !o.local_host.empty() || o.local_port != 0;
    if (!o.local_host.empty()) locals = detail::resolve(L, o.local_host, o.local_port, true);
    for (const auto& remote : detail::resolve(L, o.remote_host, o.remote_port, false)) {
        const int family = remote.addr.ss_family;
        std::vector<detail::Endpoint> candidates;
        if (!bind_local) {
            candidates.push_back(detail::Endpoint());  // placeholder: no bind
        } else if (o.local_host.empty()) {
            candidates.push_back(detail::wildcard(family, o.local_port));
        } else {
            for (const auto& l : locals)
                if (l.addr.ss_family == family) candidates.push_back(l);
        }
        for (const auto& local : candidates) {
            try {
                return detail::share_state<DatagramEndpoint>(
                    detail::open_udp(L, o, bind_local ? &local : nullptr, &remote));
            } catch (const std::system_error&) {
                last = std::current_exception();
            }
        }
    }
    if (last) std::rethrow_exception(last);
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "create_datagram_endpoint: no local address of " + o.local_host +
                                " has the family of a remote address of " + o.remote_host);
}

DatagramEndpoint create_unix_datagram_endpoint(std::string local_path, std::string remote_path) {
    detail::LoopImpl* L = detail::loop_checked("af::create_unix_datagram_endpoint");
    detail::current_task_checked("af::create_unix_datagram_endpoint");
    const char* who = "create_unix_datagram_endpoint";
    // Both paths are checked before anything is created or removed.
    detail::DatagramCore::Address local, remote;
    if (!local_path.empty()) local = detail::unix_endpoint(local_path, who);
    if (!remote_path.empty()) remote = detail::unix_endpoint(remote_path, who);
    auto core = std::make_shared<detail::DatagramCore>(L, AF_UNIX);
    try {
        if (!local_path.empty()) {
            detail::remove_stale_socket(local_path);
            core->bind(local, local_path, std::string(who) + ": bind to " + local_path);
        }
        if (!remote_path.empty())
            core->connect(remote, std::string(who) + ": connect to " + remote_path);
    } catch (...) {
        core->close();
        throw;
    }
    return detail::share_state<DatagramEndpoint>(std::move(core));
}

// ---- DatagramEndpoint ----

DatagramEndpoint::DatagramEndpoint() noexcept = default;
namespace detail {
// The handle's share counting (detail/state_share.hpp), instantiated beside the state.
template void intrusive_add_ref<DatagramCore>(StateShare<DatagramCore>*) noexcept;
template void intrusive_release<DatagramCore>(StateShare<DatagramCore>*) noexcept;
}  // namespace detail

DatagramEndpoint::DatagramEndpoint(detail::IntrusivePtr<Share> c) noexcept : c_(std::move(c)) {}
DatagramEndpoint::DatagramEndpoint(DatagramEndpoint&&) noexcept = default;

DatagramEndpoint& DatagramEndpoint::operator=(DatagramEndpoint&& o) noexcept {
    if (this != &o) {
        DatagramEndpoint old(std::move(*this));  // closes what this held
        c_ = std::move(o.c_);
    }
    return *this;
}

DatagramEndpoint::~DatagramEndpoint() {
    if (!c_ || c_->state->closed) return;
    if (c_->state->on_own_thread()) {
        c_->state->close();
        return;
    }
    // Another thread, while the loop may be running: closing here would race with the loop,
    // so the loop's thread does it (as call_soon_threadsafe would).
    std::shared_ptr<detail::DatagramCore> c = c_->state;
    c_.reset();
    detail::LoopImpl* L = c->loop;
    L->io->post([c] { c->close(); });
}

detail::DatagramCore& DatagramEndpoint::core() const {
    if (!c_) throw InvalidStateError("asyncfiber: use of an empty (moved-from) DatagramEndpoint");
    return *c_->state;
}

void DatagramEndpoint::send(const std::string& data) { send(data.data(), data.size()); }

void DatagramEndpoint::send(const char* data, std::size_t n) {
    core().send(data, n, nullptr, "DatagramEndpoint::send");
}

void DatagramEndpoint::sendto(const std::string& data, const SocketAddress& to) {
    sendto(data.data(), data.size(), to);
}

void DatagramEndpoint::sendto(const char* data, std::size_t n, const SocketAddress& to) {
    const char* what = "DatagramEndpoint::sendto";
    detail::DatagramCore& c = core();
    c.enter(what);
    detail::DatagramCore::Address dest = detail::destination(c, to, what);
    if (c.connected) {
        // As asyncio: a connected endpoint sends to its remote only.
        if (!detail::same_address(dest, c.remote))
            throw std::invalid_argument(std::string("asyncfiber: ") + what + ": '" +
                                        to.to_string() + "' is not the connected remote " +
                                        detail::from_address(c.remote).to_string());
        c.send(data, n, nullptr, what);
        return;
    }
    c.send(data, n, &dest, what);
}

Datagram DatagramEndpoint::recvfrom(std::size_t max) {
    Datagram d;
    detail::DatagramCore& c = core();
    detail::DatagramCore::Received r =
        c.receive(nullptr, max, &d.data, "DatagramEndpoint::recvfrom");
    d.from = c.sender_address(r.from);
    d.truncated = r.length > max;
    return d;
}

DatagramInfo DatagramEndpoint::recvfrom_into(char* buffer, std::size_t size) {
    const char* what = "DatagramEndpoint::recvfrom_into";
    if (!buffer && size > 0)
        throw std::invalid_argument(std::string("asyncfiber: ") + what + ": null buffer");
    detail::DatagramCore& c = core();
    detail::DatagramCore::Received r = c.receive(buffer, size, nullptr, what);
    DatagramInfo info;
    info.size = r.stored;
    info.from = c.sender_address(r.from);
    info.truncated = r.length > size;
    return info;
}

SocketAddress DatagramEndpoint::local_address() const {
    detail::DatagramCore& c = core();
    c.check_thread("DatagramEndpoint::local_address");
    if (c.closed) return SocketAddress();
    boost::system::error_code ec;
    detail::DatagramCore::Address a = c.socket().local_endpoint(ec);
    return ec ? SocketAddress() : detail::from_address(a);
}

SocketAddress DatagramEndpoint::remote_address() const {
    detail::DatagramCore& c = core();
    return c.connected && !c.closed ? detail::from_address(c.remote) : SocketAddress();
}

void DatagramEndpoint::close() {
    detail::DatagramCore& c = core();
    c.check_thread("DatagramEndpoint::close");
    c.close();
}

bool DatagramEndpoint::is_closing() const { return core().closed; }

}  // namespace asyncfiber

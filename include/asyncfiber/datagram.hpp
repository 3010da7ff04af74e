// asyncfiber/datagram.hpp - UDP and Unix-domain datagram endpoints, like asyncio's
// loop.create_datagram_endpoint, as awaitable calls rather than a protocol class.
//
//   af::DatagramOptions o;
//   o.remote_host = "127.0.0.1";
//   o.remote_port = 5353;
//   af::DatagramEndpoint ep = af::create_datagram_endpoint(o);
//   ep.send("ping");
//   af::Datagram d = ep.recvfrom();   // d.data, d.from, d.truncated
//
// Every call that waits suspends only the calling task and is a cancellation point (so it
// works under af::timeout / af::wait_for). Nothing is lost to a cancellation: a cancelled
// recvfrom leaves every datagram for the next one, a cancelled send sent nothing. A datagram
// longer than the space given is cut and reported (`truncated`), never silently.
// System errors are thrown as std::system_error: ECONNREFUSED when an ICMP port unreachable
// came back for a connected endpoint (asyncio's ConnectionRefusedError), EMSGSIZE for a
// datagram too long to send, EDESTADDRREQ for send() on an endpoint that is not connected.
// Name resolution errors are boost::system::system_error (also a std::runtime_error).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>
#include <asyncfiber/net.hpp>

#include <cstddef>
#include <string>

namespace asyncfiber {

namespace detail {
class DatagramCore;
}

/// What create_datagram_endpoint binds and connects. IPv6 literals are written without
/// brackets ("::1"). asyncio's reuse_address is not offered, as asyncio no longer offers it
/// for UDP: SO_REUSEADDR would let another process take over the port; use reuse_port.
struct DatagramOptions {
    /// Bind here. Empty with remote_host set: whatever connecting picks (any interface of the
    /// remote's family, a free port unless local_port is set). Empty without remote_host:
    /// "0.0.0.0" (every IPv4 interface; "::" for IPv6).
    std::string local_host;
    unsigned short local_port = 0;  ///< 0: a free port
    /// Connect to here (a name is resolved without blocking the loop; each address is tried
    /// in turn): send() goes there and only its datagrams are received.
    std::string remote_host;
    unsigned short remote_port = 0;
    bool reuse_port = false;       ///< SO_REUSEPORT: several endpoints share one port
    bool allow_broadcast = false;  ///< SO_BROADCAST: may send to broadcast addresses
};

/// One received datagram.
struct Datagram {
    std::string data;        ///< its bytes (at most the `max` asked for)
    SocketAddress from;      ///< the sender (a Unix sender that is not bound: empty host)
    bool truncated = false;  ///< it was longer than `max`: the rest was discarded
};

/// One datagram received into the caller's buffer (recvfrom_into).
struct DatagramInfo {
    std::size_t size = 0;  ///< bytes written to the buffer
    SocketAddress from;
    bool truncated = false;  ///< it was longer than the buffer: the rest was discarded
};

/// A datagram socket (asyncio's DatagramTransport). Move-only: the endpoint owns its socket,
/// and destroying it closes the socket. It belongs to the loop that created it: using it from
/// another thread throws RuntimeError. A send() and a recvfrom() may wait at once in two tasks
/// (several tasks may even wait to receive: they are served in turn).
class DatagramEndpoint {
public:
    DatagramEndpoint() noexcept;
    DatagramEndpoint(DatagramEndpoint&&) noexcept;
    DatagramEndpoint& operator=(DatagramEndpoint&&) noexcept;
    DatagramEndpoint(const DatagramEndpoint&) = delete;
    DatagramEndpoint& operator=(const DatagramEndpoint&) = delete;
    /// Closes the socket; a task still waiting on it wakes with the error close() gives.
    /// Destroyed on another thread, it leaves the closing to its loop's thread.
    ~DatagramEndpoint();

    /// Sends one datagram to the connected remote (an empty one too). Waits only while the
    /// kernel has no room. Throws std::system_error with EDESTADDRREQ when not connected.
    void send(const std::string& data);
    void send(const char* data, std::size_t n);
    /// Sends one datagram to `to` (an address from recvfrom, or host and port; a host name is
    /// resolved). On a connected endpoint `to` must be the remote (std::invalid_argument
    /// otherwise), as asyncio requires.
    void sendto(const std::string& data, const SocketAddress& to);
    void sendto(const char* data, std::size_t n, const SocketAddress& to);
    /// Waits for the next datagram; at most `max` bytes of it are returned.
    Datagram recvfrom(std::size_t max = 65536);
    /// Waits for the next datagram and writes at most `size` bytes of it to `buffer`
    /// (asyncio's sock_recvfrom_into).
    DatagramInfo recvfrom_into(char* buffer, std::size_t size);

    /// The address bound (after connecting: the one the kernel picked).
    SocketAddress local_address() const;
    /// The connected remote; family none when not connected.
    SocketAddress remote_address() const;
    /// Closes the socket (idempotent). Tasks waiting in send or recvfrom wake with
    /// std::system_error (EBADF, "...: the endpoint was closed"), as does every later call.
    /// A Unix endpoint's socket file is removed.
    void close();
    bool is_closing() const;

    explicit operator bool() const noexcept { return static_cast<bool>(c_); }

private:
    friend struct detail::Access;
    using Share = detail::StateShare<detail::DatagramCore>;
    explicit DatagramEndpoint(detail::IntrusivePtr<Share> c) noexcept;
    detail::DatagramCore& core() const;
    detail::IntrusivePtr<Share> c_;  // a share in the socket's state, which its handlers share
};

/// A UDP endpoint (asyncio's loop.create_datagram_endpoint): bound to local_host/local_port,
/// connected to remote_host/remote_port if given. Throws std::system_error when binding or
/// connecting fails (e.g. EADDRINUSE), std::invalid_argument for a remote port without a
/// remote host.
DatagramEndpoint create_datagram_endpoint(const DatagramOptions& options);

/// A Unix-domain datagram endpoint bound to `local_path` (a stale socket file there is
/// replaced; the file is removed on close), connected to `remote_path` if given. An empty
/// `local_path` leaves the socket unbound: it can send, but nothing can answer it.
DatagramEndpoint create_unix_datagram_endpoint(std::string local_path,
                                               std::string remote_path = {});

}  // namespace asyncfiber

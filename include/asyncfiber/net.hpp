// asyncfiber/net.hpp - TCP and Unix-domain streams and servers, like asyncio's streams.
//
//   auto rw = af::open_connection("example.org", 80);
//   rw.second.write("GET / HTTP/1.0\r\n\r\n");
//   rw.second.drain();
//   std::string status = rw.first.readline();
//
// Every call that waits suspends only the calling task and is a cancellation point: a cancelled
// read throws af::CancelledError at once and leaves what was already buffered for the next read.
// System errors (connection refused, reset by peer...) are thrown as std::system_error; name
// resolution errors as boost::system::system_error (also a std::runtime_error).
#pragma once

#include <asyncfiber/task.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {
class StreamCore;
class StreamHandle;
struct ServerState;
}  // namespace detail

/// The buffer limit of a StreamReader unless told otherwise (asyncio's 64 KiB).
constexpr std::size_t default_stream_limit = 64 * 1024;

/// The address of one end of a stream. For Unix-domain sockets `host` is the path (possibly
/// empty for an unnamed socket) and `port` is 0.
struct SocketAddress {
    enum class Family { ipv4, ipv6, unix_domain, none };
    Family family = Family::none;
    std::string host;
    unsigned short port = 0;
    /// "127.0.0.1:80", "[::1]:80", the path of a Unix socket.
    std::string to_string() const;
};

/// The reading side of a stream (asyncio.StreamReader). A cheap handle: copies share the
/// stream. Only one task may wait on a given stream at a time (RuntimeError otherwise).
class StreamReader {
public:
    StreamReader() noexcept = default;

    /// Up to n bytes; waits until at least one byte is there. n < 0 reads until EOF. An empty
    /// string means EOF (or n == 0).
    std::string read(std::ptrdiff_t n = -1);
    /// Exactly n bytes; EOF first throws IncompleteReadError carrying what was read (which is
    /// then no longer buffered).
    std::string readexactly(std::size_t n);
    /// Up to and including "\n". At EOF returns what is left (possibly ""). Past the limit
    /// throws LimitOverrunError after discarding the line (or the whole buffer if no "\n").
    std::string readline();
    /// Up to and including `sep`. EOF first: IncompleteReadError with the whole buffer. No
    /// separator within limit() bytes: LimitOverrunError, and the data stays buffered.
    std::string readuntil(const std::string& sep = "\n");
    /// EOF was received and every byte before it has been read.
    bool at_eof() const;
    std::size_t limit() const;
    void set_limit(std::size_t bytes);
    /// Bytes received and not read yet.
    std::size_t buffered() const;

    explicit operator bool() const noexcept { return h_ != nullptr; }
    /// Internal.
    explicit StreamReader(std::shared_ptr<detail::StreamHandle> h) noexcept : h_(std::move(h)) {}

private:
    detail::StreamCore& core() const;
    std::shared_ptr<detail::StreamHandle> h_;
};

/// The writing side of a stream (asyncio.StreamWriter). A cheap handle: copies share it.
class StreamWriter {
public:
    StreamWriter() noexcept = default;

    /// Queues data and sends what the kernel takes now. Never suspends. Throws RuntimeError
    /// after close() or write_eof(); after the connection was lost the data is dropped and
    /// drain() reports the error.
    void write(const std::string& data);
    void write(const char* data, std::size_t n);
    /// Waits while more than the high-water mark is queued (back-pressure); throws the error
    /// that broke the connection (std::system_error), if any.
    void drain();
    /// Shuts the sending side down once the queued data is sent (half-close; sockets only).
    void write_eof();
    bool can_write_eof() const;
    /// Closes the stream once the queued data is sent. Idempotent. A connection accepted by a
    /// Server gives the data ServerOptions::close_timeout to go out, then is aborted; other
    /// streams wait for the peer as long as it takes (bound wait_closed() with af::timeout
    /// and call abort() for a limit of your own).
    void close();
    /// Closes the stream now (asyncio's transport.abort()): queued data is dropped, a TCP
    /// peer gets a reset (ECONNRESET) instead of an orderly end, a read waiting on this side
    /// gets EOF and drain() throws ECONNRESET. Idempotent; no-op once closed.
    void abort();
    bool is_closing() const;
    /// Waits until the stream is closed (its descriptor released).
    void wait_closed();
    /// Bytes queued and not sent yet.
    std::size_t write_buffer_size() const;
    /// drain() waits while more than `high` bytes are queued, until at most `low` are
    /// (defaults 64 KiB and 16 KiB; low = high / 4 if low is 0).
    void set_write_buffer_limits(std::size_t high, std::size_t low = 0);
    SocketAddress peer_address() const;
    SocketAddress local_address() const;

    explicit operator bool() const noexcept { return h_ != nullptr; }
    /// Internal.
    explicit StreamWriter(std::shared_ptr<detail::StreamHandle> h) noexcept : h_(std::move(h)) {}

private:
    detail::StreamCore& core() const;
    std::shared_ptr<detail::StreamHandle> h_;
};

/// Called in a new task for every accepted connection. When it returns (or throws: the
/// exception goes to the loop's exception handler) and no copy of the pair is kept, the
/// connection is closed once queued data is sent, or aborted once close_timeout has passed.
using ConnectionHandler = std::function<void(StreamReader, StreamWriter)>;

struct ServerOptions {
    std::size_t limit = default_stream_limit;  ///< each connection's reader limit
    int backlog = 100;
    bool reuse_port = false;  ///< SO_REUSEPORT
    /// How long a connection's close (its handler's end, StreamWriter::close(),
    /// Server::close_clients()) may wait for a peer to take the queued data; then the
    /// connection is aborted (reset) and its descriptor released. Clock::duration::max(): no
    /// limit. Negative: std::invalid_argument from start_server.
    Clock::duration close_timeout = std::chrono::seconds(30);
};

/// A listening server (asyncio.Server). A cheap handle: copies share it.
class Server {
public:
    Server() noexcept = default;

    /// The port of the first listening socket (0 for a Unix server).
    unsigned short port() const;
    /// Every address listened on.
    std::vector<SocketAddress> addresses() const;
    /// Stops accepting and closes the listening sockets; connections go on. Idempotent.
    void close();
    /// Closes every connection as its writer's close() does (asyncio 3.13): queued data
    /// still goes out within ServerOptions::close_timeout, a read waiting gets EOF once the
    /// connection is closed, a later write throws RuntimeError.
    void close_clients();
    /// Aborts every connection as StreamWriter::abort() does (asyncio 3.13).
    void abort_clients();
    bool is_serving() const;
    /// Waits until the server is closed, every connection task has ended and every
    /// connection is closed (its descriptor released), also one whose handler returned while
    /// its peer does not read: that waits at most ServerOptions::close_timeout.
    void wait_closed();
    /// Waits until close() is called elsewhere (then returns). If the calling task is
    /// cancelled, closes the server and rethrows.
    void serve_forever();

    explicit operator bool() const noexcept { return s_ != nullptr; }
    /// Internal.
    explicit Server(std::shared_ptr<detail::ServerState> s) noexcept : s_(std::move(s)) {}

private:
    detail::ServerState& state() const;
    std::shared_ptr<detail::ServerState> s_;
};

/// Connects over TCP. `host` is a name (resolved without blocking the loop) or an IPv4/IPv6
/// literal; each resolved address is tried in turn. Throws std::system_error (e.g.
/// connection refused) after the last one fails.
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host,
                                                      unsigned short port,
                                                      std::size_t limit = default_stream_limit);

/// Listens on every address `host` resolves to ("" or "*": every interface, IPv4 and IPv6;
/// "0.0.0.0" or "::": one family). Port 0 picks a free port.
Server start_server(ConnectionHandler handler, const std::string& host, unsigned short port,
                    const ServerOptions& options = {});

/// Connects to a Unix-domain stream socket.
std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path,
                                                           std::size_t limit = default_stream_limit);

/// Listens on a Unix-domain socket at `path` (a stale socket file there is replaced; the
/// file is removed on close()).
Server start_unix_server(ConnectionHandler handler, const std::string& path,
                         const ServerOptions& options = {});

}  // namespace asyncfiber

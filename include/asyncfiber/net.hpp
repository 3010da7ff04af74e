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
//
// TLS: ConnectOptions::ssl, ServerOptions::ssl and StreamWriter::start_tls take an
// af::SslContext (asyncfiber/tls.hpp, which also has the TLS errors).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/callback.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>
#include <asyncfiber/task.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {
class StreamCore;
class StreamHandle;
struct ServerState;
/// The reference count behind StreamReader/StreamWriter (lib/io/stream_writer.cpp).
void intrusive_add_ref(StreamHandle* h) noexcept;
void intrusive_release(StreamHandle* h) noexcept;
}  // namespace detail

class SslContext;

/// The buffer limit of a StreamReader unless told otherwise (asyncio's 64 KiB).
constexpr std::size_t default_stream_limit = 64 * 1024;

/// What a TLS connection negotiated (asyncio's get_extra_info("ssl_object") counterparts);
/// every field is empty for a plain connection.
struct TlsInfo {
    std::string version;               ///< "TLSv1.3", "TLSv1.2"
    std::string cipher;                ///< "TLS_AES_256_GCM_SHA384"
    std::string alpn_protocol;         ///< the protocol ALPN agreed on, "" if none
    std::string peer_certificate_pem;  ///< the certificate the peer presented, "" if none
};

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

    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

private:
    friend struct detail::Access;
    explicit StreamReader(detail::IntrusivePtr<detail::StreamHandle> h) noexcept
        : h_(std::move(h)) {}
    detail::StreamCore& core() const;
    detail::IntrusivePtr<detail::StreamHandle> h_;
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
    /// Not over TLS (as asyncio: RuntimeError; close() sends close_notify instead).
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

    /// Upgrades the connection to TLS in place (asyncio's start_tls): sends what is queued in
    /// the clear, then performs the handshake (as the client if this end connected, as the
    /// server if it was accepted) within the connection's TLS handshake timeout (60 s unless
    /// its ConnectOptions / ServerOptions said otherwise); the reader and writer go on over
    /// TLS. An empty `server_hostname` means the host connected to. Bytes already received
    /// stay readable as they are. A failed, timed-out or cancelled handshake closes the
    /// connection. Throws RuntimeError on a stream that is not a socket connection, is
    /// already TLS, or is closing; see tls.hpp for the TLS errors.
    void start_tls(const SslContext& context, std::string server_hostname = {});
    /// What the TLS handshake negotiated; empty fields for a plain connection.
    TlsInfo tls_info() const;

    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

private:
    friend struct detail::Access;
    explicit StreamWriter(detail::IntrusivePtr<detail::StreamHandle> h) noexcept
        : h_(std::move(h)) {}
    detail::StreamCore& core() const;
    detail::IntrusivePtr<detail::StreamHandle> h_;
};

/// Called in a new task for every accepted connection. When it returns (or throws: the
/// exception goes to the loop's exception handler) and no copy of the pair is kept, the
/// connection is closed once queued data is sent, or aborted once close_timeout has passed.
using ConnectionHandler = detail::Callback<void(StreamReader, StreamWriter)>;

struct ServerOptions {
    std::size_t limit = default_stream_limit;  ///< each connection's reader limit
    int backlog = 100;
    bool reuse_port = false;  ///< SO_REUSEPORT
    /// Serve TLS with this server-side context (SslContext::server() with a certificate and
    /// key). Each connection's handshake runs before the handler is called; a connection whose
    /// handshake fails or times out is closed without calling it (reported in debug mode).
    /// The server holds its own reference to the context.
    const SslContext* ssl = nullptr;
    /// How long a connection's TLS handshake may take (asyncio's default: 60 s).
    Clock::duration ssl_handshake_timeout = std::chrono::seconds(60);
    /// How long close() waits for the peer's close_notify before closing anyway (asyncio's
    /// ssl_shutdown_timeout, default 30 s).
    Clock::duration ssl_shutdown_timeout = std::chrono::seconds(30);
    /// How long a connection's close (its handler's end, StreamWriter::close(),
    /// Server::close_clients()) may wait for a peer to take the queued data; then the
    /// connection is aborted (reset) and its descriptor released. Clock::duration::max(): no
    /// limit. Negative: std::invalid_argument from start_server.
    Clock::duration close_timeout = std::chrono::seconds(30);
};

/// How open_connection / open_unix_connection connect. Name it when you pass it: a bare `{}`
/// would be ambiguous with the older `limit` overloads.
struct ConnectOptions {
    std::size_t limit = default_stream_limit;  ///< the reader's buffer limit
    /// Connect over TLS with this client-side context (SslContext::client(): the system's
    /// trusted CAs, peer verification, host-name check, TLS 1.2 minimum). The connection holds
    /// its own reference to the context.
    const SslContext* ssl = nullptr;
    /// The name the server's certificate must match, also sent as SNI (not for IP literals);
    /// empty means the host connected to. A Unix connection whose context checks host names
    /// must name one (std::invalid_argument otherwise).
    std::string server_hostname;
    /// How long the TLS handshake may take (then TimeoutError; asyncio's default: 60 s).
    Clock::duration ssl_handshake_timeout = std::chrono::seconds(60);
    /// How long close() waits for the peer's close_notify before closing anyway (30 s).
    Clock::duration ssl_shutdown_timeout = std::chrono::seconds(30);
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

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }

private:
    friend struct detail::Access;
    explicit Server(detail::IntrusivePtr<detail::StateShare<detail::ServerState>> s) noexcept
        : s_(std::move(s)) {}
    detail::ServerState& state() const;
    detail::IntrusivePtr<detail::StateShare<detail::ServerState>> s_;
};

/// Connects over TCP. `host` is a name (resolved without blocking the loop) or an IPv4/IPv6
/// literal; each resolved address is tried in turn. Throws std::system_error (e.g.
/// connection refused) after the last one fails.
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, unsigned short port,
                                                      std::size_t limit = default_stream_limit);
/// As above, with options; with `options.ssl` the TLS handshake is done before it returns
/// (TimeoutError past `ssl_handshake_timeout`, SslError / SslCertVerificationError when it
/// fails; the connection is closed then).
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, unsigned short port,
                                                      const ConnectOptions& options);

/// Listens on every address `host` resolves to ("" or "*": every interface, IPv4 and IPv6;
/// "0.0.0.0" or "::": one family). Port 0 picks a free port.
Server start_server(ConnectionHandler handler, const std::string& host, unsigned short port,
                    const ServerOptions& options = {});

/// Connects to a Unix-domain stream socket.
std::pair<StreamReader, StreamWriter> open_unix_connection(
    const std::string& path, std::size_t limit = default_stream_limit);
/// As above, with options (TLS as for open_connection; name `server_hostname` when the
/// context checks host names).
std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path,
                                                           const ConnectOptions& options);

/// Listens on a Unix-domain socket at `path` (a stale socket file there is replaced; the
/// file is removed on close()).
Server start_unix_server(ConnectionHandler handler, const std::string& path,
                         const ServerOptions& options = {});

}  // namespace asyncfiber

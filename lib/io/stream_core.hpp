// Internal: the transport under a StreamReader / StreamWriter pair: one non-blocking
// descriptor (a TCP or Unix socket, or one end of a pipe), its receive buffer and its send
// buffer.
//
// Reading: a read first tries the system call (until one finds nothing: then request/response
// traffic is assumed and Asio is asked directly); when the kernel has nothing the task parks
// with one Asio async_read_some outstanding per stream, into a landing buffer the core owns.
// Its handler appends what came to the receive buffer and wakes the reader if one still
// waits, so a cancelled read leaves at once (the core's default cancel path), the pending
// read is simply reused by the next one, and nothing received is ever lost; a late completion
// finds the core alive because every handler holds a reference to it. Writes go straight to the
// kernel when the send buffer is empty; what it does not take is queued and flushed from a
// write-readiness handler, outside any task, as asyncio's transports do.
//
// TLS (stream_tls.cpp) is a second transport behind the same buffers: once start_tls() has
// put a TlsChannel (an ssl::stream over the socket) in `tls_`, the pending read is an
// ssl::stream read into the same landing buffer, and the send buffer is flushed by
// ssl::stream writes, one record at a time; everything above the buffers (the reader's
// parsing, limits, drain(), cancellation) is the same code for both.
#pragma once

#include "asio_types.hpp"
#include "byte_buffer.hpp"
#include "io_objects.hpp"

#include <asyncfiber/detail/atomic_count.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/net.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <sys/un.h>
#include <memory>
#include <string>

namespace asyncfiber {
namespace detail {

struct TlsState;

/// Receive space made available per read (a system call, or the pending Asio read).
constexpr std::size_t kStreamReadChunk = 16 * 1024;

/// The one task that may wait for a stream to become readable (or writable), and whether
/// the completion it waits for came. Set from Asio handlers on the loop thread.
struct StreamWaiter {
    TaskBase* task = nullptr;
    bool fired = false;

    /// Wakes the waiting task, if any.
    void fire() noexcept {
        if (task) {
            fired = true;
            wake(task);
        }
    }
    /// Parks `self` until fire() or a cancellation; throws CancelledError for the latter.
    void park(TaskBase* self, const char* what) {
        task = self;
        fired = false;
        while (!fired && !self->must_cancel) suspend(self, what);
        task = nullptr;
        throw_if_cancelled(self);
    }
};

class StreamCore final : public std::enable_shared_from_this<StreamCore>, public IoLink {
public:
    enum class Kind { socket, pipe };
    /// Adopts `fd` (made non-blocking here). Throws if Asio cannot register it (the fd is
    /// closed then).
    StreamCore(LoopImpl* L, int fd, Kind kind, std::size_t limit);
    ~StreamCore();
    StreamCore(const StreamCore&) = delete;
    StreamCore& operator=(const StreamCore&) = delete;

    // ---- reading ----
    /// Receives more bytes into rbuf. False at EOF (or once closed); throws the read error.
    /// Draws on the calling task's budget (cooperate()).
    bool fill(const char* what);
    /// Throws RuntimeError if another task already waits to read this stream.
    void check_no_reader(const char* what) const;
    /// Appends bytes to rbuf as if received, and wakes a waiting reader (asyncio's
    /// feed_data; used by the received-data path and by af::debug::FedStream).
    void feed(const char* p, std::size_t n);
    /// Marks EOF as if received (asyncio's feed_eof).
    void feed_eof() noexcept;

    // ---- writing ----
    void write(const char* p, std::size_t n);
    void drain();
    void write_eof();
    /// Closes once the send buffer is empty, or after close_timeout with abort_with_reset().
    void close();
    /// Closes now, dropping what is queued.
    void abort() noexcept;
    /// asyncio's transport.abort() (StreamWriter::abort, a close past its limit, a server's
    /// abort_clients): abort() with SO_LINGER {1, 0}, so that a TCP peer gets a reset, not an
    /// orderly end that would pass the cut-off data for all there was.
    void abort_with_reset() noexcept;
    void wait_closed();
    /// Waits until the descriptor is writable (a non-blocking connect in progress).
    void wait_writable(const char* what);

    void close_for_loop() noexcept override { abort(); }

    // ---- TLS (stream_tls.cpp) ----
    /// Which end of a connection this is; start_tls() takes its TLS role from it.
    enum class Role { none, client, server };
    /// Upgrades the connection in place: flushes what is queued, then handshakes within
    /// `tls_handshake_timeout`. Closes the stream if the handshake fails, times out or is
    /// cancelled.
    void start_tls(const SslContext& context, const std::string& server_hostname);
    bool is_tls() const noexcept { return tls_ != nullptr; }
    TlsInfo tls_info() const;

    LoopImpl* loop;
    int fd;
    Kind kind;
    Role role = Role::none;
    std::string peer_host;  // the host a client connected to: its default TLS server name
    Clock::duration tls_handshake_timeout = std::chrono::seconds(60);
    Clock::duration tls_shutdown_timeout = std::chrono::seconds(30);
    bool closing = false;  // close() was called
    bool closed = false;   // the descriptor is closed
    // read side
    ByteBuffer rbuf;
    std::size_t limit;
    bool eof = false;
    std::exception_ptr rerror;
    // write side
    ByteBuffer wbuf;
    std::size_t high = 64 * 1024;
    std::size_t low = 16 * 1024;
    std::exception_ptr werror;
    bool eof_requested = false;
    bool eof_sent = false;
    // closing
    /// How long close() lets queued bytes go out before abort_with_reset() (a server's
    /// close_timeout); max(): no limit.
    Clock::duration close_timeout = Clock::duration::max();
    /// Called once, when the descriptor has been closed (a server counts its connections).
    std::function<void()> on_closed;

private:
    bool receive(const char* what);
    void arm_read();
    void wake_reader() noexcept;
    void on_read(const boost::system::error_code& ec, std::size_t n) noexcept;
    void arm_write();
    void on_writable() noexcept;
    void flush() noexcept;
    /// Sends what it can; returns bytes sent, 0 if the kernel would block, -1 after an error
    /// (werror set, stream aborted).
    long send_some(const char* p, std::size_t n) noexcept;
    void fail_write(int err) noexcept;
    void fail_write(std::exception_ptr e) noexcept;
    void wake_drainers() noexcept;
    void arm_close_timer() noexcept;
    /// Parks until the send buffer is empty; throws the write error, if any.
    void wait_flushed(const char* what);
    // TLS transport (stream_tls.cpp)
    void tls_read_some();  // arm_read() over TLS
    void tls_read_failed(const boost::system::error_code& ec) noexcept;
    void tls_flush() noexcept;
    void on_tls_written(const boost::system::error_code& ec, std::size_t n) noexcept;
    void tls_begin_close() noexcept;
    void tls_abort() noexcept;
    std::string describe_peer() const;

    std::unique_ptr<StreamSocket> sock_;  // sockets
    std::unique_ptr<Descriptor> desc_;    // pipes
    StreamWaiter reader_;
    bool rarmed_ = false;
    bool read_would_block_ = false;
    std::unique_ptr<char[]> landing_;  // where the pending asynchronous read writes
    StreamWaiter writer_;
    bool warmed_ = false;
    List drainers_;
    List closers_;
    std::unique_ptr<TlsState> tls_;  // set by start_tls(): the TLS transport
    Handle close_timer_;
};

/// What the user's StreamReader / StreamWriter share: when the last copy goes, the stream
/// is closed gracefully (queued bytes still go out).
class StreamHandle {
public:
    explicit StreamHandle(std::shared_ptr<StreamCore> c) noexcept : core(std::move(c)) {}
    ~StreamHandle() {
        if (core) core->close();
    }
    StreamHandle(const StreamHandle&) = delete;
    StreamHandle& operator=(const StreamHandle&) = delete;
    std::shared_ptr<StreamCore> core;
    AtomicCount refs;  // the user's copies (IntrusivePtr)
};

/// A reader/writer pair over one new stream.
std::pair<StreamReader, StreamWriter> make_stream_pair(std::shared_ptr<StreamCore> core);

/// Throws std::system_error for errno `err`.
[[noreturn]] void throw_errno(int err, const std::string& what);

/// The address of a Unix-domain socket at `path`; throws (ENAMETOOLONG, naming `who`) for an
/// empty path or one too long for sun_path, std::invalid_argument for a file-system path
/// with a NUL byte inside (a leading NUL names an abstract socket).
sockaddr_un unix_address(const std::string& path, const char* who);

/// Throws std::invalid_argument, naming `who`, for a stream buffer limit of 0 (asyncio's
/// "Limit cannot be <= 0").
void check_stream_limit(std::size_t limit, const char* who);

/// Sets O_NONBLOCK and FD_CLOEXEC.
void set_nonblocking(int fd);

/// Sets TCP_NODELAY: small echoes and request/response exchanges must not wait for Nagle's
/// algorithm (asyncio sets it on every TCP transport too).
void set_nodelay(int fd);

}  // namespace detail
}  // namespace asyncfiber

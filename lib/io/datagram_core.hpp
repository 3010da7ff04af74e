// Internal: the socket under an af::DatagramEndpoint (UDP or Unix-domain datagrams) and the
// tasks waiting on it.
//
// Receiving: a recvfrom first takes a datagram that already landed, else tries the socket at
// once; when the kernel has nothing the task parks with one Asio async_receive_from
// outstanding per socket. For UDP that operation receives into a landing buffer the core owns
// (64 KiB: every UDP datagram fits whole, IPv6's included), so whatever it takes is kept: if
// the task that waited was cancelled meanwhile, the datagram waits there for the next
// recvfrom. A Unix datagram can be longer than any landing buffer, so for Unix sockets the
// operation only peeks (MSG_PEEK, no bytes) and the woken task receives the datagram itself;
// a cancelled waiter leaves it in the kernel. Either way a cancelled recvfrom takes nothing,
// and the order of datagrams is kept: nobody tries the socket while the operation is
// outstanding or a landed datagram is waiting. MSG_TRUNC makes every receive return the
// datagram's whole length, which tells a truncated datagram.
//
// Sending goes straight to the kernel; when it has no room, the task waits for writability
// with af::use_await (a cancelled wait sends nothing), then tries again.
//
// Completion handlers hold a reference to the core, so a late completion finds it alive;
// a task that parks holds one too, so destroying the endpoint while it waits is safe.
#pragma once

#include "asio_types.hpp"
#include "io_objects.hpp"

#include <asyncfiber/datagram.hpp>
#include <asyncfiber/detail/suspend.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

namespace asyncfiber {
namespace detail {

class DatagramCore final : public std::enable_shared_from_this<DatagramCore>, public IoLink {
public:
    using Protocol = boost::asio::generic::datagram_protocol;
    using Address = Protocol::endpoint;

    /// Bytes of the landing buffer: the longest UDP datagram (65 527 bytes over IPv6) fits.
    static constexpr std::size_t kLanding = 64 * 1024;

    /// Opens a datagram socket of `family` (AF_INET, AF_INET6 or AF_UNIX), non-blocking and
    /// close-on-exec, registered with the loop (closed by Loop::close).
    DatagramCore(LoopImpl* L, int family);
    ~DatagramCore();
    DatagramCore(const DatagramCore&) = delete;
    DatagramCore& operator=(const DatagramCore&) = delete;

    // ---- set-up (before the endpoint is handed out) ----
    DatagramSocket& socket() noexcept { return *sock_; }
    /// Binds; for a Unix socket, remembers the path to remove on close.
    void bind(const Address& a, const std::string& unix_path, const std::string& what);
    void connect(const Address& a, const std::string& what);

    // ---- I/O; each checks the thread, the task and the state first ----
    /// Sends one datagram to `to`, or to the connected remote when `to` is null.
    void send(const char* p, std::size_t n, const Address* to, const char* what);

    struct Received {
        std::size_t stored = 0;  // bytes given to the caller
        std::size_t length = 0;  // the datagram's whole length
        Address from;
    };
    /// Receives the next datagram: at most `cap` bytes of it go to `dst`, or, when `out` is
    /// not null, to *out (then `dst` is unused).
    Received receive(char* dst, std::size_t cap, std::string* out, const char* what);

    /// `a` (a sender's address) as a SocketAddress. The last one is remembered: a connected
    /// endpoint, or a server talking to one peer, converts it once.
    const SocketAddress& sender_address(const Address& a);

    /// The calling task, after checking that it runs on this core's loop and that the core is
    /// open; throws a pending cancellation. Every send and receive passes here first, also
    /// those that then complete without suspending.
    TaskBase* enter(const char* what);
    /// True on the loop's thread (or, while the loop is not running, the thread that made the
    /// endpoint), or once closed: then nothing of the loop is touched any more.
    bool on_own_thread() const noexcept;
    /// Throws RuntimeError unless on_own_thread().
    void check_thread(const char* what) const;

    /// Closes the socket; waiting tasks wake with closed_error. Idempotent.
    void close() noexcept;
    void close_for_loop() noexcept override { close(); }
    /// std::system_error (EBADF) saying that the endpoint was closed.
    [[noreturn]] static void throw_closed(const char* what);

    LoopImpl* const loop;
    const int family;
    std::atomic<bool> closed{false};  // read by ~DatagramEndpoint on any thread
    bool connected = false;
    Address remote;         // when connected
    std::string unix_path;  // a bound Unix socket's file, removed on close

private:
    void arm_receive();
    void on_landed(const boost::system::error_code& ec, std::size_t n) noexcept;
    /// Receives at once into dst (cap bytes) or *out; false if the kernel has nothing.
    bool try_receive(char* dst, std::size_t cap, std::string* out, Received& r, const char* what);
    /// Hands the landed datagram (or error) to the caller; false if a peeked one was gone.
    bool take_landed(char* dst, std::size_t cap, std::string* out, Received& r, const char* what);
    /// After a receiver took what landed: the next waiting receiver needs the operation again.
    void rearm_for_waiters();
    /// A notified receiver left by cancellation: what was meant for it goes to the next one.
    void pass_on() noexcept;
    char* landing();

    // Asio objects of the loop's io_context: released by close(), so that an endpoint that
    // outlives its loop touches none of it.
    std::unique_ptr<DatagramSocket> sock_;
    std::unique_ptr<boost::asio::steady_timer> backoff_;  // see kSendBackoffFirst
    const std::thread::id owner_thread_ = std::this_thread::get_id();
    bool peek_only_;  // Unix sockets: the pending operation peeks, the task receives

    // The outstanding receive and what it brought.
    bool rarmed_ = false;
    bool would_block_ = false;  // the last try found nothing: go to the operation directly
    unsigned since_try_ = 0;    // receives since, to try again now and then (kTryEvery)
    std::unique_ptr<char[]> landing_;
    std::size_t landing_size_ = 0;
    Address landing_from_;
    bool landed_ = false;    // a datagram (or an error) is waiting to be taken
    bool promised_ = false;  // ... and a woken receiver is on its way to take it
    boost::system::error_code landed_ec_;
    std::size_t landed_length_ = 0;
    List receivers_;  // Waiter nodes of the tasks waiting to receive, in arrival order

    Address last_sender_;
    SocketAddress last_sender_text_;
};

/// Throws std::system_error for a system error code, boost::system::system_error otherwise.
[[noreturn]] void throw_asio_error(const boost::system::error_code& ec, const std::string& what);

}  // namespace detail
}  // namespace asyncfiber

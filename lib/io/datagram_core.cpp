// The datagram socket: sending, the receive path with its landing buffer, closing.
#include "datagram_core.hpp"

#include "socket_address.hpp"
#include "stream_core.hpp"

#include <asyncfiber/bridge.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace asyncfiber {
namespace detail {

namespace {

// A send that finds the kernel full again right after it reported room (a Unix socket
// sending to a peer whose queue is full is reported writable all along) waits this long
// before the next try, doubling up to the cap: a busy retry would spin the loop.
constexpr auto kSendBackoffFirst = std::chrono::milliseconds(1);
constexpr auto kSendBackoffCap = std::chrono::milliseconds(64);

// After a receive found the kernel empty, the next ones go straight to Asio's operation, whose
// first step is the same receive (Asio tries it before waiting): a request/response client,
// whose answer is never there yet, then pays one failed system call per datagram, not two.
// Every kTryEvery-th receive tries the kernel itself again, so that a socket whose queue has
// filled up (a busy server) goes back to receiving without suspending: through the operation
// each datagram costs a suspension and a trip through Asio's handler queue.
constexpr unsigned kTryEvery = 8;

bool kernel_has_nothing(const boost::system::error_code& ec) {
    return ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

}  // namespace

void throw_asio_error(const boost::system::error_code& ec, const std::string& what) {
    if (ec.category() == boost::system::system_category())
        throw std::system_error(ec.value(), std::system_category(), what);
    throw boost::system::system_error(ec, what);
}

DatagramCore::DatagramCore(LoopImpl* L, int fam)
    : loop(L),
      family(fam),
      sock_(new DatagramSocket(L->io->context())),
      backoff_(new boost::asio::steady_timer(L->io->context())),
      peek_only_(fam == AF_UNIX) {
    // Asio opens sockets without close-on-exec, which a child process must not inherit; so
    // the descriptor is made here, with both flags set atomically, and handed to Asio.
    int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_errno(errno, "socket");
    boost::system::error_code ec;
    sock_->assign(Protocol(family, 0), fd, ec);
    if (ec) {
        ::close(fd);
        throw_asio_error(ec, "socket");
    }
    sock_->non_blocking(true, ec);  // Asio's own calls then return would_block, never block
    if (ec) throw_asio_error(ec, "socket");
    io_objects(L).live.push_back(this);
}

DatagramCore::~DatagramCore() { close(); }

void DatagramCore::bind(const Address& a, const std::string& path, const std::string& what) {
    boost::system::error_code ec;
    sock_->bind(a, ec);
    if (ec) throw_asio_error(ec, what);
    unix_path = path;
}

void DatagramCore::connect(const Address& a, const std::string& what) {
    boost::system::error_code ec;
    sock_->connect(a, ec);
    if (ec) throw_asio_error(ec, what);
    connected = true;
    remote = a;
}

// ---- threads and states ----

bool DatagramCore::on_own_thread() const noexcept {
    if (closed) return true;
    LoopImpl* cur = current_loop();
    return cur == loop || (cur == nullptr && std::this_thread::get_id() == owner_thread_);
}

void DatagramCore::check_thread(const char* what) const {
    if (on_own_thread()) return;
    throw RuntimeError(std::string("asyncfiber: ") + what +
                       " called from another thread than its loop's (an endpoint belongs to the "
                       "loop that created it)");
}

void DatagramCore::throw_closed(const char* what) {
    throw std::system_error(EBADF, std::system_category(),
                            std::string(what) + ": the endpoint was closed");
}

TaskBase* DatagramCore::enter(const char* what) {
    if (current_loop()) check_thread(what);
    TaskBase* self = current_task_checked(what);  // outside any running loop: says so
    if (closed) throw_closed(what);
    throw_if_cancelled(self);
    // A datagram sent or received at once draws on the budget, as a stream operation does:
    // before it, so that a cancellation at the yield takes nothing.
    cooperate(self);
    return self;
}

// ---- sending ----

void DatagramCore::send(const char* p, std::size_t n, const Address* to, const char* what) {
    enter(what);
    if (!to && !connected)
        throw std::system_error(EDESTADDRREQ, std::system_category(),
                                std::string(what) + ": the endpoint is not connected (use sendto)");
    auto backoff = Clock::duration::zero();
    for (bool waited = false;;) {
        boost::system::error_code ec;
        std::size_t sent = to ? sock_->send_to(boost::asio::buffer(p, n), *to, 0, ec)
                              : sock_->send(boost::asio::buffer(p, n), 0, ec);
        if (!ec) {
            if (sent != n)  // a datagram goes whole or not at all
                throw std::system_error(EMSGSIZE, std::system_category(), what);
            return;
        }
        if (ec == boost::asio::error::interrupted) continue;
        if (!kernel_has_nothing(ec)) throw_asio_error(ec, what);
        // No room. Wait for writability; if the kernel was full again at once after it,
        // back off instead (see kSendBackoffFirst). Nothing was sent, so a cancellation
        // here loses nothing.
        std::shared_ptr<DatagramCore> keep = shared_from_this();
        if (waited)
            backoff = backoff == Clock::duration::zero()
                          ? Clock::duration(kSendBackoffFirst)
                          : std::min<Clock::duration>(backoff * 2, kSendBackoffCap);
        boost::system::error_code wec;
        if (backoff != Clock::duration::zero()) {
            // Another sender backing off too restarts the timer, waking this one early: it
            // merely tries again sooner. close() cancels it.
            backoff_->expires_after(backoff);
            backoff_->async_wait(use_await[wec]);
        } else {
            sock_->async_wait(DatagramSocket::wait_write, use_await[wec]);
        }
        if (closed) throw_closed(what);
        waited = true;
    }
}

// ---- receiving ----

char* DatagramCore::landing() {
    if (!landing_) {
        landing_.reset(new char[kLanding]);
        landing_size_ = kLanding;
    }
    return landing_.get();
}

void DatagramCore::arm_receive() {
    if (rarmed_ || landed_ || closed) return;
    rarmed_ = true;
    std::shared_ptr<DatagramCore> self = shared_from_this();
    auto done = [self](const boost::system::error_code& ec, std::size_t n) {
        self->on_landed(ec, n);
    };
    if (peek_only_)
        sock_->async_receive_from(boost::asio::buffer(landing(), 0), landing_from_,
                                  MSG_PEEK | MSG_TRUNC, std::move(done));
    else
        sock_->async_receive_from(boost::asio::buffer(landing(), kLanding), landing_from_,
                                  MSG_TRUNC, std::move(done));
}

void DatagramCore::on_landed(const boost::system::error_code& ec, std::size_t n) noexcept {
    rarmed_ = false;
    if (closed) return;  // close() woke every receiver
    if (ec == boost::asio::error::operation_aborted) {
        rearm_for_waiters();
        return;
    }
    landed_ = true;
    landed_ec_ = ec;
    landed_length_ = n;
    if (notify_first(receivers_)) promised_ = true;
}

void DatagramCore::rearm_for_waiters() {
    if (!receivers_.empty()) arm_receive();
}

void DatagramCore::pass_on() noexcept {
    promised_ = false;
    if (landed_ && !closed && notify_first(receivers_)) promised_ = true;
}

bool DatagramCore::try_receive(char* dst, std::size_t cap, std::string* out, Received& r,
                               const char* what) {
    for (;;) {
        boost::system::error_code ec;
        if (out) {
            // Into the landing buffer (free: no operation is outstanding), then the exact
            // bytes to the string. A Unix datagram may be longer than the buffer: when more
            // is asked for, its length is peeked first and the buffer grows to fit.
            dst = landing();
            if (peek_only_ && cap > landing_size_) {
                std::size_t len = sock_->receive_from(boost::asio::buffer(dst, 0), r.from,
                                                      MSG_PEEK | MSG_TRUNC, ec);
                if (ec == boost::asio::error::interrupted) continue;
                if (kernel_has_nothing(ec)) return false;
                if (ec) throw_asio_error(ec, what);
                if (std::min(cap, len) > landing_size_) {
                    landing_.reset(new char[std::min(cap, len)]);
                    landing_size_ = std::min(cap, len);
                    dst = landing_.get();
                }
            }
            cap = std::min(cap, landing_size_);
        }
        std::size_t len = sock_->receive_from(boost::asio::buffer(dst, cap), r.from, MSG_TRUNC, ec);
        if (ec == boost::asio::error::interrupted) continue;
        if (kernel_has_nothing(ec)) return false;
        if (ec) throw_asio_error(ec, what);
        r.length = len;
        r.stored = std::min(len, cap);
        if (out) out->assign(dst, r.stored);
        return true;
    }
}

bool DatagramCore::take_landed(char* dst, std::size_t cap, std::string* out, Received& r,
                               const char* what) {
    landed_ = false;
    promised_ = false;
    if (landed_ec_) {
        boost::system::error_code ec = landed_ec_;
        landed_ec_.clear();
        rearm_for_waiters();
        throw_asio_error(ec, what);
    }
    if (peek_only_) {
        // A datagram is there (peeked): receive it now, into the caller's space.
        bool got;
        try {
            got = try_receive(dst, cap, out, r, what);
        } catch (...) {
            rearm_for_waiters();
            throw;
        }
        rearm_for_waiters();
        return got;
    }
    r.length = landed_length_;
    r.from = landing_from_;
    r.stored = std::min({landed_length_, cap, kLanding});
    if (out)
        out->assign(landing_.get(), r.stored);
    else if (r.stored > 0)
        std::memcpy(dst, landing_.get(), r.stored);
    rearm_for_waiters();  // only now: the operation writes into the landing buffer
    return true;
}

DatagramCore::Received DatagramCore::receive(char* dst, std::size_t cap, std::string* out,
                                             const char* what) {
    TaskBase* self = enter(what);
    Received r;
    for (;;) {
        if (landed_ && !promised_) {
            if (take_landed(dst, cap, out, r, what)) return r;
        } else if (!rarmed_ && !landed_ && receivers_.empty() &&
                   (!would_block_ || ++since_try_ % kTryEvery == 0)) {
            if (try_receive(dst, cap, out, r, what)) {
                would_block_ = false;
                return r;
            }
            would_block_ = true;
        }
        // Wait for the operation, behind the receivers already waiting.
        std::shared_ptr<DatagramCore> keep = shared_from_this();
        Waiter w(self);
        receivers_.push_back(&w);
        arm_receive();
        try {
            park(w, what);
        } catch (...) {
            if (w.notified) pass_on();
            throw;
        }
        if (closed) throw_closed(what);
        // Notified: what landed is ours (promised_ keeps newcomers off it).
        if (take_landed(dst, cap, out, r, what)) return r;
    }
}

const SocketAddress& DatagramCore::sender_address(const Address& a) {
    if (a.size() != last_sender_.size() ||
        std::memcmp(a.data(), last_sender_.data(), a.size()) != 0) {
        last_sender_text_ = to_socket_address(a.data(), static_cast<socklen_t>(a.size()));
        last_sender_ = a;
    }
    return last_sender_text_;
}

// ---- closing ----

void DatagramCore::close() noexcept {
    if (closed) return;
    closed = true;
    unlink();
    // Pending operations complete with operation_aborted; their handlers hold a reference.
    boost::system::error_code ec;
    sock_->close(ec);
    sock_.reset();
    backoff_->cancel(ec);
    backoff_.reset();
    if (!unix_path.empty()) ::unlink(unix_path.c_str());
    landed_ = false;
    promised_ = false;
    notify_all(receivers_);
}

}  // namespace detail
}  // namespace asyncfiber

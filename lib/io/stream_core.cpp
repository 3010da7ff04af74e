// The stream transport: readiness waits, the receive path and the send buffer.
#include "stream_core.hpp"
#include "stream_tls.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <time.h>
#include <unistd.h>

namespace asyncfiber {
namespace detail {

namespace {

// A stream operation draws one unit of its task's budget, and one more per this many bytes
// it receives or sends: a budget measures work, and 128 reads of 64 KiB would hold the loop for
// milliseconds. So a budget moves at most 256 KiB of stream data, as much as asyncio's
// transports receive in one loop iteration (bench/fairness.sh, docs/performance.md).
constexpr std::size_t kBytesPerBudgetUnit = 2 * 1024;

// A write to a pipe whose reader is gone raises SIGPIPE, which kills the process by default.
// Sockets avoid it with MSG_NOSIGNAL; for pipes the signal is blocked around the write and,
// if the write raised it, taken back, so the process-wide disposition is never touched.
ssize_t write_no_sigpipe(int fd, const char* p, std::size_t n) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = ::write(fd, p, n);
    int err = errno;
    if (r < 0 && err == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    errno = err;
    return r;
}

}  // namespace

void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

sockaddr_un unix_address(const std::string& path, const char* who) {
    sockaddr_un un;
    std::memset(&un, 0, sizeof un);
    if (path.empty() || path.size() >= sizeof un.sun_path)
        throw_errno(ENAMETOOLONG, std::string(who) + ": bad path '" + path + "'");
    if (path[0] != '\0' && path.find('\0') != std::string::npos)
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": a NUL byte inside the path");
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    return un;
}

void check_stream_limit(std::size_t limit, const char* who) {
    if (limit == 0)
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": a stream limit must be positive");
}

void set_nonblocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_errno(errno, "fcntl");
    int fdfl = ::fcntl(fd, F_GETFD);
    if (fdfl >= 0) ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
}

void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

StreamCore::StreamCore(LoopImpl* L, int f, Kind k, std::size_t lim)
    : loop(L), fd(f), kind(k), limit(lim) {
    try {
        set_nonblocking(fd);
        if (kind == Kind::socket) {
            // A socket object, not a descriptor, so that Asio receives with recv(): the
            // socket path in the kernel is shorter than read()'s.
            int domain = AF_INET, proto = 0;
            socklen_t len = sizeof domain;
            ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
            len = sizeof proto;
            ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
            sock_.reset(new StreamSocket(L->io->context(),
                                         boost::asio::generic::stream_protocol(domain, proto), fd));
        } else {
            desc_.reset(new Descriptor(L->io->context(), fd));
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    io_objects(L).live.push_back(this);
}

StreamCore::~StreamCore() { abort(); }

// ---- reading ----

void StreamCore::arm_read() {
    if (rarmed_ || closed) return;
    rarmed_ = true;
    if (!landing_) landing_.reset(new char[kStreamReadChunk]);
    if (tls_) {
        tls_read_some();
        return;
    }
    std::shared_ptr<StreamCore> self = shared_from_this();
    // A real read, not async_wait: Asio 1.74 re-registers the descriptor with epoll_ctl for
    // every wait, while a read it may try at once and keeps registered.
    auto done = [self](const boost::system::error_code& ec, std::size_t n) {
        self->on_read(ec, n);
    };
    if (sock_)
        sock_->async_read_some(boost::asio::buffer(landing_.get(), kStreamReadChunk),
                               std::move(done));
    else
        desc_->async_read_some(boost::asio::buffer(landing_.get(), kStreamReadChunk),
                               std::move(done));
}

void StreamCore::on_read(const boost::system::error_code& ec, std::size_t n) noexcept {
    rarmed_ = false;
    if (!closed) {
        if (n > 0) {
            try {
                rbuf.append(landing_.get(), n);
            } catch (...) {
                rerror = std::current_exception();
            }
            // A full landing buffer suggests more is waiting: try the system call first again.
            if (n == kStreamReadChunk) read_would_block_ = false;
        } else if (ec == boost::asio::error::eof) {
            eof = true;  // over TLS: the peer's close_notify
        } else if (ec && ec != boost::asio::error::operation_aborted && tls_ && tls_->channel) {
            tls_read_failed(ec);
        } else if (ec && ec != boost::asio::error::operation_aborted) {
            try {
                rerror = std::make_exception_ptr(
                    std::system_error(ec.value(), std::system_category(), "read"));
            } catch (...) {
                rerror = std::current_exception();
            }
        }
    }
    wake_reader();
    if (tls_) {
        // A start_tls() that waited for this plain read to end goes on, and so does a
        // close() that waited for this read (see tls_begin_close).
        tls_->handshaker.fire();
        if (closing && !closed) tls_begin_close();
    }
}

void StreamCore::wake_reader() noexcept { reader_.fire(); }

void StreamCore::feed(const char* p, std::size_t n) {
    rbuf.append(p, n);
    wake_reader();
}

void StreamCore::feed_eof() noexcept {
    eof = true;
    wake_reader();
}

void StreamCore::check_no_reader(const char* what) const {
    if (reader_.task)
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " called while another task is already waiting to read this stream");
}

bool StreamCore::fill(const char* what) {
    // Each receive draws on the task's budget (a peer that always has data never makes it
    // wait): a unit before it (so that what was received stays in rbuf if a cancellation
    // lands at the yield), and one per kBytesPerBudgetUnit it brought.
    cooperate_if_in_task();
    const std::size_t before = rbuf.size();
    const bool more = receive(what);
    spend_budget_if_in_task((rbuf.size() - before) / kBytesPerBudgetUnit);
    return more;
}

bool StreamCore::receive(const char* what) {
    const std::size_t before = rbuf.size();
    for (;;) {
        if (rbuf.size() > before) return true;  // a read completed (possibly a cancelled one's)
        if (rerror) std::rethrow_exception(rerror);
        if (eof) return false;
        // Over TLS, close() ends reading at once: the close_notify exchange takes the socket.
        if (closed || (tls_ && closing)) {
            eof = true;
            return false;
        }
        if (!tls_ && !rarmed_ && !read_would_block_) {
            // Try the system call first: bulk transfers find data waiting.
            char* p = rbuf.prepare(kStreamReadChunk);
            ssize_t r =
                kind == Kind::socket ? ::recv(fd, p, rbuf.room(), 0) : ::read(fd, p, rbuf.room());
            if (r > 0) {
                rbuf.commit(static_cast<std::size_t>(r));
                return true;
            }
            if (r == 0) {
                eof = true;
                return false;
            }
            int err = errno;
            if (err == EINTR) continue;
            if (err != EAGAIN && err != EWOULDBLOCK) {
                rerror =
                    std::make_exception_ptr(std::system_error(err, std::system_category(), "read"));
                continue;
            }
            // Request/response traffic: from now on let Asio try the read when it arms.
            read_would_block_ = true;
        }
        // Park until the pending read completes (or the stream closes, or cancellation). Its
        // bytes land in rbuf even if this task has left by then, so none are lost.
        TaskBase* self = current_task_checked(what);
        throw_if_cancelled(self);
        check_no_reader(what);
        // During a TLS handshake the reader waits for it; its end wakes the reader.
        if (!tls_ || tls_->ready) arm_read();
        reader_.park(self, what);
    }
}

// ---- writing ----

void StreamCore::arm_write() {
    if (warmed_ || closed) return;
    warmed_ = true;
    std::shared_ptr<StreamCore> self = shared_from_this();
    auto done = [self](const boost::system::error_code&) {
        self->warmed_ = false;
        self->on_writable();
    };
    if (sock_)
        sock_->async_wait(boost::asio::socket_base::wait_write, std::move(done));
    else
        desc_->async_wait(Descriptor::wait_write, std::move(done));
}

void StreamCore::on_writable() noexcept {
    if (writer_.task) {
        writer_.fire();
        return;
    }
    if (!closed) flush();
}

void StreamCore::wait_writable(const char* what) {
    TaskBase* self = current_task_checked(what);
    throw_if_cancelled(self);
    arm_write();
    writer_.park(self, what);
}

long StreamCore::send_some(const char* p, std::size_t n) noexcept {
    for (;;) {
        ssize_t r =
            kind == Kind::socket ? ::send(fd, p, n, MSG_NOSIGNAL) : write_no_sigpipe(fd, p, n);
        if (r >= 0) return static_cast<long>(r);
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return 0;
        fail_write(err);
        return -1;
    }
}

void StreamCore::fail_write(int err) noexcept {
    try {
        fail_write(
            std::make_exception_ptr(std::system_error(err, std::system_category(), "write")));
    } catch (...) {
        fail_write(std::current_exception());
    }
}

void StreamCore::fail_write(std::exception_ptr e) noexcept {
    werror = std::move(e);
    // As asyncio's transports: a failed send loses the connection. Bytes already received
    // stay readable; a read that needs more gets the error.
    if (!eof && !rerror) rerror = werror;
    abort();
}

void StreamCore::flush() noexcept {
    if (tls_) {  // a write-readiness wait armed before start_tls() ended
        tls_flush();
        return;
    }
    while (!wbuf.empty()) {
        long r = send_some(wbuf.data(), wbuf.size());
        if (r < 0) return;  // aborted, drainers woken
        if (r == 0) break;
        wbuf.consume(static_cast<std::size_t>(r));
    }
    if (!wbuf.empty()) arm_write();
    if (wbuf.size() <= low) wake_drainers();
    if (wbuf.empty()) {
        if (eof_requested && !eof_sent) {
            eof_sent = true;
            ::shutdown(fd, SHUT_WR);
        }
        if (closing) abort();
    }
}

void StreamCore::write(const char* p, std::size_t n) {
    spend_budget_if_in_task(1 + n / kBytesPerBudgetUnit);
    if (closing) throw RuntimeError("asyncfiber: StreamWriter::write after close()");
    if (closed || werror) return;  // connection lost: drain() reports it
    if (eof_requested) throw RuntimeError("asyncfiber: StreamWriter::write after write_eof()");
    if (n == 0) return;
    if (tls_) {
        wbuf.append(p, n);
        tls_flush();
        return;
    }
    if (wbuf.empty() && !writer_.task) {
        long r = send_some(p, n);
        if (r < 0) return;
        p += r;
        n -= static_cast<std::size_t>(r);
        if (n == 0) return;
    }
    wbuf.append(p, n);
    arm_write();
}

void StreamCore::wake_drainers() noexcept { notify_all(drainers_); }

void StreamCore::wait_flushed(const char* what) {
    TaskBase* self = current_task_checked(what);
    for (;;) {
        if (werror) std::rethrow_exception(werror);
        if (closed) throw std::system_error(ECONNRESET, std::system_category(), "connection lost");
        if (wbuf.empty()) return;
        Waiter w(self);
        drainers_.push_back(&w);
        park(w, what);
    }
}

void StreamCore::drain() {
    TaskBase* self = current_task_checked("StreamWriter::drain");
    cooperate(self);
    for (;;) {
        if (werror) std::rethrow_exception(werror);
        if (closed) throw std::system_error(ECONNRESET, std::system_category(), "connection lost");
        if (wbuf.size() <= high) return;
        Waiter w(self);
        drainers_.push_back(&w);
        park(w, "StreamWriter::drain");
        if (wbuf.size() <= low && !werror && !closed) return;
    }
}

void StreamCore::write_eof() {
    if (closing || eof_requested) return;
    if (tls_)  // as asyncio: close_notify would end reading too (see close())
        throw RuntimeError(
            "asyncfiber: StreamWriter::write_eof: a TLS stream cannot half-close; "
            "use close(), which sends close_notify");
    if (kind == Kind::pipe) {  // a pipe's only way to signal EOF is to close
        close();
        return;
    }
    eof_requested = true;
    if (wbuf.empty() && !closed) {
        eof_sent = true;
        ::shutdown(fd, SHUT_WR);
    }
}

void StreamCore::close() {
    if (closing) return;
    closing = true;
    if (tls_ && !closed) {
        tls_begin_close();  // flushes, then the close_notify exchange, with its own timer
        if (!closed) arm_close_timer();
    } else if (wbuf.empty() || closed) {
        abort();
    } else {
        arm_close_timer();
    }
}

void StreamCore::arm_close_timer() noexcept {
    const Clock::time_point now = Clock::now();
    if (close_timeout > Clock::time_point::max() - now) return;  // no limit
    try {
        std::weak_ptr<StreamCore> weak = shared_from_this();
        close_timer_ = loop->call_at(now + close_timeout, [weak] {
            if (std::shared_ptr<StreamCore> c = weak.lock()) c->abort_with_reset();
        });
    } catch (...) {
        abort_with_reset();  // no timer to keep the limit: keep it now
    }
}

void StreamCore::abort_with_reset() noexcept {
    if (closed) return;
    if (kind == Kind::socket) {
        struct linger no_linger = {1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger);
    }
    abort();
}

void StreamCore::abort() noexcept {
    if (closed) return;
    closed = true;
    unlink();
    if (tls_) tls_abort();
    // Pending operations complete with operation_aborted; their handlers hold a reference.
    boost::system::error_code ec;
    if (sock_) {
        sock_->close(ec);
        sock_.reset();
    }
    if (desc_) {
        desc_->close(ec);
        desc_.reset();
    }
    fd = -1;
    wbuf.release();
    close_timer_.cancel();
    reader_.fire();
    writer_.fire();
    wake_drainers();
    notify_all(closers_);
    std::function<void()> closed_hook;
    closed_hook.swap(on_closed);
    if (closed_hook) closed_hook();
}

void StreamCore::wait_closed() {
    TaskBase* self = current_task_checked("StreamWriter::wait_closed");
    while (!closed) {
        Waiter w(self);
        closers_.push_back(&w);
        park(w, "StreamWriter::wait_closed");
    }
}

}  // namespace detail
}  // namespace asyncfiber

#include "io_driver.hpp"

#include "embedded_loop.hpp"
#include "loop_impl.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>

namespace asyncfiber {
namespace detail {

namespace {
// Only one loop at a time turns SIGINT into a cancellation (signal dispositions are
// process-wide).
std::atomic<bool> g_sigint_taken{false};

// How long an idle owned loop watches for work from other threads before it sleeps in
// epoll_wait. Waking a sleeping thread through the io_context's eventfd costs tens of
// microseconds on a virtual machine (the kernel scheduler, and the host for an idle vCPU);
// a peer loop that answers within the watch costs a cache-line transfer instead. The bound
// is what an idle loop can spend in vain per burst of posts; I/O readiness is not looked at
// while it watches, so it also bounds the delay added to I/O.
constexpr std::int64_t kMaxSpinNs = 50000;
constexpr std::int64_t kMinSpinNs = 1000;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}
}  // namespace

IoDriver::IoDriver(LoopImpl* loop)
    : loop_(loop),
      own_(std::make_shared<OwnedIoContext>()),
      io_(*own_),
      work_(new boost::asio::executor_work_guard<boost::asio::io_context::executor_type>(
          io_.get_executor())),
      spin_ns_(kMaxSpinNs) {}

// An embedded loop holds work only while something is pending (embedded_loop.cpp).
IoDriver::IoDriver(LoopImpl* loop, boost::asio::io_context& borrowed)
    : loop_(loop), io_(borrowed), spin_ns_(0) {}

IoDriver::~IoDriver() {
    unwatch_sigint();
    if (own_) {
        // What the loop left in its io_context goes now, while the loop exists (as
        // ~io_context would do it); the object itself goes with the last share.
        sigint_.reset();
        work_.reset();
        own_->shut_down();
    }
}

template <class Run>
void IoDriver::run_guarded(Run run) {
    // Someone called io_context().stop(): keep serving. A borrowed one is left stopped again
    // afterwards (it runs here only while an embedded loop is closed), as its owner stopped it.
    const bool was_stopped = io_.stopped();
    if (was_stopped) io_.restart();
    struct Restop {
        boost::asio::io_context& io;
        bool on;
        ~Restop() {
            if (on) io.stop();
        }
    } restop{io_, was_stopped && !own_};
    try {
        run(io_);
    } catch (...) {
        // A handler threw. asyncio logs exceptions from callbacks and goes on; so do we.
        loop_->report(ExceptionContext{
            "exception in a Boost.Asio handler run by the loop", std::current_exception(), {}});
    }
}

void IoDriver::poll() {
    run_guarded([](boost::asio::io_context& io) { io.poll(); });
}

bool IoDriver::spin_for_post(std::chrono::steady_clock::time_point deadline) {
    using Clock = std::chrono::steady_clock;
    // Only an owned io_context (a borrowed one is the application's to run), and only when
    // other threads posted since the last wait: a loop fed by its own I/O and timers alone
    // never spins.
    if (!own_) return false;
    const std::uint64_t seen = posts_.load(std::memory_order_acquire);
    const bool fed = seen != posts_seen_;
    posts_seen_ = seen;
    if (!fed) return false;
    // What is queued or ready already needs no watch. (Read before the poll: a post that
    // lands between the read and the poll is run by the poll or ends the watch at once.)
    std::size_t ran = 0;
    run_guarded([&ran](boost::asio::io_context& io) { ran = io.poll(); });
    if (ran != 0) return true;
    const Clock::time_point start = Clock::now();
    if (deadline <= start) return false;
    const Clock::time_point until = deadline - start > std::chrono::nanoseconds(spin_ns_)
                                        ? start + std::chrono::nanoseconds(spin_ns_)
                                        : deadline;
    for (unsigned i = 1;; ++i) {
        cpu_relax();
        if (posts_.load(std::memory_order_acquire) != seen) {
            spin_ns_ = std::min(spin_ns_ * 2, kMaxSpinNs);
            poll();
            return true;
        }
        if (i % 16 == 0 && Clock::now() >= until) {
            spin_ns_ = std::max(spin_ns_ / 2, kMinSpinNs);
            return false;
        }
    }
}

void IoDriver::wait() {
    if (spin_for_post(std::chrono::steady_clock::time_point::max())) return;
    run_guarded([](boost::asio::io_context& io) { io.run_one(); });
    poll();
}

void IoDriver::wait_until(std::chrono::steady_clock::time_point deadline) {
    if (spin_for_post(deadline)) return;
    run_guarded([deadline](boost::asio::io_context& io) { io.run_one_until(deadline); });
    poll();
}

void IoDriver::post(std::function<void()> fn) {
    if (!own_) {
        post_inside_embedded(loop_, std::move(fn));
        return;
    }
    boost::asio::post(io_, std::move(fn));
    posts_.fetch_add(1, std::memory_order_release);
}

void IoDriver::watch_sigint(std::function<void()> on_sigint) {
    struct sigaction cur;
    if (::sigaction(SIGINT, nullptr, &cur) != 0) return;
    if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return;  // the user's own
    bool expected = false;
    if (!g_sigint_taken.compare_exchange_strong(expected, true)) return;  // another loop's
    sigint_.reset(new boost::asio::signal_set(io_, SIGINT));
    sigint_->async_wait([this, on_sigint](const boost::system::error_code& ec, int) {
        if (ec) return;
        unwatch_sigint();  // a second SIGINT gets the default action
        on_sigint();
    });
}

void IoDriver::unwatch_sigint() {
    if (!sigint_) return;
    boost::system::error_code ec;
    sigint_->cancel(ec);
    sigint_->clear(ec);  // restores the default disposition
    sigint_.reset();
    g_sigint_taken = false;
}

}  // namespace detail
}  // namespace asyncfiber

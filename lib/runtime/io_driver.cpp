#include "io_driver.hpp"

#include "embedded_loop.hpp"
#include "loop_impl.hpp"
#include "sanitizers.hpp"

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
// is what an idle loop can spend in vain per burst of posts (I/O is looked at every few
// microseconds meanwhile, see spin_for_post).
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
    // What was posted and never ran goes unrun, as the io_context's own handlers do.
    Posted* p = posted_.exchange(nullptr, std::memory_order_acquire);
    while (p) {
        std::unique_ptr<Posted> item(p);
        p = p->next;
    }
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

std::size_t IoDriver::run_posted() {
    Posted* p = posted_.exchange(nullptr, std::memory_order_acquire);
    if (!p) return 0;
    announce_acquire(&posted_);
    Posted* fifo = nullptr;  // the stack holds the newest first
    while (p) {
        Posted* next = p->next;
        p->next = fifo;
        fifo = p;
        p = next;
    }
    std::size_t n = 0;
    while (fifo) {
        std::unique_ptr<Posted> item(fifo);
        fifo = fifo->next;
        ++n;
        try {
            item->fn();
        } catch (...) {
            // As for a throwing Asio handler: reported, and the loop goes on.
            loop_->report(ExceptionContext{
                "exception in a callback posted to the loop", std::current_exception(), {}});
        }
    }
    fed_ = true;
    return n;
}

void IoDriver::poll() {
    if (own_) run_posted();
    run_guarded([](boost::asio::io_context& io) { io.poll(); });
}

bool IoDriver::spin_for_post(std::chrono::steady_clock::time_point deadline) {
    using Clock = std::chrono::steady_clock;
    // Only an owned io_context (a borrowed one is the application's to run), and only when
    // posted work ran since the last watch: a loop fed by its own I/O and timers alone never
    // watches.
    if (!own_ || !fed_) return false;
    fed_ = false;
    const Clock::time_point start = Clock::now();
    if (deadline <= start) return false;
    const Clock::time_point until = deadline - start > std::chrono::nanoseconds(spin_ns_)
                                        ? start + std::chrono::nanoseconds(spin_ns_)
                                        : deadline;
    // I/O and what other io_contexts post through Asio (af::use_await's completions) are
    // looked at every few microseconds meanwhile, so the watch delays them that much at most.
    constexpr auto kLookAtIoEvery = std::chrono::microseconds(8);
    Clock::time_point look_at_io = start + kLookAtIoEvery;
    for (unsigned i = 1;; ++i) {
        cpu_relax();
        if (posted_.load(std::memory_order_relaxed) != nullptr) {
            spin_ns_ = std::min(spin_ns_ * 2, kMaxSpinNs);
            run_posted();
            return true;
        }
        if (i % 16 != 0) continue;
        const Clock::time_point now = Clock::now();
        if (now >= until) {
            spin_ns_ = std::max(spin_ns_ / 2, kMinSpinNs);
            return false;
        }
        if (now >= look_at_io) {
            std::size_t ran = 0;
            run_guarded([&ran](boost::asio::io_context& io) { ran = io.poll(); });
            if (ran != 0) return true;
            look_at_io = now + kLookAtIoEvery;
        }
    }
}

template <class Block>
void IoDriver::sleep(Block block) {
    if (own_) {
        // Dekker's handshake with post(): either the poster sees sleeping_ set and wakes the
        // io_context, or this sees its item and does not block.
        sleeping_.store(true, std::memory_order_seq_cst);
        if (posted_.load(std::memory_order_seq_cst) != nullptr) {
            sleeping_.store(false, std::memory_order_relaxed);
            poll();
            return;
        }
    }
    run_guarded(block);
    if (own_) sleeping_.store(false, std::memory_order_relaxed);
    poll();
}

void IoDriver::wait() {
    if (own_ && run_posted() != 0) return;
    if (spin_for_post(std::chrono::steady_clock::time_point::max())) return;
    sleep([](boost::asio::io_context& io) { io.run_one(); });
}

void IoDriver::wait_until(std::chrono::steady_clock::time_point deadline) {
    if (own_ && run_posted() != 0) return;
    if (spin_for_post(deadline)) return;
    sleep([deadline](boost::asio::io_context& io) { io.run_one_until(deadline); });
}

void IoDriver::post(Callback<void()> fn) {
    if (!own_) {
        post_inside_embedded(loop_, std::move(fn));
        return;
    }
    auto* item = new Posted{nullptr, std::move(fn)};
    announce_release(&posted_);
    Posted* head = posted_.load(std::memory_order_relaxed);
    do {
        item->next = head;
    } while (!posted_.compare_exchange_weak(head, item, std::memory_order_seq_cst,
                                            std::memory_order_relaxed));
    if (sleeping_.load(std::memory_order_seq_cst) &&
        sleeping_.exchange(false, std::memory_order_seq_cst))
        boost::asio::post(io_, [] {});  // ends the loop's run_one; its poll runs the item
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

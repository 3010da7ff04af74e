#include "io_driver.hpp"

#include "embedded_loop.hpp"
#include "loop_impl.hpp"

#include <boost/asio/post.hpp>

#include <atomic>
#include <csignal>

namespace asyncfiber {
namespace detail {

namespace {
// Only one loop at a time turns SIGINT into a cancellation (signal dispositions are
// process-wide).
std::atomic<bool> g_sigint_taken{false};
}  // namespace

IoDriver::IoDriver(LoopImpl* loop)
    : loop_(loop),
      own_(std::make_shared<OwnedIoContext>()),
      io_(*own_),
      work_(new boost::asio::executor_work_guard<boost::asio::io_context::executor_type>(
          io_.get_executor())) {}

// An embedded loop holds work only while something is pending (embedded_loop.cpp).
IoDriver::IoDriver(LoopImpl* loop, boost::asio::io_context& borrowed)
    : loop_(loop), io_(borrowed) {}

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

void IoDriver::wait() {
    run_guarded([](boost::asio::io_context& io) { io.run_one(); });
    poll();
}

void IoDriver::wait_until(std::chrono::steady_clock::time_point deadline) {
    run_guarded([deadline](boost::asio::io_context& io) { io.run_one_until(deadline); });
    poll();
}

void IoDriver::post(std::function<void()> fn) {
    if (!own_) {
        post_inside_embedded(loop_, std::move(fn));
        return;
    }
    boost::asio::post(io_, std::move(fn));
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

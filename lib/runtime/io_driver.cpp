#include "io_driver.hpp"

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
    : loop_(loop), io_(1), work_(boost::asio::make_work_guard(io_)) {}

IoDriver::~IoDriver() { unwatch_sigint(); }

template <class Run>
void IoDriver::run_guarded(Run run) {
    if (io_.stopped()) io_.restart();  // someone called io_context().stop(): keep serving
    try {
        run(io_);
    } catch (...) {
        // A handler threw. asyncio logs exceptions from callbacks and goes on; so do we.
        loop_->report(ExceptionContext{"exception in a Boost.Asio handler run by the loop",
                                       std::current_exception(), {}});
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

void IoDriver::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

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

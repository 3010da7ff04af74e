// Loop::add_signal_handler / remove_signal_handler on boost::asio::signal_set.
//
// Asio's signal handling is process-wide and lets several signal_sets watch one signal; the
// handler below runs on the loop's thread from the io_context. run()'s SIGINT watch (in
// runtime/io_driver.cpp) is dropped when the user takes SIGINT over, as asyncio's runner
// does when a SIGINT handler is installed.
#include "runtime/io_driver.hpp"
#include "io_objects.hpp"

#include <csignal>
#include <stdexcept>
#include <string>

namespace asyncfiber {

namespace {

void arm(detail::LoopImpl* L, std::weak_ptr<detail::SignalEntry> weak) {
    auto e = weak.lock();
    if (!e) return;
    e->set->async_wait([L, weak](const boost::system::error_code& ec, int) {
        if (ec) return;  // removed or the loop is closing
        auto entry = weak.lock();
        if (!entry) return;
        std::shared_ptr<detail::Callback<void()>> fn = entry->fn;  // it may remove itself
        arm(L, weak);
        try {
            (*fn)();
        } catch (...) {
            L->report(
                ExceptionContext{"exception in a signal handler", std::current_exception(), {}});
        }
    });
}

}  // namespace

void Loop::add_signal_handler(int sig, detail::Callback<void()> fn) {
    if (impl_->closed) throw RuntimeError("asyncfiber: add_signal_handler on a closed loop");
    if (!fn) throw std::invalid_argument("asyncfiber: add_signal_handler needs a function");
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
        throw std::invalid_argument("asyncfiber: signal " + std::to_string(sig) +
                                    " cannot be handled");
    detail::IoObjects& o = detail::io_objects(impl_);
    auto it = o.signals.find(sig);
    if (it != o.signals.end()) {
        it->second->fn = std::make_shared<detail::Callback<void()>>(std::move(fn));
        return;
    }
    auto e = std::make_shared<detail::SignalEntry>();
    e->set.reset(new boost::asio::signal_set(impl_->io->context()));
    boost::system::error_code ec;
    e->set->add(sig, ec);
    if (ec)
        throw std::invalid_argument("asyncfiber: signal " + std::to_string(sig) +
                                    " cannot be handled: " + ec.message());
    e->fn = std::make_shared<detail::Callback<void()>>(std::move(fn));
    o.signals[sig] = e;
    if (sig == SIGINT) impl_->io->unwatch_sigint();  // after ours is in place: no gap
    arm(impl_, e);
}

bool Loop::remove_signal_handler(int sig) {
    if (!impl_->io_objects) return false;
    auto& sigs = impl_->io_objects->signals;
    auto it = sigs.find(sig);
    if (it == sigs.end()) return false;
    boost::system::error_code ec;
    it->second->set->cancel(ec);
    it->second->set->clear(ec);  // the last watcher of a signal restores its default action
    sigs.erase(it);
    return true;
}

}  // namespace asyncfiber

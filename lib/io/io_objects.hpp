// Internal: what a loop must close before its io_context goes away: open streams, listening
// servers, child-process watchers, signal handlers. Loop::close() closes them all (a close
// hook), so that a stream or server a user still holds afterwards touches no Asio object.
#pragma once

#include "runtime/io_driver.hpp"
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/intrusive_list.hpp>

#include <boost/asio/signal_set.hpp>

#include <functional>
#include <map>
#include <memory>

namespace asyncfiber {
namespace detail {

/// Something io_objects() closes at Loop::close(). Unlinks itself when it closes earlier.
struct IoLink : ListNode {
    virtual void close_for_loop() noexcept = 0;

protected:
    ~IoLink() { unlink(); }
};

struct SignalEntry {
    std::unique_ptr<boost::asio::signal_set> set;
    // Shared, so that a running handler stays alive when it removes or replaces itself.
    std::shared_ptr<Callback<void()>> fn;
};

struct IoObjects {
    List live;  // IoLink nodes
    std::map<int, std::shared_ptr<SignalEntry>> signals;
};

/// The loop's IoObjects, created (and its close hook registered) on first use.
IoObjects& io_objects(LoopImpl* L);

}  // namespace detail
}  // namespace asyncfiber

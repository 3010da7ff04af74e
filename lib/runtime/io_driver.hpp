// Internal: the loop's Boost.Asio side. The loop blocks here when no task is ready (until
// the next deadline, an I/O completion or a post from another thread), and polls here now
// and then while tasks keep it busy, so that I/O handlers are never starved. What other
// threads post to an owned loop bypasses Asio (a lock-free queue of its own, see Posted),
// and a loop that such posts kept busy watches for the next one briefly before it sleeps. An
// embedded loop (Loop(io_context&)) borrows the application's io_context instead, which runs the
// loop as one of its handlers (embedded_loop.cpp): the loop never blocks in it then, except to
// finish its tasks when it is closed.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <asyncfiber/detail/callback.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace asyncfiber {
namespace detail {

struct LoopImpl;

/// An io_context the loop owns, whose handlers can be destroyed before the object itself:
/// af::use_await's executors (detail/loop_executor.hpp) may keep the object a little longer,
/// on the thread of another io_context, but nothing of the loop stays in it after the loop.
class OwnedIoContext : public boost::asio::io_context {
public:
    OwnedIoContext() : boost::asio::io_context(1) {}
    /// Destroys every pending handler and operation now (what ~io_context does first).
    void shut_down() { shutdown(); }
};

class IoDriver {
public:
    /// Owns an io_context (with a work guard: the loop decides when to stop waiting).
    explicit IoDriver(LoopImpl* loop);
    /// Borrows the application's io_context (an embedded loop).
    IoDriver(LoopImpl* loop, boost::asio::io_context& borrowed);
    ~IoDriver();

    boost::asio::io_context& context() noexcept { return io_; }
    bool borrowed() const noexcept { return !own_; }
    /// A share in an owned io_context's life (the borrowed one's belongs to the application:
    /// a handle that does not own it). See detail/loop_executor.hpp.
    std::shared_ptr<boost::asio::io_context> share() const noexcept {
        return own_ ? own_
                    : std::shared_ptr<boost::asio::io_context>(std::shared_ptr<void>(), &io_);
    }

    /// Runs the handlers that are ready, without blocking.
    void poll();
    /// Blocks until at least one handler ran, then runs the others that are ready.
    void wait();
    /// As wait(), but returns at `deadline` at the latest.
    void wait_until(std::chrono::steady_clock::time_point deadline);
    /// Any thread: runs fn on the loop's thread, waking it if it blocks; on an embedded loop,
    /// inside the loop (as its callbacks run), dropped unrun if the loop is gone by then.
    void post(Callback<void()> fn);

    /// While the loop runs a main task: SIGINT cancels it (only if SIGINT has its default
    /// disposition, as asyncio.run does). The first SIGINT restores the default, so a second
    /// one ends the process even if the task ignores cancellation.
    void watch_sigint(std::function<void()> on_sigint);
    void unwatch_sigint();

private:
    /// What other threads posted to an owned io_context: a lock-free stack that post()
    /// pushes to and the loop takes whole, so that a hop from another thread costs neither
    /// Asio's scheduler lock nor a system call while the loop is awake. Run in posting order.
    struct Posted {
        Posted* next;
        Callback<void()> fn;
    };
    /// Runs what was posted so far; how many.
    std::size_t run_posted();
    /// Blocks in the io_context (until `deadline`) unless something was posted, telling
    /// posters to wake it (see post()).
    template <class Block>
    void sleep(Block block);
    /// Before an owned io_context blocks, after work came from other threads since the last
    /// wait: watches for the next post for a few microseconds (until `deadline` at most) and
    /// runs it. True if it ran something; false to block as usual.
    bool spin_for_post(std::chrono::steady_clock::time_point deadline);
    /// Runs `run(io)`, restarting a stopped io_context first and reporting what a handler
    /// throws instead of letting it out of the loop.
    template <class Run>
    void run_guarded(Run run);
    LoopImpl* loop_;
    std::shared_ptr<OwnedIoContext> own_;  // null when borrowed
    boost::asio::io_context& io_;
    /// An owned io_context's, for the loop's life (null when borrowed: releasing a guard
    /// that holds the last work would stop the application's io_context).
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::unique_ptr<boost::asio::signal_set> sigint_;
    std::atomic<Posted*> posted_{nullptr};
    /// Set by the loop before it blocks in the io_context; a poster that clears it wakes the
    /// io_context with an empty Asio handler (so one poster wakes it, once per sleep).
    std::atomic<bool> sleeping_{false};
    /// Whether posted work ran since the loop last watched; how long it watches for the next
    /// (halved after each watch in vain, doubled after each catch, within [kMinSpin,
    /// kMaxSpin]: a peer that answers within microseconds keeps it long, a thread pool whose
    /// jobs take milliseconds makes it short).
    bool fed_ = false;
    std::int64_t spin_ns_;
};

}  // namespace detail
}  // namespace asyncfiber

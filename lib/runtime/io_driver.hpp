// Internal: the loop's Boost.Asio side. The loop blocks here when no task is ready (until
// the next deadline, an I/O completion or a post from another thread), and polls here now
// and then while tasks keep it busy, so that I/O handlers are never starved. An embedded loop
// (Loop(io_context&)) borrows the application's io_context instead, which runs the loop as
// one of its handlers (embedded_loop.cpp): the loop never blocks in it then, except to finish
// its tasks when it is closed.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

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
    void post(std::function<void()> fn);

    /// While the loop runs a main task: SIGINT cancels it (only if SIGINT has its default
    /// disposition, as asyncio.run does). The first SIGINT restores the default, so a second
    /// one ends the process even if the task ignores cancellation.
    void watch_sigint(std::function<void()> on_sigint);
    void unwatch_sigint();

private:
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
    /// Posts so far (any thread); what the loop saw of them when it last went idle; how long
    /// it watches for the next one (halved after each watch in vain, doubled after each
    /// catch, within [kMinSpin, kMaxSpin]: a peer that answers within microseconds keeps it
    /// long, a thread pool whose jobs take milliseconds makes it short).
    std::atomic<std::uint64_t> posts_{0};
    std::uint64_t posts_seen_ = 0;
    std::int64_t spin_ns_;
};

}  // namespace detail
}  // namespace asyncfiber

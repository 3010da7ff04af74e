// asyncfiber/debug.hpp - seeing inside a running loop: task dumps and resource counters.
//
// Debug mode (Loop::set_debug(true), or ASYNCFIBER_DEBUG=1 in the environment when a loop is
// created) reports task steps that run longer than Loop::set_slow_callback_duration (100 ms
// by default) without suspending, tasks still pending and never awaited when the loop
// closes, and prints dump_tasks() to stderr on SIGQUIT. See docs/debugging.md.
#pragma once

#include <asyncfiber/net.hpp>

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>

namespace asyncfiber {

/// Writes one line per live task of this thread's loop: id, name, state (ready, running,
/// sleeping until T, waiting on what), age and stack high-water mark. Call it from a task or
/// a loop callback. Throws RuntimeError outside a running loop.
void dump_tasks(std::ostream& os);

namespace debug {

/// The task stacks of the calling thread's pool.
struct StackPoolStats {
    std::size_t live = 0;   ///< stacks in use by tasks
    std::size_t free = 0;   ///< stacks kept for reuse
    std::size_t slabs = 0;  ///< mappings held
};
/// Counters of the calling thread's stack pool (all zero on a thread that never ran a loop).
StackPoolStats stack_pool_stats();

/// Tasks alive (not done) on this thread's running loop; 0 outside a loop.
std::size_t live_task_count() noexcept;

/// A test hook modelled on asyncio's StreamReader.feed_data() / feed_eof(): a stream with no
/// peer whose received bytes come from the program, so that parsing code (and the fuzz
/// target for readline / readuntil / readexactly) can choose exactly how the data arrives.
/// Each feed_data() is one arrival: a reader waiting for data wakes up and sees it, together
/// with whatever else was fed before it ran. Create it inside a task of a running loop
/// (RuntimeError otherwise); it is closed when the last copy of it and of its reader goes.
class FedStream {
public:
    explicit FedStream(std::size_t limit = default_stream_limit);
    /// The reading side (a cheap handle sharing the stream).
    StreamReader reader() const;
    /// Appends `data` as received bytes. Throws InvalidStateError after feed_eof() or once
    /// the stream is closed.
    void feed_data(const std::string& data);
    /// Signals EOF: readers get what is buffered, then EOF. Idempotent.
    void feed_eof();

private:
    std::shared_ptr<detail::StreamHandle> h_;
};

}  // namespace debug
}  // namespace asyncfiber

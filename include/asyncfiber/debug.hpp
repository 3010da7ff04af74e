// asyncfiber/debug.hpp - seeing inside a running loop: task dumps and resource counters.
//
// Debug mode (Loop::set_debug(true), or ASYNCFIBER_DEBUG=1 in the environment when a loop is
// created) reports task steps that run longer than Loop::set_slow_callback_duration (100 ms
// by default) without suspending, and — through the watchdog — while they still run; tasks
// still pending and never awaited when the loop closes; and prints dump_tasks() to stderr on
// SIGQUIT, even while the loop is blocked. See docs/debugging.md.
#pragma once

#include <asyncfiber/net.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace asyncfiber {

/// Writes one line per live task of this thread's loop: id, name, state (ready, running,
/// sleeping until T, waiting on what), age and stack high-water mark; then, when some task
/// awaits another, the await graph as a tree (asyncio's `pstree`): each task that nobody
/// awaits, and under each task the tasks it awaits. Call it from a task or a loop callback.
/// Throws RuntimeError outside a running loop.
void dump_tasks(std::ostream& os);

/// A task in the await graph, as asyncio 3.14's FutureCallGraph: the task, what it waits on,
/// and the tasks that await it, each with its own awaiters. A task awaits another through
/// af::await (wait_for and timeouts included), gather / gather_settled, af::wait and
/// shield's wait, and TaskGroup::join (its members, while it joins).
struct CallGraph {
    TaskRef task;
    /// What the task's suspension point waits on ("a task", "gather", "Event", "sleep",
    /// ...); empty while it runs or before it first ran.
    std::string waiting_on;
    /// The tasks suspended until `task` ends.
    std::vector<CallGraph> awaited_by;
};
/// The await graph from `task` up (asyncio.capture_call_graph). A task met again on the way
/// up (an await cycle) is not followed a second time; the graph stops 256 levels up. Throws
/// InvalidStateError for an empty handle, RuntimeError outside the task's loop thread.
CallGraph capture_call_graph(const TaskRef& task);
/// The same for the calling task; RuntimeError outside a task.
CallGraph capture_call_graph();
/// The graph as text, one task per line, each awaiter indented under what it awaits
/// (asyncio.format_call_graph).
std::string format_call_graph(const CallGraph& graph);

/// What the loop watchdog saw (Loop::set_watchdog, set_watchdog_handler).
struct WatchdogReport {
    enum class Kind {
        running,  ///< a step still runs past the threshold: the loop is blocked now
        ended     ///< that step has ended
    };
    Kind kind = Kind::running;
    /// The task whose step it is ("Task-<id>" when unnamed); empty for a loop callback, or
    /// when the loop's thread did not answer the watchdog's signal.
    std::string task_name;
    std::uint64_t task_id = 0;  ///< 0 for a loop callback
    /// How long the step has run (ended: how long it ran). Steps are sampled every eighth of
    /// the threshold, so this is short of the truth by at most that much.
    Clock::duration elapsed{};
    Clock::duration threshold{};
    /// running: the loop thread's frames at that moment, innermost first, each "function at
    /// file:line" as far as the program's symbols and debug information tell. Empty when the
    /// thread did not answer, and for `ended`.
    std::vector<std::string> stack;
    /// The whole report as the default handler prints it (several lines for `running`).
    std::string message;
};

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
    detail::IntrusivePtr<detail::StreamHandle> h_;
};

}  // namespace debug
}  // namespace asyncfiber

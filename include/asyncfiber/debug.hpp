// asyncfiber/debug.hpp - seeing inside a running loop: task dumps and resource counters.
//
// Debug mode (Loop::set_debug(true), or ASYNCFIBER_DEBUG=1 in the environment when a loop is
// created) reports task steps that run longer than Loop::set_slow_callback_duration (100 ms
// by default) without suspending, tasks still pending and never awaited when the loop
// closes, and prints dump_tasks() to stderr on SIGQUIT. See docs/debugging.md.
#pragma once

#include <cstddef>
#include <iosfwd>

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

}  // namespace debug
}  // namespace asyncfiber

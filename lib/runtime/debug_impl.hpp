// Internal: the debug-mode hooks the scheduler and the loop call (implemented in debug.cpp).
#pragma once

#include "loop_impl.hpp"
#include "text_out.hpp"

#include <cstdint>

namespace asyncfiber {
namespace detail {

/// Debug mode, after a step of `t` that began at `start_ns`: reports a step longer than the
/// loop's slow_step, and, once the task is `finished`, clears the part of its stack it used
/// so that the next task on that stack starts with a true high-water mark.
void check_step_duration(LoopImpl* L, TaskBase* t, std::int64_t start_ns, bool finished) noexcept;

/// Bytes of `s` ever written since its pages were last zero: from the lowest non-zero word
/// (found among resident pages only) to the top. 0 for a task without a stack.
std::size_t stack_high_water(const StackInfo& s) noexcept;

/// When a loop is entered / left on its thread: the watchdog (which also serves SIGQUIT in
/// debug mode) may signal the thread only in between.
void debug_loop_enter(LoopImpl* L) noexcept;
void debug_loop_leave(LoopImpl* L) noexcept;

/// The task's name, or "Task-<id>" when it has none. Async-signal-safe.
void put_task_name(TextOut& o, const TaskBase* t) noexcept;

/// The task dump (af::dump_tasks, with the await graph) on stderr: at a safe point of the
/// loop's thread (between steps) ...
void write_task_dump_to_stderr(LoopImpl* L) noexcept;
/// ... or from a signal handler on the loop's thread while it is stuck in a step: only
/// async-signal-safe calls, no allocation; walks stop at counts and null links, since the
/// interrupted code may be changing a list (see debug.cpp).
void write_task_dump_in_signal(LoopImpl* L) noexcept;

/// Debug mode, when Loop::close() finds tasks still pending: reports each one that nobody
/// ever awaited (it is about to be cancelled and destroyed without anyone seeing its end).
void report_never_awaited(LoopImpl* L) noexcept;

}  // namespace detail
}  // namespace asyncfiber

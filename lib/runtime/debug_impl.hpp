// Internal: the debug-mode hooks the scheduler and the loop call (implemented in debug.cpp).
#pragma once

#include "loop_impl.hpp"

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

/// When a loop is entered: reads ASYNCFIBER_DEBUG once per loop and, in debug mode, starts
/// printing the task dump on SIGQUIT. debug_loop_leave undoes the latter.
void debug_loop_enter(LoopImpl* L) noexcept;
void debug_loop_leave(LoopImpl* L) noexcept;

/// Debug mode, when Loop::close() finds tasks still pending: reports each one that nobody
/// ever awaited (it is about to be cancelled and destroyed without anyone seeing its end).
void report_never_awaited(LoopImpl* L) noexcept;

}  // namespace detail
}  // namespace asyncfiber

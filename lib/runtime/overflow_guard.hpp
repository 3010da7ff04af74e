// Internal: turning a stack overflow into a clear message instead of silent corruption.
//
// A SIGSEGV whose address lies in the guard page of the running task's stack is reported
// (task name, stack size, how to raise it) and the process aborts. Other SIGSEGVs go to
// whatever handler was installed before. The handler runs on an alternate signal stack,
// which every loop thread installs, since the faulting stack has no room left.
#pragma once

#include <asyncfiber/detail/task_state.hpp>

namespace asyncfiber {
namespace detail {

/// Installs the process-wide SIGSEGV/SIGBUS handler (once) and this thread's alternate
/// signal stack (once per thread).
void install_overflow_guard();

/// Prints the overflow report for `t` and aborts. Async-signal-safe.
[[noreturn]] void report_stack_overflow(const TaskBase* t, const char* how) noexcept;

}  // namespace detail
}  // namespace asyncfiber

// Internal: the two mechanisms every suspension point is built from, for primitives written
// as header templates (queues) as well as those in lib/.
//
// - Waiter: a node a task links into a primitive's wait list before parking. notify() takes
//   it off the list and makes the task ready. The node lives on the waiting task's stack and
//   unlinks itself in its destructor, so a waiter that leaves by cancellation never leaves a
//   dangling entry behind.
// - TimerNode: an entry in the loop's deadlines (lib/runtime/timer_heap.hpp); fire() runs on the loop
//   when it is due.
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/detail/task_state.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace asyncfiber {
namespace detail {

/// Makes a suspended task ready (same thread as its loop). No-op if it is not suspended.
bool wake(TaskBase* t) noexcept;

/// Suspends the calling task until someone wake()s it. Does not look at cancellation; the
/// caller must. `what` says what it waits on (for task dumps). Checks the caller's stack.
void suspend(TaskBase* self, const char* what);

/// Throws CancelledError if a cancellation is pending for `self`, consuming it.
void throw_if_cancelled(TaskBase* self);

struct Waiter : ListNode {
    explicit Waiter(TaskBase* t) noexcept : task(t) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() { unlink(); }

    TaskBase* task;
    bool notified = false;
    /// Its task was cancelled while it waited (asyncio: its future is cancelled). Such a
    /// waiter leaves its list at once unless keep_linked_on_cancel (then the primitive sees
    /// it until its task runs, as asyncio.Lock sees a cancelled future at its head).
    bool cancelled = false;
    bool keep_linked_on_cancel = false;
};

/// Takes `w` off its list and wakes its task. The primitive decides what notified means.
inline void notify(Waiter& w) noexcept {
    w.unlink();
    w.notified = true;
    wake(w.task);
}

/// Pops the first waiter of `l` (a list of Waiter) and notifies it; false if none.
inline bool notify_first(List& l) noexcept {
    ListNode* n = l.pop_front();
    if (!n) return false;
    Waiter* w = static_cast<Waiter*>(n);
    w->notified = true;
    wake(w->task);
    return true;
}

/// Parks the calling task (w.task, already linked into a wait list) until notified. Throws
/// CancelledError if the task is cancelled, even when it was also notified in the meantime
/// (as asyncio does): a primitive that hands something to a notified waiter must pass it on
/// in its catch block.
void park(Waiter& w, const char* what);

/// An entry in the loop's timer heap. Owned by whoever scheduled it; remove it before it dies.
struct TimerNode {
    TimerNode() = default;
    TimerNode(const TimerNode&) = delete;
    TimerNode& operator=(const TimerNode&) = delete;

    bool scheduled() const noexcept { return heap_index != npos; }

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    static constexpr std::size_t in_run = npos - 1;  // in the loop's sorted run, not the heap
    std::chrono::steady_clock::time_point when;
    std::uint64_t seq = 0;
    std::size_t heap_index = npos;
    TimerNode* run_prev = nullptr;
    TimerNode* run_next = nullptr;
    void (*fire)(TimerNode* self) = nullptr;
};

/// Schedules `n` on the current thread's running loop (deadline, then arrival order).
void add_timer(TimerNode& n, std::chrono::steady_clock::time_point when);
/// Unschedules `n` if it is scheduled.
void remove_timer(TimerNode& n) noexcept;

}  // namespace detail
}  // namespace asyncfiber

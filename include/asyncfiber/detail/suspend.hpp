// Internal: the suspension layer, the two mechanisms every suspension point is built from,
// for primitives written as header templates (queues) as well as those in lib/.
//
// Its out-of-line functions (suspend, wake, park, throw_if_cancelled, add_timer, remove_timer)
// are defined in lib/runtime/scheduler.cpp, beside the fiber switch they are built on: there
// the switch can be inlined into suspend() and park(), and suspend/wake/throw_if_cancelled
// into yield_now and sleep, the hottest paths; a file of their own would make each a call.
//
// - Waiter: a node a task links into a primitive's wait list before parking. notify() takes
//   it off the list and makes the task ready. The node lives on the waiting task's stack and
//   unlinks itself in its destructor, so a waiter that leaves by cancellation never leaves a
//   dangling entry behind.
// - TimerNode: an entry in the loop's deadlines (lib/runtime/timer_heap.hpp); fire() runs on the
// loop
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
    /// `leaving`: where the waiter goes once it stops waiting (notified, or cancelled) until
    /// its task has left the primitive's code, for a primitive that still touches itself
    /// after park(); null for one that does not. See orphan_waiters().
    explicit Waiter(TaskBase* t, List* leaving_list = nullptr) noexcept
        : task(t), leaving(leaving_list) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() { unlink(); }

    TaskBase* task;
    List* leaving;
    bool notified = false;
    /// Its task was cancelled while it waited (asyncio: its future is cancelled). Such a
    /// waiter leaves its list at once unless keep_linked_on_cancel (then the primitive sees
    /// it until its task runs, as asyncio.Lock sees a cancelled future at its head).
    bool cancelled = false;
    bool keep_linked_on_cancel = false;
    /// The primitive was destroyed while this waiter was in one of its lists: park() throws
    /// RuntimeError instead of returning into it.
    bool orphaned = false;
};

/// Takes `w` off its wait list (into its leaving list, if it has one).
inline void stop_waiting(Waiter& w) noexcept {
    w.unlink();
    if (w.leaving) w.leaving->push_back(&w);
}

/// Takes `w` off its list and wakes its task. The primitive decides what notified means.
inline void notify(Waiter& w) noexcept {
    stop_waiting(w);
    w.notified = true;
    wake(w.task);
}

/// Pops the first waiter of `l` (a list of Waiter) and notifies it; false if none.
inline bool notify_first(List& l) noexcept {
    ListNode* n = l.front();
    if (!n) return false;
    notify(*static_cast<Waiter*>(n));
    return true;
}

/// Notifies every waiter of `l`, first to last (an event set, a stream closed).
inline void notify_all(List& l) noexcept {
    while (notify_first(l)) {
    }
}

/// Parks the calling task (w.task, already linked into a wait list) until notified. Throws
/// CancelledError if the task is cancelled, even when it was also notified in the meantime
/// (as asyncio does): a primitive that hands something to a notified waiter must pass it on
/// in its catch block. Throws RuntimeError ("<what> was destroyed while a task waited on it")
/// once the primitive is destroyed (orphan_waiters), without touching it.
void park(Waiter& w, const char* what);

/// Throws the RuntimeError of a waiter whose primitive was destroyed while it waited.
[[noreturn]] void throw_primitive_destroyed(const char* what);

/// For a primitive's destructor: every waiter still in `l` (waiting, or leaving: woken but
/// its task not yet out of the primitive's code) is marked orphaned, taken off and woken, so
/// that it throws RuntimeError from park() instead of touching the destroyed primitive, and
/// never hangs. Cheap when `l` is empty.
inline void orphan_waiters(List& l) noexcept {
    while (ListNode* n = l.pop_front()) {
        Waiter* w = static_cast<Waiter*>(n);
        w->orphaned = true;
        wake(w->task);
    }
}

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

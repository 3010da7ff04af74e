// Internal: the state of one event loop and the operations the rest of lib/ builds on.
//
// A loop runs on one thread. Its ready queue is an intrusive FIFO of ReadyItems (task steps
// and callbacks); its deadlines live in a TimerHeap; I/O and wake-ups from other threads come
// through the Boost.Asio io_context driven by IoDriver. The scheduler runs on the thread's
// own stack and switches into one task fiber at a time (see scheduler.cpp).
#pragma once

#include "timer_heap.hpp"
#include "watchdog.hpp"

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/loop.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace asyncfiber {
namespace detail {

class IoDriver;
class StackPool;
struct Embedding;
struct LoopImpl;

/// An embedded loop had nothing ready and now has: posts its drive handler (embedded_loop.cpp).
void request_drive(LoopImpl* L) noexcept;
struct IoObjects;
struct ThreadLoops;

/// A callback queued by call_soon / call_later / call_at (asyncio's Handle / TimerHandle).
struct CallbackItem : ReadyItem {
    CallbackItem() noexcept : ReadyItem(Kind::callback) { timer.item = this; }
    struct Timer : TimerNode {
        CallbackItem* item = nullptr;
    };
    std::uint32_t refs = 1;
    bool cancelled = false;
    bool queued = false;  // in the ready queue or the timer heap (the loop holds a ref)
    LoopImpl* loop = nullptr;
    Timer timer;
    Callback<void()> fn;

    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        if (--refs == 0) delete this;
    }
};

struct LoopImpl {
    /// `borrowed`: the application's io_context, for an embedded loop (embedded_loop.cpp).
    LoopImpl(Loop* owner, boost::asio::io_context* borrowed);
    ~LoopImpl();

    // ---- lifetime (loop.cpp) ----
    /// The block lives while the Loop object or any task block of the loop does (one
    /// reference each), so that a task handle kept past its loop can still tell which thread
    /// it belongs to. Not thread-safe, like the task blocks that hold the references.
    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        // refs is 0 only while the block is being destroyed, when what it still releases
        // (queued callbacks holding task handles) may come back here.
        if (refs != 0 && --refs == 0) delete this;
    }
    /// Frees what a closed loop no longer needs (io_context, callbacks, handlers) while task
    /// handles may keep the block itself. Idempotent.
    void release_resources() noexcept;
    /// The part of Loop::close() after the tasks are done: close hooks, then closed (refusing
    /// cross-thread work from then on, failing what was posted before), then released from
    /// the thread whose stacks it used.
    void finish_close();
    /// Whether some live task has a stack, i.e. runs on the stacks of the thread that ran it.
    bool has_started_tasks() const noexcept;
    /// Queues fn from any thread (call_soon_threadsafe); RuntimeError once closed.
    void post_threadsafe(Callback<void()> fn);

    // ---- ready queue ----
    void push_ready(ReadyItem* it) noexcept {
        it->ready_next = nullptr;
        if (ready_tail) {
            ready_tail->ready_next = it;
        } else {
            ready_head = it;
            if (wake_on_push) request_drive(this);  // an embedded loop, outside its handler
        }
        ready_tail = it;
        ++ready_count;
    }
    ReadyItem* pop_ready() noexcept {
        ReadyItem* it = ready_head;
        if (it) {
            ready_head = it->ready_next;
            if (!ready_head) ready_tail = nullptr;
            --ready_count;
        }
        return it;
    }

    // ---- scheduler (scheduler.cpp) ----
    /// Runs iterations until `stop()` returns true (checked between iterations).
    void run(const std::function<bool()>& stop);
    /// One iteration's steps: the items ready now, in order.
    void run_ready_once();
    void run_item(ReadyItem* it);
    void resume(TaskBase* t);
    /// Runs a new task at once, from the code that spawns it (a task or a callback on this
    /// loop's thread), until its first suspension or its end; then returns (eager tasks).
    void run_eager(TaskBase* t);
    /// Gives a task that has never run its stack and fiber; false when it ended instead
    /// (cancelled before it ran, or no stack to be had: finished with that error).
    bool start_fiber(TaskBase* t);
    /// Runs the io_context's ready handlers (I/O completions, posts from other threads).
    void look_at_io();
    void finish(TaskBase* t) noexcept;
    void fire_due_timers();
    /// When idle: returns cached stacks and task blocks to the system once the loop has had
    /// them to spare for a second. Returns when to try again (time_point::max(): never).
    Clock::time_point give_back_memory() noexcept;
    /// Cancels every live task (again for tasks spawned meanwhile) and runs until none is left.
    void cancel_all_and_finish();

    // ---- callbacks (loop.cpp) ----
    /// Queues fn; the Handle may be dropped (the loop keeps its own reference).
    Handle call_soon(Callback<void()> fn);
    Handle call_at(Clock::time_point when, Callback<void()> fn);
    void run_callback(CallbackItem* cb) noexcept;
    void report(const ExceptionContext& ctx) noexcept;

    Loop* owner;  // null once the Loop object is gone (its tasks still finishing, see loop.cpp)
    std::size_t refs = 1;  // the Loop object's, plus one per task block
    ReadyItem* ready_head = nullptr;
    ReadyItem* ready_tail = nullptr;
    std::size_t ready_count = 0;
    TimerHeap timers;
    List live;  // every task not done (the loop holds a reference)
    std::size_t live_count = 0;
    std::uint64_t spawned = 0;      // tasks ever spawned on this loop
    TaskBase* running = nullptr;    // the task whose fiber runs now
    void* sched_fctx = nullptr;     // the scheduler's context while a task runs
    EhState* eh_globals = nullptr;  // this thread's C++ exception state
    EhState sched_eh;
    StackPool* stacks = nullptr;
    std::unique_ptr<IoDriver> io;
    /// The thread running the loop now (a default id while it does not run): read by other
    /// threads, to refuse what they may not do (check_loop_thread).
    std::atomic<std::thread::id> running_on{std::thread::id()};
    /// The thread whose stacks its started tasks use (the last one that ran it), until that
    /// thread has exited or the loop closed. Guarded by a process-wide mutex (loop.cpp).
    ThreadLoops* home = nullptr;
    TaskBase* main_task = nullptr;
    bool entered = false;
    bool stop_requested = false;
    /// Set by close(); written under post_m, since call_soon_threadsafe reads it from other
    /// threads.
    bool closed = false;
    bool interrupted = false;  // SIGINT cancelled main_task (af::run)
    std::mutex post_m;
    bool debug = false;
    std::uint64_t iterations = 0;
    /// The task that just switched out spent its budget (cooperate()): resume() queues it.
    bool budget_yield = false;
    std::int64_t io_looked_at_ns = 0;  // when the loop last polled or waited on its io_context
    Clock::duration slow_step = std::chrono::milliseconds(100);
    Callback<void(const ExceptionContext&)> exception_handler;
    /// Run by Loop::close() once every task is done, last added first (e.g. the thread
    /// pool's shutdown).
    std::vector<std::function<void()>> close_hooks;
    /// Loop time in ns, refreshed when the loop reads the clock anyway (timers, waking from
    /// I/O) and every 64 busy iterations: spawn stamps tasks with it without a clock read.
    std::int64_t cached_now_ns = 0;
    Clock::time_point spare_since;  // when an idle loop first had memory to give back (epoch: not)
    /// Bumped when a step (a task's run or a callback) begins and ends, for the watchdog.
    StepMark step;
    /// Loop::set_watchdog's settings and the watchdog thread, with the SIGQUIT dump it serves
    /// in debug mode (watchdog.cpp).
    WatchdogState watch;
    /// An embedded loop's link to the application's io_context (embedded_loop.cpp); null for
    /// a loop that owns its io_context.
    std::shared_ptr<Embedding> embedding;
    /// An embedded loop outside its handlers: a task or callback made ready must ask the
    /// io_context for a drive (request_drive).
    bool wake_on_push = false;
    bool driving = false;    // an embedded loop's drive handler runs
    bool end_drive = false;  // ...and returns to the io_context after this iteration
    /// Streams, servers, processes and signal handlers of this loop (io_objects.cpp); declared
    /// after `io` so that it goes first.
    std::shared_ptr<IoObjects> io_objects;
};

/// The loop running on this thread (entered, or an embedded loop whose io_context runs a
/// plain handler here), or nullptr.
LoopImpl* current_loop() noexcept;
/// The running loop (current_loop()); otherwise throws throw_outside_running_loop(what).
LoopImpl* loop_checked(const char* what);
/// The one message for an API used where no loop runs: RuntimeError "asyncfiber: <what>
/// called outside a running loop (use af::run)". current_task_checked() says the same.
[[noreturn]] void throw_outside_running_loop(const char* what);
/// The loop entered on this thread (LoopEntry, or an embedded loop's own handler), or nullptr.
LoopImpl* entered_loop() noexcept;
void set_current_loop(LoopImpl* l) noexcept;

/// For an operation that may complete without waiting and may be called inside or outside a
/// task (stream reads): inside a task, checks its stack pointer and draws on its budget
/// (cooperate()), which may yield.
void cooperate_if_in_task();
/// Inside a task, draws `units` from its budget without yielding (its next operation yields
/// if that spent it): for a stream write, which asyncio never interrupts (so that concurrent
/// writers' messages stay whole), and for the bytes a stream operation moved.
void spend_budget_if_in_task(std::size_t units) noexcept;

/// Registers `L` with the calling thread, whose stacks its tasks use from now on (LoopEntry).
/// Throws RuntimeError when tasks of `L` are suspended on another thread's stacks.
void adopt_loop_on_this_thread(LoopImpl* L);
/// Forgets `L`'s thread (Loop::close, once no task is left). Any thread.
void release_loop_from_its_thread(LoopImpl* L) noexcept;
/// Whether tasks of `L` use the stacks of a thread other than the calling one that is still
/// alive (so they can be finished only there).
bool loop_tasks_belong_to_another_thread(LoopImpl* L) noexcept;

/// Prints a report to stderr (the default exception handler).
void default_report(const ExceptionContext& ctx) noexcept;

/// While a task is suspended in this scope, a cancel goes to `hook` (asyncio's
/// _fut_waiter.cancel()); the hook in place before is put back at the end.
class CancelHookScope {
public:
    CancelHookScope(TaskBase* self, CancelHook& hook) noexcept
        : self_(self), previous_(self->cancel_hook) {
        self->cancel_hook = &hook;
    }
    ~CancelHookScope() { self_->cancel_hook = previous_; }
    CancelHookScope(const CancelHookScope&) = delete;
    CancelHookScope& operator=(const CancelHookScope&) = delete;

private:
    TaskBase* self_;
    CancelHook* previous_;
};

/// Requests cancellation of `t` (Task::cancel).
bool cancel_task(TaskBase* t, const std::string& msg);
/// Takes one cancellation request back (Task::uncancel); at zero a pending one is dropped.
int uncancel_task(TaskBase* t) noexcept;

/// A loop-clock duration in nanoseconds (the loop's step times, thresholds and stack
/// records keep plain integers, which a signal handler or another thread can read).
inline std::int64_t to_ns(Clock::duration d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}
/// A loop-clock time point in nanoseconds since the clock's epoch.
inline std::int64_t to_ns(Clock::time_point t) noexcept { return to_ns(t.time_since_epoch()); }
/// Now on the loop clock, in nanoseconds.
inline std::int64_t now_ns() noexcept { return to_ns(Clock::now()); }

}  // namespace detail
}  // namespace asyncfiber

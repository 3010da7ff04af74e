// The scheduler: the loop's iterations, and switching into and out of task fibers.
#include "fiber_switch.hpp"
#include "io_driver.hpp"
#include "loop_impl.hpp"
#include "overflow_guard.hpp"
#include "stack_pool.hpp"
#include "task_blocks.hpp"
#include "task_locals.hpp"
#include "debug_impl.hpp"
#include "embedded_loop.hpp"

#include <asyncfiber/detail/suspend.hpp>

#include <algorithm>
#include <new>

namespace asyncfiber {
namespace detail {

namespace {

thread_local LoopImpl* t_loop = nullptr;

// How many iterations may pass while tasks are always ready before the loop looks at I/O
// and other threads' wake-ups anyway (each look costs a system call).
constexpr std::uint64_t kIoPollEvery = 64;
// ...and whenever a task spends its budget, unless it looked less than this long ago: while
// tasks keep the loop busy, a reply on another connection then waits a budget's worth of
// work, not 64 iterations of it. A look costs about a microsecond, so a loop of operations
// that never wait pays a few percent at most.
constexpr std::int64_t kIoLookAfterBusyNs = 20 * 1000;

// Bytes a suspension point needs below it (the switch saves registers, the runtime calls
// a few small functions). Below this the stack is about to overflow.
constexpr std::size_t kStackMargin = 512;

// Operations a task may complete without waiting before it yields (cooperate()), as Tokio's
// coop budget (also 128); stream operations count their bytes too (stream_core.cpp). With
// one client streaming 200 MiB (bench/fairness.sh, docs/performance.md), a smaller budget
// only adds yields: what bounds a busy step there is its bytes.
constexpr std::uint8_t kCoopBudget = 128;

/// The stack-pointer check that stands in for a guard page on unguarded stacks (and catches
/// deep recursion on guarded ones before it reaches the guard, and frames that jumped the
/// guard): made at every suspension and on entry to every library call that may suspend.
/// Inlined, so that it reads the frame of the function it is written in.
__attribute__((always_inline)) inline void check_stack_pointer(TaskBase* self) {
    char* sp = static_cast<char*>(__builtin_frame_address(0));
    if (sp < self->stack->limit + kStackMargin)
        report_stack_overflow(self, "the stack pointer went below the stack's limit");
}

[[noreturn]] void leave_finished_fiber(TaskBase* t);

/// Switches into `t` and returns when it switches back (suspended or finished).
__attribute__((always_inline)) inline fctx::transfer_t run_step(TaskBase* t) noexcept {
    const bool san = sanitizer_fibers();
    if (san) san_leave_scheduler(t);
    fctx::transfer_t r = fctx::jump_fcontext(t->fctx, t);
    if (san) san_arrive_scheduler(t, r.data == finished_marker());
    return r;
}

/// run_step, with the task's values of the bound thread_locals in the thread's objects.
__attribute__((noinline)) fctx::transfer_t run_step_swapping_thread_locals(TaskBase* t) noexcept {
    const std::size_t mark = swap_in_thread_locals(t);
    const fctx::transfer_t r = run_step(t);
    swap_out_thread_locals(mark);
    return r;
}

void task_entry(fctx::transfer_t from) {
    if (sanitizer_fibers()) san_arrive_task(nullptr);
    auto* t = static_cast<TaskBase*>(from.data);
    LoopImpl* L = t->loop;
    L->sched_fctx = from.fctx;
    try {
        t->run_body();
        if (t->must_cancel) {
            // cancel() arrived while it ran and it returned before any suspension point:
            // asyncio counts such a task as cancelled.
            t->discard_value();
            t->outcome = TaskOutcome::cancelled;
        }
    } catch (const CancelledError& e) {
        t->outcome = TaskOutcome::cancelled;
        t->set_cancel_msg(e.message());
    } catch (...) {
        t->error = std::current_exception();
        t->outcome = TaskOutcome::error;
    }
    t->drop_body();
    leave_finished_fiber(t);
}

void leave_finished_fiber(TaskBase* t) {
    LoopImpl* L = t->loop;
    if (sanitizer_fibers()) san_leave_task(nullptr);
    fctx::jump_fcontext(L->sched_fctx, finished_marker());
    __builtin_unreachable();
}

}  // namespace

std::atomic<bool> g_sanitizer_fibers{false};

LoopImpl* current_loop() noexcept {
    if (LoopImpl* L = t_loop) return L;
    // A plain handler of an embedded loop's io_context on its thread: that loop (its handlers
    // outside a drive, the library's own included, act on it as the owned loop's I/O
    // handlers do on theirs).
    return embedded_loop_running_here();
}

LoopImpl* entered_loop() noexcept { return t_loop; }
void set_current_loop(LoopImpl* l) noexcept {
    t_loop = l;
    if (l) detect_sanitizers();  // before the loop's first switch
}

TaskBase* current_task_or_null() noexcept { return t_loop ? t_loop->running : nullptr; }

void throw_outside_running_loop(const char* what) {
    throw RuntimeError(std::string("asyncfiber: ") + what +
                       " called outside a running loop (use af::run)");
}

LoopImpl* loop_checked(const char* what) {
    LoopImpl* L = current_loop();
    if (!L) throw_outside_running_loop(what);
    return L;
}

TaskBase* current_task_checked(const char* what) {
    LoopImpl* L = t_loop;
    if (!L) throw_outside_running_loop(what);
    TaskBase* t = L->running;
    if (!t)
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " called outside a task (from the loop's own stack, e.g. a callback)");
    check_stack_pointer(t);
    return t;
}

void cooperate_if_in_task() {
    LoopImpl* L = t_loop;
    TaskBase* t = L ? L->running : nullptr;
    if (!t) return;
    check_stack_pointer(t);
    cooperate(t);
}

void spend_budget_if_in_task(std::size_t units) noexcept {
    LoopImpl* L = t_loop;
    TaskBase* t = L ? L->running : nullptr;
    if (!t || units == 0) return;
    t->budget = units < t->budget ? static_cast<std::uint8_t>(t->budget - units) : 0;
}

bool LoopImpl::start_fiber(TaskBase* t) {
    if (t->must_cancel) {  // cancelled before it ever ran: it never runs
        t->must_cancel = false;
        t->outcome = TaskOutcome::cancelled;
        t->drop_body();
        finish(t);
        return false;
    }
    try {
        t->stack = stacks->allocate(t->requested_stack_size());
    } catch (...) {
        t->error = std::current_exception();
        t->outcome = TaskOutcome::error;
        t->drop_body();
        finish(t);
        return false;
    }
    t->fctx = fctx::make_fcontext(
        t->stack->top(), static_cast<std::size_t>(t->stack->top() - t->stack->limit), &task_entry);
    return true;
}

void LoopImpl::resume(TaskBase* t) {
    ASYNCFIBER_ASSERT(t->status == TaskStatus::created || t->status == TaskStatus::ready,
                      "a task resumed that was not queued to run");
    ASYNCFIBER_ASSERT(running == nullptr, "a task resumed from inside another task's step");
    if (t->status == TaskStatus::created && !start_fiber(t)) return;
    t->status = TaskStatus::running;
    t->budget = kCoopBudget;  // it suspended (or is new): a fresh budget
    running = t;
    // Each task has its own C++ exception state (kept in its StackInfo while it is away), so
    // that a task suspended inside a catch block still sees its exception.
    sched_eh = *eh_globals;
    *eh_globals = t->stack->eh;
    // Debug mode times the step; otherwise no clock is read here (the hot path).
    const std::int64_t step_start = debug ? now_ns() : 0;
    // Bound thread_locals (af::bind_thread_local) are swapped the same way, on a path of
    // their own, so that a program that binds none pays one load and one branch per switch.
    const fctx::transfer_t r = __builtin_expect(thread_locals_bound(), 0)
                                   ? run_step_swapping_thread_locals(t)
                                   : run_step(t);
    t->stack->eh = *eh_globals;
    *eh_globals = sched_eh;
    running = nullptr;
    if (step_start != 0) check_step_duration(this, t, step_start, r.data == finished_marker());
    if (r.data == finished_marker()) {
        t->fctx = nullptr;
        stacks->release(t->stack);
        t->stack = nullptr;
        finish(t);
    } else {
        t->fctx = r.fctx;
        if (budget_yield) {
            // It spent its budget: a busy step, so this is also when the loop looks at I/O
            // (by time: at most every kIoLookAfterBusyNs), and what that makes ready goes
            // before the task, which goes to the back of the queue. A reply on another
            // connection then waits one such step, not 64 iterations of them.
            budget_yield = false;
            if (now_ns() - io_looked_at_ns >= kIoLookAfterBusyNs) look_at_io();
            push_ready(t);
        }
    }
}

void LoopImpl::run_eager(TaskBase* t) {
    if (!start_fiber(t)) return;
    // The new task switches back to whoever spawned it, not to the scheduler: for this one
    // run, the spawner (a task, or the scheduler's own stack in a callback) plays the
    // scheduler. The task's switches read sched_fctx, so it is the spawner's while the task
    // runs and the scheduler's again afterwards; the spawner's exception state and `running`
    // are put back the same way. Nested eager spawns nest these frames.
    TaskBase* const spawner = running;
    void* const spawner_sched_fctx = sched_fctx;
    const EhState spawner_eh = *eh_globals;
    *eh_globals = t->stack->eh;
    t->status = TaskStatus::running;
    t->budget = kCoopBudget;
    running = t;
    SanitizerSpawnerSave san;
    const bool sanitizers = sanitizer_fibers();
    if (sanitizers) san_leave_spawner(t, san);
    // Bound thread_locals: the new task's values go in over the spawner's (or the thread's own
    // in a callback), and come back out when it switches back.
    const bool bound = thread_locals_bound();
    const std::size_t mark = bound ? swap_in_thread_locals(t) : 0;
    fctx::transfer_t r = fctx::jump_fcontext(t->fctx, t);
    if (bound) swap_out_thread_locals(mark);
    const bool finished = r.data == finished_marker();
    if (sanitizers) san_arrive_spawner(t, finished, san);
    t->stack->eh = *eh_globals;
    *eh_globals = spawner_eh;
    running = spawner;
    sched_fctx = spawner_sched_fctx;
    if (finished) {
        t->fctx = nullptr;
        stacks->release(t->stack);
        t->stack = nullptr;
        finish(t);
        return;
    }
    t->fctx = r.fctx;
    if (budget_yield) {  // it spent its budget in its first step: to the back of the queue
        budget_yield = false;
        push_ready(t);
    }
}

void LoopImpl::look_at_io() {
    if (driving) {
        // An embedded loop runs as a handler of the application's io_context: returning to
        // it is how the loop looks at I/O (the drive ends after this iteration).
        end_drive = true;
    } else {
        io->poll();
    }
    // Task ages stay within 64 iterations of the truth.
    io_looked_at_ns = cached_now_ns = now_ns();
}

void LoopImpl::finish(TaskBase* t) noexcept {
    // Once per task, on its own loop, after its stack went back (start_fiber: never had one).
    ASYNCFIBER_ASSERT(t->status != TaskStatus::done, "a task finished twice");
    ASYNCFIBER_ASSERT(t->loop == this && live_count > 0,
                      "a task finished by a loop it does not count on");
    ASYNCFIBER_ASSERT(t->stack == nullptr, "a task finished while it still holds its stack");
    t->status = TaskStatus::done;
    static_cast<LiveLink*>(t)->unlink();
    --live_count;
    while (ListNode* n = t->listeners.pop_front()) {
        auto* l = static_cast<DoneListener*>(n);
        l->on_done(l, t);
    }
    t->release();  // the loop's reference
}

void LoopImpl::run_item(ReadyItem* it) {
    if (it->kind == ReadyItem::Kind::task)
        resume(static_cast<TaskBase*>(it));
    else
        run_callback(static_cast<CallbackItem*>(it));
}

void LoopImpl::fire_due_timers() {
    Clock::time_point now = Clock::now();
    cached_now_ns = to_ns(now);
    while (TimerNode* n = timers.pop_due(now)) n->fire(n);
}

Clock::time_point LoopImpl::give_back_memory() noexcept {
    // A second after the loop first idled with memory to spare: giving memory back costs
    // system calls now and page faults when it is needed again, and a burst of tasks is
    // often followed by another (or idles briefly in its middle, between timers).
    constexpr auto kAfter = std::chrono::seconds(1);
    if (!stacks->has_spare() && !task_blocks_have_spare()) {
        spare_since = Clock::time_point();
        return Clock::time_point::max();
    }
    const Clock::time_point now = Clock::now();
    if (spare_since == Clock::time_point()) spare_since = now;
    if (now - spare_since < kAfter) return spare_since + kAfter;
    spare_since = Clock::time_point();
    stacks->trim();
    trim_task_blocks();
    return Clock::time_point::max();
}

namespace {
/// What is ready now runs once; what becomes ready meanwhile waits for the next iteration
/// (FIFO round robin, as asyncio's _run_once). Inlined into LoopImpl::run: as for park(), a
/// call level less around the switch is a mispredicted return less per step.
__attribute__((always_inline)) inline void run_ready_items(LoopImpl* L) {
    for (std::size_t n = L->ready_count; n > 0; --n) {
        ReadyItem* it = L->pop_ready();
        if (!it) break;
        L->step.begin();  // for the watchdog: two relaxed stores, no clock read
        L->run_item(it);
        L->step.end();
    }
}
}  // namespace

void LoopImpl::run_ready_once() { run_ready_items(this); }

void LoopImpl::run(const std::function<bool()>& stop) {
    stop_requested = false;
    for (;;) {
        if (!timers.empty()) fire_due_timers();
        if (!ready_head) {
            if (stop_requested || stop()) break;
            if (ready_head) continue;  // stop() made tasks ready (cancel_all_and_finish does)
            // Memory to give back later bounds the wait: an idle loop returns it even when
            // nothing else would wake it.
            Clock::time_point until = give_back_memory();
            if (!timers.empty()) until = std::min(until, timers.next_deadline());
            if (until == Clock::time_point::max())
                io->wait();
            else
                io->wait_until(until);
            io_looked_at_ns = cached_now_ns = now_ns();
            continue;
        }
        run_ready_items(this);
        if (stop_requested || stop()) break;
        if (++iterations % kIoPollEvery == 0) look_at_io();
    }
}

void LoopImpl::cancel_all_and_finish() {
    std::uint64_t seen = static_cast<std::uint64_t>(-1);
    auto cancel_new = [&] {
        if (seen == spawned) return;  // new tasks appeared: they are cancelled too
        seen = spawned;
        for (ListNode* n = live.first(); n != live.end();) {
            TaskBase* t = TaskBase::from_live(n);
            n = n->next;
            if (t->cancel_requests == 0) cancel_task(t, "the loop is closing");
        }
    };
    // Before the first step: a task queued but never started (Loop::spawn before the loop
    // ran) ends cancelled without running, as asyncio's cancelled task never enters its body.
    cancel_new();
    run([&] {
        if (live_count == 0) return true;
        cancel_new();
        return false;
    });
}

// ---- suspension points ----

namespace {
/// The task side of every switch back to the scheduler: checks the stack, records what the
/// task waits on, switches, and picks up the scheduler's new context when resumed. Inlined
/// into its two callers, which are the hottest paths of the runtime.
__attribute__((always_inline)) inline void switch_to_scheduler(TaskBase* self, TaskStatus status,
                                                               const char* what) {
    LoopImpl* L = self->loop;
    check_stack_pointer(self);
    self->status = status;
    self->stack->waiting_on = what;
    void* san = nullptr;
    const bool sanitized = sanitizer_fibers();
    if (sanitized) san_leave_task(&san);
    fctx::transfer_t r = fctx::jump_fcontext(L->sched_fctx, nullptr);
    if (sanitized) san_arrive_task(san);
    L->sched_fctx = r.fctx;
    // waiting_on stays as it is while the task runs (readers look at it only for a task that
    // is away): clearing it here would cost the hottest path a load and a store.
}
}  // namespace

void suspend(TaskBase* self, const char* what) {
    switch_to_scheduler(self, TaskStatus::suspended, what);
}

bool wake(TaskBase* t) noexcept {
    if (t->status != TaskStatus::suspended) return false;
    t->status = TaskStatus::ready;
    t->loop->push_ready(t);
    return true;
}

void throw_if_cancelled(TaskBase* self) {
    if (self->must_cancel) {
        self->must_cancel = false;
        throw CancelledError(self->cancel_msg());
    }
}

namespace {
// A waiter whose task is cancelled leaves its wait list at once, as asyncio's cancelled
// future is skipped by whoever wakes the next waiter: a unit, item or slot released before
// the cancelled task runs goes to the next waiter in the same iteration. The cancellation
// itself is delivered as usual (false: not taken over).
struct WaiterCancelHook : CancelHook {
    Waiter* w = nullptr;
};

bool unlink_cancelled_waiter(CancelHook* h, const std::string&) {
    Waiter* w = static_cast<WaiterCancelHook*>(h)->w;
    w->cancelled = true;
    if (!w->keep_linked_on_cancel) stop_waiting(*w);
    return false;
}
}  // namespace

void throw_primitive_destroyed(const char* what) {
    throw RuntimeError(std::string("asyncfiber: waiting in ") + what +
                       ": the primitive was destroyed while this task waited on it (destroy a "
                       "primitive only once no task uses it)");
}

void park(Waiter& w, const char* what) {
    TaskBase* self = w.task;
    // The waiter is its own task's, queued on the primitive's list before it parks: whoever
    // notifies finds it there, and the task that suspends is the one it wakes.
    ASYNCFIBER_ASSERT(self && self->loop->running == self,
                      "a waiter parked by a task other than its own");
    ASYNCFIBER_ASSERT(w.linked() && !w.notified, "a waiter parked while not on a wait list");
    throw_if_cancelled(self);
    WaiterCancelHook hook;
    hook.forward = &unlink_cancelled_waiter;
    hook.w = &w;
    CancelHookScope scope(self, hook);
    for (;;) {
        // The switch itself, not suspend(): a call level less between the task's code and
        // the switch is one mispredicted return less each time the task resumes (the return
        // predictor holds the other stack's addresses then); docs/performance.md.
        switch_to_scheduler(self, TaskStatus::suspended, what);
        // Before anything else: the primitive may be gone. A cancellation pending meanwhile
        // stays pending for the next suspension point.
        if (w.orphaned) throw_primitive_destroyed(what);
        if (self->must_cancel) {
            stop_waiting(w);
            throw_if_cancelled(self);
        }
        if (w.notified) return;
        // Cancelled, then uncancel() withdrew the request before it was delivered: as in
        // asyncio, whose cancelled future stays cancelled, the wait ends cancelled.
        if (w.cancelled) {
            stop_waiting(w);
            throw CancelledError();
        }
    }
}

void add_timer(TimerNode& n, Clock::time_point when) {
    LoopImpl* L = t_loop;
    if (!L) throw_outside_running_loop("a timeout or deadline (af::timeout, af::wait_for)");
    L->timers.push(&n, when);
}

void remove_timer(TimerNode& n) noexcept {
    if (n.scheduled() && t_loop) t_loop->timers.remove(&n);
}

}  // namespace detail

namespace detail {
void cooperative_yield(TaskBase* self) {
    throw_if_cancelled(self);
    // As sleep(0), but resume() queues it, once it has looked at I/O.
    self->loop->budget_yield = true;
    switch_to_scheduler(self, TaskStatus::ready, "cooperative yield");
    throw_if_cancelled(self);
}
}  // namespace detail

void yield_now() {
    // The running task, checked as current_task_checked does, less its stack check: the
    // switch below makes it, in this same frame.
    detail::TaskBase* self = detail::current_task_or_null();
    if (!self) self = detail::current_task_checked("af::sleep(0)");  // throws what it lacks
    detail::throw_if_cancelled(self);
    self->loop->push_ready(self);
    detail::switch_to_scheduler(self, detail::TaskStatus::ready, "sleep(0)");
    detail::throw_if_cancelled(self);
}

namespace {
struct SleepTimer : detail::TimerNode {
    detail::TaskBase* task;
};
}  // namespace

void sleep_until(Clock::time_point deadline) {
    detail::TaskBase* self = detail::current_task_checked("af::sleep");
    detail::throw_if_cancelled(self);
    SleepTimer timer;
    timer.task = self;
    timer.fire = [](detail::TimerNode* n) { detail::wake(static_cast<SleepTimer*>(n)->task); };
    self->loop->timers.push(&timer, deadline);
    self->stack->wake_ns = detail::to_ns(deadline);
    while (timer.scheduled() && !self->must_cancel) detail::suspend(self, "sleep");
    if (timer.scheduled()) self->loop->timers.remove(&timer);
    detail::throw_if_cancelled(self);
}

}  // namespace asyncfiber

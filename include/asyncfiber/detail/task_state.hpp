// Internal: the state shared by a task's fiber, its handles and the loop.
//
// One heap block per task holds the bookkeeping (TaskBase), the result (TaskState<R>) and the
// callable with its arguments (TaskImpl). Handles count references; the loop holds one while
// the task is alive, so a fire-and-forget task never vanishes. Nothing here is thread-safe: a
// task and its handles belong to the thread of the loop that runs it.
#pragma once

#include <asyncfiber/detail/assert.hpp>
#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace asyncfiber {

class Context;

/// The value of a void result inside tuples and vectors (gather, Outcome).
struct None {
    friend bool operator==(None, None) noexcept { return true; }
    friend bool operator!=(None, None) noexcept { return false; }
};

namespace detail {

struct LoopImpl;
class TaskBase;
struct TaskLocals;

/// Something the loop runs from its ready queue: a task's next step or a callback.
struct ReadyItem {
    enum class Kind : std::uint8_t { task, callback };
    explicit ReadyItem(Kind k) noexcept : kind(k) {}
    ReadyItem* ready_next = nullptr;
    Kind kind;
};

enum class TaskStatus : std::uint8_t {
    created,    // spawned, never run (has no stack yet)
    ready,      // in the ready queue
    running,    // the fiber executing now
    suspended,  // parked at a suspension point
    done
};

enum class TaskOutcome : std::uint8_t { none, value, error, cancelled };

/// Told when a task finishes. Nodes belong to whoever waits (often on the waiter's stack).
struct DoneListener : ListNode {
    void (*on_done)(DoneListener* self, TaskBase* finished) = nullptr;
    /// The task suspended until this fires (await, gather, wait, a TaskGroup's join), for
    /// the await graph (af::dump_tasks, af::capture_call_graph, af-pstree in gdb); null for
    /// a done callback. Only set while that task is alive.
    TaskBase* waiter = nullptr;
};

/// The C++ runtime's per-thread exception state (__cxa_eh_globals), saved per task.
struct EhState {
    void* caught = nullptr;
    unsigned int uncaught = 0;
};

/// Where the fiber's stack lives, and what a suspended task keeps of its own. The stack pool
/// writes it at the top of the stack itself when the task first runs, so a task that has not
/// run yet pays nothing for it.
struct StackInfo {
    /// Bytes reserved for this record at the top of the stack.
    static constexpr std::size_t kReserved = 64;

    char* limit = nullptr;   // lowest usable address
    void* slot = nullptr;    // the pool's bookkeeping
    std::uint32_t size = 0;  // the stack's size, this record included
    bool guarded = false;    // a guard page (marker or PROT_NONE) lies below `limit`
    EhState eh;              // the task's exception state while it is away
    // What the task waits on while it is away, for dumps: kept here rather than in the task
    // block because only a task that has run (and so has a stack) can wait.
    const char* waiting_on = nullptr;  // the last suspension point's name (stale while running)
    std::int64_t wake_ns = 0;          // while sleeping: the deadline

    /// Where the fiber's frames start (just below this record).
    char* top() const noexcept { return limit + size - kReserved; }
};

/// What few tasks need, kept out of the task block so that the common task stays small (a
/// million tasks are a million blocks): allocated on first use.
struct TaskExtras {
    TaskExtras() = default;
    TaskExtras(const TaskExtras&) = delete;
    TaskExtras& operator=(const TaskExtras&) = delete;
    ~TaskExtras();  // lib/runtime/context.cpp

    std::string name;  // empty: "Task-<id>"
    std::string cancel_msg;
    std::size_t stack_size = 0;       // requested; 0 = the default
    void* sanitizer_fiber = nullptr;  // ThreadSanitizer's fiber (sanitized builds only)
    TaskLocals* locals = nullptr;     // owned: its context and bound thread_locals' values
};

/// A task's link in its loop's list of live tasks.
struct LiveLink : ListNode {};

/// Takes a cancellation over while a task is suspended (asyncio's _fut_waiter.cancel()):
/// what the task awaits puts one on its own stack. Returns true when it took it over.
struct CancelHook {
    bool (*forward)(CancelHook* self, const std::string& msg) = nullptr;
};

// LiveLink comes first so that the task's flags fill the ReadyItem's tail padding.
class TaskBase : public LiveLink, public ReadyItem {
public:
    TaskBase() noexcept : ReadyItem(Kind::task) {}
    TaskBase(const TaskBase&) = delete;
    TaskBase& operator=(const TaskBase&) = delete;

    static TaskBase* from_live(ListNode* n) noexcept {
        return static_cast<TaskBase*>(static_cast<LiveLink*>(n));
    }

    // Task blocks come from a per-thread cache (lib/runtime/task_blocks.cpp): tasks are created and
    // destroyed in bursts.
    static void* operator new(std::size_t n);
    static void operator delete(void* p, std::size_t n) noexcept;
#if defined(__cpp_aligned_new)
    static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
    static void operator delete(void* p, std::size_t, std::align_val_t a) noexcept {
        ::operator delete(p, a);
    }
#endif

    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        ASYNCFIBER_ASSERT(refs > 0, "a task block released more often than it was referenced");
        if (--refs == 0) delete this;
    }

    bool is_done() const noexcept { return status == TaskStatus::done; }

    /// Runs the callable and stores its value; exceptions go to the caller (the fiber entry).
    virtual void run_body() = 0;
    /// Destroys the callable and its arguments (after the run, or when cancelled unstarted).
    virtual void drop_body() noexcept = 0;
    /// Destroys a stored value (a task cancelled while it ran and returned: it counts as
    /// cancelled).
    virtual void discard_value() noexcept {}
    virtual ~TaskBase();

    /// Throws the stored exception or CancelledError; marks the outcome as retrieved.
    void rethrow_if_failed();

    // The rare fields' accessors are defined in lib/runtime/task.cpp, so that this header
    // instantiates none of std::string's code.
    /// The rarely used fields, created on first use.
    TaskExtras& extras();
    /// The rarely used fields, or null while none was needed.
    TaskExtras* extras_if_any() const noexcept { return extras_; }
    /// The name given to the task; empty if none (it is then called "Task-<id>").
    const std::string& given_name() const noexcept;
    const std::string& cancel_msg() const noexcept;
    void set_cancel_msg(const std::string& msg);
    std::size_t requested_stack_size() const noexcept;
    /// What the task waits on (the suspension point's name) while it is suspended, or waited
    /// on before it was woken while it is ready; null for a task that has not run yet.
    const char* waiting_on() const noexcept {
        return stack && status != TaskStatus::running ? stack->waiting_on : nullptr;
    }

    // ---- bookkeeping; small fields first so that they share the ReadyItem's padding ----
    TaskStatus status = TaskStatus::created;
    TaskOutcome outcome = TaskOutcome::none;
    bool must_cancel = false;  // a cancellation waits to be thrown at a suspension point
    bool retrieved = false;    // someone looked at the outcome
    bool awaited = false;      // someone awaited/gathered it (debug: "never awaited")
    bool has_body = false;     // the callable and its arguments are alive
    /// Operations it may still complete without waiting before it must yield (cooperate()):
    /// refilled each time the loop resumes it. Fills the last byte of padding.
    std::uint8_t budget = 0;
    std::uint32_t refs = 1;
    std::uint32_t cancel_requests = 0;  // asyncio's cancelling()
    LoopImpl* loop = nullptr;
    void* fctx = nullptr;        // the suspended fiber context
    StackInfo* stack = nullptr;  // at the top of its stack, while it has one
    std::uint64_t id = 0;
    List listeners;                     // DoneListener nodes
    CancelHook* cancel_hook = nullptr;  // while suspended: where a cancel goes
    std::int64_t created_ns = 0;        // loop time at spawn, for dumps
    std::exception_ptr error;

private:
    TaskExtras* extras_ = nullptr;  // owned; a plain pointer so that debuggers read it easily
};

template <class T>
struct ResultOf {
    using type = T;
};
template <>
struct ResultOf<void> {
    using type = None;
};

/// A task with a result of type R.
template <class R>
class TaskState : public TaskBase {
public:
    ~TaskState() override {
        if (outcome == TaskOutcome::value) value_ptr()->~R();
    }
    template <class... A>
    void set_value(A&&... a) {
        ::new (static_cast<void*>(&storage_)) R(std::forward<A>(a)...);
        outcome = TaskOutcome::value;
    }
    R& value() {
        rethrow_if_failed();
        return *value_ptr();
    }
    void discard_value() noexcept override {
        if (outcome == TaskOutcome::value) value_ptr()->~R();
        outcome = TaskOutcome::none;
    }

private:
    R* value_ptr() noexcept { return reinterpret_cast<R*>(&storage_); }
    typename std::aligned_storage<sizeof(R), alignof(R)>::type storage_;
};

template <>
class TaskState<void> : public TaskBase {
public:
    void set_value() { outcome = TaskOutcome::value; }
    void value() { rethrow_if_failed(); }
};

template <class F, class... Args>
using call_result_t =
    typename std::decay<decltype(std::declval<F>()(std::declval<Args>()...))>::type;

/// One of a BoundCall's arguments (the index tells arguments of one type apart).
template <std::size_t I, class T>
struct BoundArg {
    template <class U>
    explicit BoundArg(U&& u) : value(std::forward<U>(u)) {}
    T value;
};

template <class Indices, class F, class... Args>
class BoundCallImpl;

/// A callable with its arguments, called once: how a task's body, a to_thread job and a call
/// run on another loop (Runtime::spawn_on) keep what they were given, and then what they got.
/// (Its own few lines rather than std::tuple, whose header costs every file that includes
/// task.hpp about as much as the rest of it: docs/performance.md, "Header weight".)
template <std::size_t... I, class F, class... Args>
class BoundCallImpl<std::index_sequence<I...>, F, Args...> : BoundArg<I, Args>... {
public:
    template <class FF, class... AA>
    explicit BoundCallImpl(FF&& f, AA&&... a)
        : BoundArg<I, Args>(std::forward<AA>(a))..., f_(std::forward<FF>(f)) {}

    using result_type = decltype(std::declval<F&&>()(std::declval<Args&&>()...));

    /// Calls the callable with the arguments (both moved from) and hands the result to
    /// `store(result)`, or calls `store()` when the callable returns void.
    template <class Store>
    void call_into(Store&& store) {
        call_into(store, std::is_void<result_type>{});
    }

private:
    template <class Store>
    void call_into(Store& store, std::false_type) {
        store(std::move(f_)(std::move(static_cast<BoundArg<I, Args>&>(*this).value)...));
    }
    template <class Store>
    void call_into(Store& store, std::true_type) {
        std::move(f_)(std::move(static_cast<BoundArg<I, Args>&>(*this).value)...);
        store();
    }

    F f_;
};

template <class F, class... Args>
using BoundCall = BoundCallImpl<std::index_sequence_for<Args...>, F, Args...>;

/// The concrete task: the callable and its decayed arguments, kept until the task has run.
template <class R, class F, class... Args>
class TaskImpl final : public TaskState<R> {
    using Body = BoundCall<F, Args...>;

public:
    template <class FF, class... AA>
    explicit TaskImpl(FF&& f, AA&&... a) {
        ::new (static_cast<void*>(&body_)) Body(std::forward<FF>(f), std::forward<AA>(a)...);
        this->has_body = true;
    }
    ~TaskImpl() override { drop_body(); }

    void run_body() override {
        body()->call_into(
            [this](auto&&... v) { this->set_value(std::forward<decltype(v)>(v)...); });
    }
    void drop_body() noexcept override {
        if (this->has_body) {
            this->has_body = false;
            body()->~Body();
        }
    }

private:
    Body* body() noexcept { return reinterpret_cast<Body*>(&body_); }
    typename std::aligned_storage<sizeof(Body), alignof(Body)>::type body_;
};

// ---- entry points implemented in lib/, used by the header templates ----

/// Yields to the back of the ready queue because `self` spent its budget: a suspension
/// point like sleep(0) (it throws CancelledError if the task was cancelled meanwhile).
void cooperative_yield(TaskBase* self);

/// The cooperative budget (as Tokio's coop): every operation that may complete without
/// waiting (stream reads and writes, drain, queue gets and puts, lock, semaphore and event
/// acquisitions, use_await operations) calls this first, so that a task whose operations
/// keep completing at once (a peer that always has data) still lets the others run: when its
/// budget is spent, it yields before the operation starts (so a cancellation landing there
/// takes nothing from anyone). The budget is refilled whenever the task is resumed.
inline void cooperate(TaskBase* self) {
    if (self->budget == 0) cooperative_yield(self);
    --self->budget;
}

/// How a caller uses something that belongs to a loop (see check_loop_thread).
enum class LoopUse : std::uint8_t {
    act,   // change it (cancel a task, add a callback): on the loop's thread while it runs, or
           // from any thread while no thread runs the loop
    await  // wait for it: only from a task of that same loop
};
/// The one check that the calling thread may use what belongs to loop `L` (a task, the loop
/// itself): throws RuntimeError naming `what` and the thread-safe ways to do it
/// (Loop::call_soon_threadsafe, af::run_coroutine_threadsafe) otherwise. Cheap when the
/// calling thread runs `L`.
void check_loop_thread(LoopImpl* L, const char* what, LoopUse use);

/// The running task of this thread's loop; throws RuntimeError naming `what` otherwise.
TaskBase* current_task_checked(const char* what);
/// The running task, or nullptr outside a task. Async-signal-safe (the stack overflow
/// handler asks it which task overflowed).
TaskBase* current_task_or_null() noexcept;
/// Hands a new task (with its options) to the loop running on this thread: queued, or run at
/// once until its first suspension when `eager`. `context`: the task's explicit context
/// (TaskOptions::context), or null for a copy of its creator's.
void spawn(TaskBase* t, std::string name, std::size_t stack_size, const Context* context,
           bool eager);
/// Suspends the calling task until `t` is done. Cancelling the caller cancels `t`
/// (asyncio's await semantics). Throws RuntimeError for a task awaiting itself.
void await_done(TaskBase* t);

/// Makes the tasks among `tasks` (null entries are skipped) that have not started yet start
/// in the order given: their places in the ready queue are exchanged among themselves when
/// they were spawned in another order; nothing else moves. One look at each task when they
/// are in order already.
void start_in_argument_order(TaskBase* const* tasks, std::size_t n);

/// How wait_children ends.
enum class GatherMode : std::uint8_t {
    first_error,  // gather: return early at the first child that fails or is cancelled
    all           // gather_settled: wait for every child
};
/// Marks every child awaited and its outcome retrieved, then suspends until the children are
/// done (or, in first_error mode, one failed). Cancelling the caller cancels every child.
/// Returns the index of the first child that failed, or -1. In `all` mode throws
/// CancelledError after the children finished if the caller was cancelled.
std::ptrdiff_t wait_children(TaskBase* const* tasks, std::size_t n, GatherMode mode);

}  // namespace detail
}  // namespace asyncfiber

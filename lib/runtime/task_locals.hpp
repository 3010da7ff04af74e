// Internal: task-local state, what a task keeps of it and when the runtime looks at it.
//
// A task's context (af::ContextVar values) and its values of bound thread_locals
// (af::bind_thread_local) live in TaskLocals, hung off the task's TaskExtras, so that a task
// of a program that uses neither costs nothing: one relaxed load of g_task_local_use at
// spawn, at each switch and wherever a callback is scheduled, and no field in the task block.
#pragma once

#include <asyncfiber/context.hpp>
#include <asyncfiber/detail/task_state.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace asyncfiber {
namespace detail {

/// Bit 0 (kContextsUsed): some ContextVar was set at least once in this process; above it
/// (kOneBinding each): how many thread_locals are bound now.
extern std::atomic<std::uint32_t> g_task_local_use;
constexpr std::uint32_t kContextsUsed = 1;
constexpr std::uint32_t kOneBinding = 2;

inline bool task_locals_in_use() noexcept {
    return g_task_local_use.load(std::memory_order_relaxed) != 0;
}
inline bool contexts_in_use() noexcept {
    return (g_task_local_use.load(std::memory_order_relaxed) & kContextsUsed) != 0;
}
inline bool thread_locals_bound() noexcept {
    return g_task_local_use.load(std::memory_order_relaxed) >= kOneBinding;
}

/// A task's own value of one bound thread_local (the thread's own value while the task runs:
/// the two are swapped).
struct BoundValue {
    std::shared_ptr<BindingCore> binding;  // keeps the type's operations while values live
    void* value;
};

struct TaskLocals {
    TaskLocals() = default;
    TaskLocals(const TaskLocals&) = delete;
    TaskLocals& operator=(const TaskLocals&) = delete;
    ~TaskLocals();

    ContextPtr context;              // null: the empty context
    std::vector<BoundValue> values;  // one per binding the task has run under
};

/// The task's TaskLocals, created on first use.
TaskLocals& task_locals(TaskBase* t);

/// At spawn: gives `t` its explicit context (TaskOptions::context) or a copy of its
/// creator's, and copies of its creator's values of the bound thread_locals.
void init_task_locals(TaskBase* t, const Context* explicit_context);
inline void start_task_locals(TaskBase* t, const Context* explicit_context) {
    if ((explicit_context && *explicit_context) || task_locals_in_use())
        init_task_locals(t, explicit_context);
}
/// Appends copies of the calling thread's objects of every bound thread_local
/// (thread_local_bindings.cpp).
void copy_bound_values(TaskLocals& into);

/// Around a task's step (scheduler.cpp, when thread_locals_bound()): puts the task's values
/// into the thread's objects, and the values they held before back. swap_in returns the mark
/// to give swap_out: an eager task's step (LoopImpl::run_eager) nests inside its spawner's.
std::size_t swap_in_thread_locals(TaskBase* t) noexcept;
void swap_out_thread_locals(std::size_t mark = 0) noexcept;

/// Puts `ctx` in place as the calling thread's context outside tasks; returns the one before.
ContextPtr exchange_thread_context(ContextPtr ctx) noexcept;

/// Around a callback run on the thread's own stack (a loop callback, a function posted by
/// call_soon_threadsafe, a to_thread job): it starts in an empty context of its own, so that
/// what it sets stays with it, as asyncio runs every callback in a copy of its scheduler's
/// context (one scheduled while no ContextVar had ever been set carried none: it had an empty
/// one). Nothing to do while no ContextVar was ever set.
class CallbackContextScope {
public:
    CallbackContextScope() noexcept : active_(contexts_in_use()) {
        if (active_) saved_ = exchange_thread_context(ContextPtr());
    }
    ~CallbackContextScope() {
        // Also when the callback set the first ContextVar ever: the thread's context was
        // empty (null) before it, and is again.
        if (active_ || contexts_in_use()) exchange_thread_context(std::move(saved_));
    }
    CallbackContextScope(const CallbackContextScope&) = delete;
    CallbackContextScope& operator=(const CallbackContextScope&) = delete;

private:
    bool active_;
    ContextPtr saved_;
};

/// `fn` made to run in a copy of the caller's context, as asyncio's call_soon(context=None)
/// and to_thread do; `fn` itself while no ContextVar was ever set (every context is empty).
template <class Fn>
Fn with_current_context(Fn fn) {
    if (!contexts_in_use()) return fn;
    Context ctx = copy_context();
    return [ctx, fn = std::move(fn)](auto&&... args) mutable {
        return ctx.run(fn, std::forward<decltype(args)>(args)...);
    };
}

}  // namespace detail
}  // namespace asyncfiber

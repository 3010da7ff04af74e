// af::bind_thread_local: legacy thread_locals made task-local by swapping each task's value
// into the thread's object around each of its steps, as the scheduler swaps each task's C++
// exception state.
//
// Bindings are process-wide (a binding covers the tasks of every loop); each thread works on
// its own copy of the list, refreshed when the list's generation changed, so that a switch
// takes no lock. The copy a step swapped in with is the one it swaps out with, so a binding
// that ends meanwhile on another thread still gives that thread its own value back.
#include "loop_impl.hpp"
#include "state_share.hpp"
#include "task_locals.hpp"

#include <asyncfiber/detail/thread_annotations.hpp>
#include <algorithm>
#include <mutex>

namespace asyncfiber {
namespace detail {

struct BindingCore {
    BindingOps ops;
};

namespace {

Mutex g_bindings_m;
std::vector<std::shared_ptr<BindingCore>> g_bindings ASYNCFIBER_GUARDED_BY(g_bindings_m);
std::atomic<std::uint64_t> g_generation{0};  // bumped by every bind and unbind

struct ThreadView {
    std::uint64_t generation = 0;
    std::vector<std::shared_ptr<BindingCore>> bindings;  // this thread's copy of g_bindings
    /// What the running step swapped in: the binding and where the thread's own value waits.
    /// Plain pointers: the running task's values hold their bindings.
    std::vector<std::pair<BindingCore*, void*>> active;
};

ThreadView& view() {
    static thread_local ThreadView v;
    return v;
}

const std::vector<std::shared_ptr<BindingCore>>& current_bindings() {
    ThreadView& v = view();
    if (g_generation.load(std::memory_order_acquire) != v.generation) {
        MutexLock g(g_bindings_m);
        v.bindings = g_bindings;
        v.generation = g_generation.load(std::memory_order_relaxed);
    }
    return v.bindings;
}

void* new_copy(BindingCore& b) { return b.ops.copy_current(b.ops.accessor); }

}  // namespace

TaskLocals::~TaskLocals() {
    for (BoundValue& v : values) v.binding->ops.destroy(v.value);
}

// The count behind ThreadLocalBinding handles (asyncfiber/detail/state_share.hpp).
template void intrusive_add_ref<BindingCore>(StateShare<BindingCore>*) noexcept;
template void intrusive_release<BindingCore>(StateShare<BindingCore>*) noexcept;

IntrusivePtr<StateShare<BindingCore>> register_binding(const BindingOps& ops) {
    auto core = std::make_shared<BindingCore>();
    core->ops = ops;
    // The handle first: nothing can throw once the binding is in the list.
    auto handle = IntrusivePtr<StateShare<BindingCore>>::adopt(new StateShare<BindingCore>(core));
    MutexLock g(g_bindings_m);
    for (const auto& b : g_bindings)
        if (b->ops.accessor == ops.accessor)
            throw std::invalid_argument(
                "asyncfiber: bind_thread_local: this thread_local is bound already");
    g_bindings.push_back(core);
    g_generation.fetch_add(1, std::memory_order_release);
    g_task_local_use.fetch_add(kOneBinding, std::memory_order_relaxed);
    return handle;
}

void unregister_binding(StateShare<BindingCore>* share) noexcept {
    const std::shared_ptr<BindingCore>& core = share->state;
    {
        MutexLock g(g_bindings_m);
        auto it = std::find(g_bindings.begin(), g_bindings.end(), core);
        if (it == g_bindings.end()) return;
        g_bindings.erase(it);
        g_generation.fetch_add(1, std::memory_order_release);
        g_task_local_use.fetch_sub(kOneBinding, std::memory_order_relaxed);
    }
    // Ended inside a task step on this thread: the thread's own value comes back now.
    // Innermost first: an eager task's step nests inside its spawner's (swap_in's mark).
    auto& active = view().active;
    for (auto it = active.rbegin(); it != active.rend(); ++it)
        if (it->first == core.get()) core->ops.exchange(core->ops.accessor, it->second);
    active.erase(std::remove_if(active.begin(), active.end(),
                                [&](const std::pair<BindingCore*, void*>& a) {
                                    return a.first == core.get();
                                }),
                 active.end());
}

void copy_bound_values(TaskLocals& into) {
    const auto& bindings = current_bindings();
    into.values.reserve(into.values.size() + bindings.size());
    for (const auto& b : bindings) into.values.push_back(BoundValue{b, new_copy(*b)});
}

std::size_t swap_in_thread_locals(TaskBase* t) noexcept {
    ThreadView& v = view();
    const std::size_t mark = v.active.size();
    try {
        const auto& bindings = current_bindings();
        if (bindings.empty()) return mark;
        TaskLocals& locals = task_locals(t);
        v.active.reserve(mark + bindings.size());  // no allocation once the thread has run a step
        for (std::size_t i = 0; i < bindings.size(); ++i) {
            const std::shared_ptr<BindingCore>& b = bindings[i];
            // Values are kept in the order of the bindings: the first look usually hits.
            void* value = nullptr;
            if (i < locals.values.size() && locals.values[i].binding == b) {
                value = locals.values[i].value;
            } else {
                for (BoundValue& bv : locals.values)
                    if (bv.binding == b) value = bv.value;
            }
            if (!value) {
                // A task spawned before the binding was made: it starts from the thread's value.
                locals.values.reserve(locals.values.size() + 1);
                value = new_copy(*b);
                locals.values.push_back(BoundValue{b, value});
            }
            b->ops.exchange(b->ops.accessor, value);
            v.active.emplace_back(b.get(), value);
        }
    } catch (...) {
        // Out of memory (or a copy constructor that threw) for a task that predates a
        // binding: that task sees the thread's own value this step.
    }
    return mark;
}

void swap_out_thread_locals(std::size_t mark) noexcept {
    auto& active = view().active;
    for (std::size_t i = active.size(); i > mark; --i)
        active[i - 1].first->ops.exchange(active[i - 1].first->ops.accessor, active[i - 1].second);
    active.resize(mark);
}

}  // namespace detail
}  // namespace asyncfiber

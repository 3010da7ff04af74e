// Context variables (af::ContextVar, af::Context): where the current context lives, the
// copy-on-write map of values, tokens, and the context a task starts with.
//
// The current context is the running task's (kept in its TaskLocals) or, outside a task, the
// calling thread's. Looking it up through the running task rather than swapping a
// thread_local at every switch keeps switches free of it. A context's values are an immutable
// map shared by its copies (copy_context, a task's start): copying is one reference count,
// and the first write to a shared map copies it.
#include "loop_impl.hpp"
#include "task_locals.hpp"

#include <asyncfiber/detail/atomic_count.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace asyncfiber {
namespace detail {

std::atomic<std::uint32_t> g_task_local_use{0};

/// The values of one context, sorted by variable: tiny in practice (a few variables).
struct ContextMap {
    std::vector<std::pair<std::uint64_t, ContextValue>> items;

    std::vector<std::pair<std::uint64_t, ContextValue>>::const_iterator find(
        std::uint64_t var) const {
        auto it = std::lower_bound(items.begin(), items.end(), var,
                                   [](const std::pair<std::uint64_t, ContextValue>& e,
                                      std::uint64_t v) { return e.first < v; });
        return it != items.end() && it->first == var ? it : items.end();
    }
};

/// One value, with its count, in one allocation: the value follows the box, aligned for it.
struct ValueBox {
    AtomicCount refs;
    void (*destroy)(void* value) noexcept;
    void* value;
};

struct VarCore {
    VarCore(std::string n, std::uint64_t i, ContextValue d)
        : name(std::move(n)), id(i), fallback(std::move(d)) {}
    AtomicCount refs;
    std::string name;
    std::uint64_t id;
    ContextValue fallback;  // null: no default
};

struct TokenState {
    AtomicCount refs;
    std::uint64_t var = 0;
    ContextPtr context;      // where the value was set
    ContextValue old_value;  // null: the variable had no value
    bool used = false;
};

struct ContextImpl {
    std::shared_ptr<ContextMap> map;   // null: no value; shared by copies until one writes
    std::atomic<bool> entered{false};  // inside a Context::run of it
    AtomicCount refs;
};

void intrusive_add_ref(ContextImpl* c) noexcept { c->refs.add(); }

void intrusive_release(ContextImpl* c) noexcept {
    if (c->refs.drop()) delete c;
}

void intrusive_add_ref(ValueBox* v) noexcept { v->refs.add(); }

void intrusive_release(ValueBox* v) noexcept {
    if (!v->refs.drop()) return;
    v->destroy(v->value);
    v->~ValueBox();
    std::free(v);
}

ContextValue make_context_value(const ValueOps& ops, void* from) {
    std::size_t align = ops.align < alignof(ValueBox) ? alignof(ValueBox) : ops.align;
    if (align < sizeof(void*)) align = sizeof(void*);  // posix_memalign's least
    const std::size_t offset = (sizeof(ValueBox) + ops.align - 1) / ops.align * ops.align;
    void* raw = nullptr;
    if (posix_memalign(&raw, align, offset + ops.size) != 0) throw std::bad_alloc();
    void* value = static_cast<char*>(raw) + offset;
    try {
        ops.move_into(value, from);
    } catch (...) {
        std::free(raw);
        throw;
    }
    return ContextValue::adopt(new (raw) ValueBox{{}, ops.destroy, value});
}

const void* context_value(const ValueBox* box) noexcept { return box->value; }

void intrusive_add_ref(VarCore* v) noexcept { v->refs.add(); }

void intrusive_release(VarCore* v) noexcept {
    if (v->refs.drop()) delete v;
}

void intrusive_add_ref(TokenState* t) noexcept { t->refs.add(); }

void intrusive_release(TokenState* t) noexcept {
    if (t->refs.drop()) delete t;
}

const ValueBox* token_old_value(const TokenState* t) noexcept { return t->old_value.get(); }

bool token_used(const TokenState* t) noexcept { return t->used; }

namespace {

std::atomic<std::uint64_t> g_next_var_id{1};

/// The context of code that runs outside tasks on this thread (null: empty).
thread_local ContextPtr t_context;

/// Where the calling code's current context is kept.
ContextPtr& current_slot() {
    TaskBase* t = current_task_or_null();
    return t ? task_locals(t).context : t_context;
}

/// Sets (or, for a null value, removes) `var` in `c`, copying a shared map first.
void put(ContextImpl& c, std::uint64_t var, ContextValue value) {
    if (!c.map)
        c.map = std::make_shared<ContextMap>();
    else if (c.map.use_count() > 1)
        c.map = std::make_shared<ContextMap>(*c.map);
    auto& items = c.map->items;
    auto it = std::lower_bound(items.begin(), items.end(), var,
                               [](const std::pair<std::uint64_t, ContextValue>& e,
                                  std::uint64_t v) { return e.first < v; });
    const bool present = it != items.end() && it->first == var;
    if (!value) {
        if (present) items.erase(it);
    } else if (present) {
        it->second = std::move(value);
    } else {
        items.insert(it, std::make_pair(var, std::move(value)));
    }
}

ContextPtr new_context() { return ContextPtr::adopt(new ContextImpl); }

ContextPtr copy_of(const ContextImpl* from) {
    ContextPtr c = new_context();
    if (from) c->map = from->map;
    return c;
}

}  // namespace

TaskExtras::~TaskExtras() { delete locals; }

TaskLocals& task_locals(TaskBase* t) {
    TaskExtras& x = t->extras();
    if (!x.locals) x.locals = new TaskLocals;
    return *x.locals;
}

IntrusivePtr<VarCore> new_context_var(std::string name, ContextValue fallback) {
    return IntrusivePtr<VarCore>::adopt(
        new VarCore(std::move(name), g_next_var_id.fetch_add(1, std::memory_order_relaxed),
                    std::move(fallback)));
}

std::uint64_t context_var_id(const VarCore* v) noexcept { return v->id; }

const std::string& context_var_name(const VarCore* v) noexcept { return v->name; }

const ValueBox* context_var_default(const VarCore* v) noexcept { return v->fallback.get(); }

namespace {
/// The box of `var`'s value in `ctx`, or null.
const ContextValue* find_box(const ContextImpl* ctx, std::uint64_t var) noexcept {
    if (!ctx || !ctx->map) return nullptr;
    auto it = ctx->map->find(var);
    return it == ctx->map->items.end() ? nullptr : &it->second;
}
}  // namespace

const void* context_find(const ContextImpl* ctx, std::uint64_t var, ContextValue& keep) noexcept {
    const ContextValue* box = find_box(ctx, var);
    if (!box) return nullptr;
    keep = *box;
    return keep->value;
}

const ContextImpl* current_context_or_null() noexcept {
    TaskBase* t = current_task_or_null();
    if (!t) return t_context.get();
    TaskExtras* x = t->extras_if_any();
    return x && x->locals ? x->locals->context.get() : nullptr;
}

ContextPtr exchange_thread_context(ContextPtr ctx) noexcept {
    std::swap(ctx, t_context);
    return ctx;
}

std::size_t context_size(const ContextImpl* ctx) noexcept {
    return ctx && ctx->map ? ctx->map->items.size() : 0;
}

TokenPtr context_set(std::uint64_t var, ContextValue value) {
    if (!contexts_in_use()) g_task_local_use.fetch_or(kContextsUsed, std::memory_order_relaxed);
    ContextPtr& slot = current_slot();
    if (!slot) slot = new_context();
    TokenPtr token = TokenPtr::adopt(new TokenState);
    token->var = var;
    token->context = slot;
    if (const ContextValue* old = find_box(slot.get(), var)) token->old_value = *old;
    put(*slot.get(), var, std::move(value));
    return token;
}

void context_reset(std::uint64_t var, const TokenPtr& token) {
    if (!token) throw RuntimeError("asyncfiber: ContextVar::reset with an empty Token");
    if (token->used) throw RuntimeError("asyncfiber: the Token has already been used once");
    if (token->var != var)
        throw RuntimeError("asyncfiber: the Token was created by a different ContextVar");
    ContextPtr& slot = current_slot();
    if (slot != token->context)
        throw RuntimeError("asyncfiber: the Token was created in a different Context");
    put(*slot.get(), var, token->old_value);
    token->used = true;
}

void throw_lookup_error(const std::string& name) {
    throw LookupError("asyncfiber: no value for the ContextVar '" + name + "'");
}

ContextScope::ContextScope(const ContextPtr& ctx) {
    if (!ctx)
        throw InvalidStateError(
            "asyncfiber: Context::run of an empty Context handle (make one "
            "with af::copy_context() or af::Context::create())");
    slot_ = &current_slot();
    if (*slot_ == ctx || ctx->entered.exchange(true))
        throw RuntimeError("asyncfiber: cannot enter the context: it is already entered");
    entered_ = ctx.get();
    previous_ = std::move(*slot_);
    *slot_ = ctx;
}

ContextScope::~ContextScope() {
    // The slot still holds the entered context (nothing else replaces a current context),
    // so it lives until the entered flag is cleared.
    ContextPtr entered = std::move(*slot_);
    *slot_ = std::move(previous_);
    entered_->entered.store(false);
}

void init_task_locals(TaskBase* t, const Context* explicit_context) {
    ContextPtr ctx;
    if (explicit_context && *explicit_context) {
        ctx = detail::Access::impl(*explicit_context);
    } else if (contexts_in_use()) {
        // An empty context stays null: the task then costs nothing more.
        const ContextImpl* creator = current_context_or_null();
        if (context_size(creator) != 0) ctx = copy_of(creator);
    }
    if (ctx) task_locals(t).context = std::move(ctx);
    if (thread_locals_bound()) copy_bound_values(task_locals(t));
}

}  // namespace detail

Context Context::create() { return Context(detail::new_context()); }

Context Context::copy() const {
    if (!impl_) throw InvalidStateError("asyncfiber: Context::copy of an empty Context handle");
    return Context(detail::copy_of(impl_.get()));
}

Context copy_context() {
    return detail::Access::make<Context>(detail::copy_of(detail::current_context_or_null()));
}

}  // namespace asyncfiber

// asyncfiber/context.hpp - task-local state: context variables and bound thread_locals.
//
// - af::ContextVar<T>, af::Context, af::copy_context(): Python's contextvars. Every task runs
//   in a context of its own, a copy of its creator's taken when it is spawned, so a value a
//   task sets is seen by it and by the tasks it spawns afterwards, never by its creator.
//   Callbacks (Loop::call_soon, call_later, call_at, call_soon_threadsafe, done callbacks)
//   and af::to_thread run in a copy of the context of the code that scheduled them.
// - af::bind_thread_local(accessor): makes a legacy `thread_local` task-local without
//   touching the code that uses it: while the binding lives, every task has its own value
//   (a copy of its creator's when it is spawned), swapped into the thread's object whenever
//   the task runs.
//
// Copying a context shares its values (an immutable map, copied on the first write), so
// spawning a task costs one reference count when contexts are in use and nothing when no
// ContextVar was ever set. See docs/migrating-callbacks.md. The Context handle itself is in
// detail/context_handle.hpp, which task.hpp includes without the rest of this header.
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/context_handle.hpp>
#include <asyncfiber/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace asyncfiber {

namespace detail {
/// A value of one variable in a context: immutable once stored, shared by copies.
using ContextValue = std::shared_ptr<const void>;

/// A fresh identity for a ContextVar (never reused).
std::uint64_t new_context_var_id() noexcept;
/// The value of variable `var` in `ctx`, or null.
ContextValue context_find(const ContextImpl* ctx, std::uint64_t var) noexcept;
/// The context the calling code runs in (its task's, or its thread's), or null: empty.
const ContextImpl* current_context_or_null() noexcept;

/// What a Token remembers (shared by its copies, so that a used token is used in all).
struct TokenState {
    std::uint64_t var = 0;
    ContextPtr context;      // where the value was set
    ContextValue old_value;  // null: the variable had no value
    bool used = false;
};
/// Sets `var` to `value` in the current context (created for a task or thread on first use).
std::shared_ptr<TokenState> context_set(std::uint64_t var, ContextValue value);
/// Puts back what `token` remembers; RuntimeError for a used token, or one of another
/// variable or another context.
void context_reset(std::uint64_t var, const std::shared_ptr<TokenState>& token);
[[noreturn]] void throw_lookup_error(const std::string& name);
}  // namespace detail

/// A context variable (Python's contextvars.ContextVar). Copies of the object are the same
/// variable. Values are copied in and out (T must be copy-constructible).
template <class T>
class ContextVar {
    static_assert(std::is_copy_constructible<T>::value, "a ContextVar's T must be copyable");

public:
    /// Returned by set(); reset(token) puts back the value set() replaced. Copyable: all
    /// copies are one token, used once.
    class Token {
    public:
        Token() noexcept = default;
        /// Whether the variable had a value before the set() (Python: old_value is not
        /// Token.MISSING).
        bool has_old_value() const noexcept { return st_ && st_->old_value; }
        /// That value; LookupError if it had none.
        T old_value() const;
        /// Whether reset() took it already.
        bool used() const noexcept { return st_ && st_->used; }

    private:
        friend class ContextVar;
        explicit Token(std::shared_ptr<detail::TokenState> st) noexcept : st_(std::move(st)) {}
        std::shared_ptr<detail::TokenState> st_;
    };

    explicit ContextVar(std::string name);
    ContextVar(std::string name, T default_value);

    const std::string& name() const noexcept { return core_->name; }

    /// The value in the current context, else the default; LookupError if neither exists.
    T get() const;
    /// The value in the current context, else `fallback` (the default is not looked at, as
    /// Python's var.get(default)).
    T get(T fallback) const;
    /// Sets the value in the current context.
    Token set(T value);
    /// Puts back the value the set() that returned `token` replaced (removing the value if
    /// there was none). Throws RuntimeError for a token already used, of another variable, or
    /// of a set() made in another context.
    void reset(Token token);

private:
    friend struct detail::Access;
    /// The variable's identity in contexts.
    std::uint64_t id() const noexcept { return core_->id; }
    struct Core {
        Core(std::string n, std::uint64_t i) : name(std::move(n)), id(i) {}
        std::string name;
        std::uint64_t id;
        std::shared_ptr<const T> fallback;
    };
    std::shared_ptr<Core> core_;
};

// ---- legacy thread_locals ----

namespace detail {
struct BindingCore;  // lib/runtime/thread_local_bindings.cpp
/// The operations of one bound thread_local of type T, type-erased.
struct BindingOps {
    void (*accessor)();                                          // really T& (*)()
    void* (*copy_current)(void (*accessor)());                   // new T(accessor())
    void (*exchange)(void (*accessor)(), void* value) noexcept;  // swap(accessor(), *value)
    void (*destroy)(void* value) noexcept;
};
std::shared_ptr<BindingCore> register_binding(const BindingOps& ops);
void unregister_binding(const std::shared_ptr<BindingCore>& b) noexcept;
}  // namespace detail

/// Keeps a legacy thread_local task-local while it lives (see bind_thread_local). Movable;
/// destroying (or assigning over) a binding ends it: each thread's object then holds that
/// thread's own value again (a thread inside a task step at that moment gets it back when
/// the task next switches out).
class ThreadLocalBinding {
public:
    ThreadLocalBinding() noexcept = default;
    ThreadLocalBinding(ThreadLocalBinding&& o) noexcept : core_(std::move(o.core_)) {}
    ThreadLocalBinding& operator=(ThreadLocalBinding&& o) noexcept {
        if (this != &o) {
            reset();
            core_ = std::move(o.core_);
        }
        return *this;
    }
    ~ThreadLocalBinding() { reset(); }
    explicit operator bool() const noexcept { return core_ != nullptr; }
    /// Ends the binding now.
    void reset() noexcept {
        if (core_) detail::unregister_binding(core_);
        core_.reset();
    }

private:
    friend struct detail::Access;
    explicit ThreadLocalBinding(std::shared_ptr<detail::BindingCore> c) noexcept
        : core_(std::move(c)) {}
    std::shared_ptr<detail::BindingCore> core_;
};

/// Makes the thread_local that `accessor` returns (the calling thread's object: a function
/// such as `Id& request_id() { return t_request_id; }`, or `+[]() -> Id& { ... }`)
/// task-local for the binding's lifetime: every task of every loop has its own value, a new
/// task starts with a copy of its creator's, and the value is swapped into the thread's
/// object at every switch (a task spawned before the binding was made starts with a copy of
/// the thread's value when it first runs under it). Cost: two swaps of T per switch, and a
/// lookup (docs/performance.md). May be called on any thread. Throws std::invalid_argument
/// for a null accessor or one bound already.
template <class T>
ThreadLocalBinding bind_thread_local(T& (*accessor)());

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/context_inl.hpp>

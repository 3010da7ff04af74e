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
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>
#include <asyncfiber/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace asyncfiber {

namespace detail {
// Everything a ContextVar shares lives in objects the library allocates and counts
// (lib/runtime/context.cpp), held here through IntrusivePtrs: this header needs no <memory>
// (docs/performance.md, "Header weight").

/// A value of one variable in a context: immutable once stored, shared by the contexts that
/// hold it.
struct ValueBox;
void intrusive_add_ref(ValueBox* v) noexcept;
void intrusive_release(ValueBox* v) noexcept;
using ContextValue = IntrusivePtr<ValueBox>;

/// How a value of one type is made and destroyed in a box, type-erased.
struct ValueOps {
    std::size_t size;
    std::size_t align;
    void (*move_into)(void* to, void* from);  // new (to) T(std::move(*from))
    void (*destroy)(void* value) noexcept;
};
template <class T>
struct ValueOpsOf {
    static void move_into(void* to, void* from) { ::new (to) T(std::move(*static_cast<T*>(from))); }
    static void destroy(void* value) noexcept { static_cast<T*>(value)->~T(); }
    static constexpr ValueOps ops{sizeof(T), alignof(T), &move_into, &destroy};
};
template <class T>
constexpr ValueOps ValueOpsOf<T>::ops;

/// A new box holding a value moved from `*from`, which `ops` describe.
ContextValue make_context_value(const ValueOps& ops, void* from);
/// The value a box holds.
const void* context_value(const ValueBox* box) noexcept;

/// A variable's name and default, shared by the copies of the ContextVar object.
struct VarCore;
void intrusive_add_ref(VarCore* v) noexcept;
void intrusive_release(VarCore* v) noexcept;
/// A new variable, with a fresh identity (never reused), and its default if any.
IntrusivePtr<VarCore> new_context_var(std::string name, ContextValue fallback);
std::uint64_t context_var_id(const VarCore* v) noexcept;
const std::string& context_var_name(const VarCore* v) noexcept;
/// The default's box, or null.
const ValueBox* context_var_default(const VarCore* v) noexcept;

/// The value of variable `var` in `ctx` (`keep` then holds its box, so that it outlives a
/// change of the context while it is copied out), or null.
const void* context_find(const ContextImpl* ctx, std::uint64_t var, ContextValue& keep) noexcept;
/// The context the calling code runs in (its task's, or its thread's), or null: empty.
const ContextImpl* current_context_or_null() noexcept;

/// What a Token remembers: the variable, the context it was set in, the value it replaced
/// and whether it was used (shared by the Token's copies, so that a used token is used in
/// all).
struct TokenState;
void intrusive_add_ref(TokenState* t) noexcept;
void intrusive_release(TokenState* t) noexcept;
using TokenPtr = IntrusivePtr<TokenState>;
/// The value the set() replaced, or null.
const ValueBox* token_old_value(const TokenState* t) noexcept;
bool token_used(const TokenState* t) noexcept;

/// Sets `var` to `value` in the current context (created for a task or thread on first use).
TokenPtr context_set(std::uint64_t var, ContextValue value);
/// Puts back what `token` remembers; RuntimeError for a used token, or one of another
/// variable or another context.
void context_reset(std::uint64_t var, const TokenPtr& token);
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
        bool has_old_value() const noexcept {
            return st_ && detail::token_old_value(st_.get()) != nullptr;
        }
        /// That value; LookupError if it had none.
        T old_value() const;
        /// Whether reset() took it already.
        bool used() const noexcept { return st_ && detail::token_used(st_.get()); }

    private:
        friend class ContextVar;
        explicit Token(detail::TokenPtr st) noexcept : st_(std::move(st)) {}
        detail::TokenPtr st_;
    };

    explicit ContextVar(std::string name);
    ContextVar(std::string name, T default_value);

    const std::string& name() const noexcept { return detail::context_var_name(core_.get()); }

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
    std::uint64_t id() const noexcept { return id_; }
    /// The value `found` points to, or the default, or LookupError.
    T value_or_default(const void* found) const;
    detail::IntrusivePtr<detail::VarCore> core_;
    std::uint64_t id_;  // core_'s, kept here: every lookup needs it
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
IntrusivePtr<StateShare<BindingCore>> register_binding(const BindingOps& ops);
void unregister_binding(StateShare<BindingCore>* b) noexcept;
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
    explicit operator bool() const noexcept { return static_cast<bool>(core_); }
    /// Ends the binding now.
    void reset() noexcept {
        if (core_) detail::unregister_binding(core_.get());
        core_.reset();
    }

private:
    friend struct detail::Access;
    explicit ThreadLocalBinding(
        detail::IntrusivePtr<detail::StateShare<detail::BindingCore>> c) noexcept
        : core_(std::move(c)) {}
    detail::IntrusivePtr<detail::StateShare<detail::BindingCore>> core_;
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

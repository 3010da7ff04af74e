// Internal: af::Context, the handle to a set of context variables' values, apart from the
// variables themselves (asyncfiber/context.hpp, which includes this). A task's options hold a
// Context (TaskOptions::context), so asyncfiber/task.hpp needs this class, and only this:
// keeping it free of <memory> (the handle is an IntrusivePtr whose reference counting is
// defined in lib/runtime/context.cpp) keeps every header built on task.hpp lighter
// (docs/performance.md, "Header weight").
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>

#include <cstddef>
#include <utility>

namespace asyncfiber {

template <class T>
class ContextVar;

namespace detail {
struct ContextImpl;  // lib/runtime/context.cpp
/// The reference count of a ContextImpl (atomic: a handle may go to another thread with a
/// callback or a to_thread job), for IntrusivePtr<ContextImpl>.
void intrusive_add_ref(ContextImpl* c) noexcept;
void intrusive_release(ContextImpl* c) noexcept;
using ContextPtr = IntrusivePtr<ContextImpl>;

/// How many variables `ctx` holds.
std::size_t context_size(const ContextImpl* ctx) noexcept;

/// Makes `ctx` the current context of the calling code for the scope's lifetime.
class ContextScope {
public:
    /// Throws InvalidStateError for an empty handle, RuntimeError for a context already
    /// entered (by a Context::run that has not returned, or as the calling task's own).
    explicit ContextScope(const ContextPtr& ctx);
    ~ContextScope();
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

private:
    ContextPtr* slot_;  // the task's or the thread's current context
    ContextPtr previous_;
    ContextImpl* entered_;
};
}  // namespace detail

/// A set of context variables' values (Python's contextvars.Context). A shared handle:
/// copies of the handle are the same context; Context::copy() makes a new one. A
/// default-constructed handle is empty (TaskOptions::context left empty: a copy of the
/// creator's context); Context::create() makes a new context holding no value. A context
/// is used by one thread at a time.
class Context {
public:
    Context() noexcept = default;
    /// A new context holding no value (Python's `contextvars.Context()`).
    static Context create();

    explicit operator bool() const noexcept { return static_cast<bool>(impl_); }

    /// Runs fn(args...) with this context as the current one and returns its result: what
    /// fn sets lands in this context. Throws RuntimeError if the context is entered already
    /// (a Context::run of it has not returned, or it is the calling task's own context),
    /// InvalidStateError for an empty handle. Inside a task, fn may suspend.
    template <class F, class... Args>
    auto run(F&& fn, Args&&... args) const
        -> decltype(std::forward<F>(fn)(std::forward<Args>(args)...)) {
        detail::ContextScope scope(impl_);
        return std::forward<F>(fn)(std::forward<Args>(args)...);
    }

    /// A new context with the same values (Python's Context.copy()).
    Context copy() const;
    /// Whether `var` has a value in this context (not counting its default).
    template <class T>
    bool contains(const ContextVar<T>& var) const noexcept;
    /// The value of `var` in this context; LookupError if it has none (its default is not
    /// looked at, as Python's ctx[var]).
    template <class T>
    T get(const ContextVar<T>& var) const;
    /// The value of `var` in this context, or `fallback`.
    template <class T>
    T get(const ContextVar<T>& var, T fallback) const;
    /// How many variables have a value in this context.
    std::size_t size() const noexcept { return detail::context_size(impl_.get()); }

    friend bool operator==(const Context& a, const Context& b) noexcept {
        return a.impl_ == b.impl_;
    }
    friend bool operator!=(const Context& a, const Context& b) noexcept {
        return a.impl_ != b.impl_;
    }

private:
    friend struct detail::Access;
    const detail::ContextPtr& impl() const noexcept { return impl_; }
    explicit Context(detail::ContextPtr impl) noexcept : impl_(std::move(impl)) {}
    detail::ContextPtr impl_;
};

/// A copy of the current context (Python's contextvars.copy_context()): of the running
/// task's, or, outside a task, of the calling thread's.
Context copy_context();

}  // namespace asyncfiber

// Internal: the one way for the library's own code into the private members of the public
// handles (the state behind a Task, a Future, a stream, a server, a context...). Each handle
// names this struct as its only friend, so that its class shows the public API and nothing
// else, and so that what the library reaches inside the handles can be found in one place.
#pragma once

#include <utility>

namespace asyncfiber {
namespace detail {

struct Access {
    /// The state a handle refers to (TaskRef::state(), SslContext::state()...).
    template <class H>
    static auto state(const H& h) noexcept -> decltype(h.state()) {
        return h.state();
    }
    /// A Task<T>'s state with its result type.
    template <class H>
    static auto typed(const H& h) noexcept -> decltype(h.typed()) {
        return h.typed();
    }
    /// A task handle that takes over one reference to `p`.
    template <class H, class P>
    static H adopt(P* p) noexcept {
        return H::adopt(p);
    }
    /// A handle made from the state the library created for it (a stream, a server...).
    template <class H, class... A>
    static H make(A&&... a) {
        return H(std::forward<A>(a)...);
    }
    /// A Context's implementation.
    template <class H>
    static auto impl(const H& h) noexcept -> decltype(h.impl()) {
        return h.impl();
    }
    /// A ContextVar's identity in contexts.
    template <class V>
    static auto var_id(const V& v) noexcept -> decltype(v.id()) {
        return v.id();
    }
    /// A Timeout's scope.
    template <class H>
    static auto scope(const H& h) noexcept -> decltype(h.scope()) {
        return h.scope();
    }
    /// A Timeout armed in the calling task.
    template <class H, class TimePoint>
    static H enter_timeout(TimePoint when) {
        return H::enter(when);
    }
    /// Waits for a Future's value in the calling task (af::await(future)).
    template <class F>
    static auto await_value(F& f) -> decltype(f.await_value()) {
        return f.await_value();
    }
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: StateShare (asyncfiber/detail/state_share.hpp), one share in a state kept in a
// std::shared_ptr, counted for the public handles' IntrusivePtr. A file that defines a State
// instantiates the count's two functions for it (see server.cpp, process.cpp).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/atomic_count.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>

#include <memory>
#include <utility>

namespace asyncfiber {
namespace detail {

template <class State>
struct StateShare {
    explicit StateShare(std::shared_ptr<State> st) noexcept : state(std::move(st)) {}
    std::shared_ptr<State> state;
    AtomicCount refs;
};

template <class State>
void intrusive_add_ref(StateShare<State>* h) noexcept {
    h->refs.add();
}

template <class State>
void intrusive_release(StateShare<State>* h) noexcept {
    if (h->refs.drop()) delete h;
}

/// A public handle (Server, Process) holding a new share in `s`.
template <class Handle, class State>
Handle share_state(std::shared_ptr<State> s) {
    return Access::make<Handle>(
        IntrusivePtr<StateShare<State>>::adopt(new StateShare<State>(std::move(s))));
}

}  // namespace detail
}  // namespace asyncfiber

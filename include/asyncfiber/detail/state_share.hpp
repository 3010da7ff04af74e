// Internal: the handle behind a public object whose state the library keeps in a
// std::shared_ptr, shared with its own callbacks (a server, a child process). The public class
// holds an IntrusivePtr<StateShare<State>>, one share in that state, without <memory>; the
// share and its count are defined in lib/runtime/state_share.hpp, and each State's functions
// are instantiated where the state is defined.
#pragma once

namespace asyncfiber {
namespace detail {

template <class State>
struct StateShare;
template <class State>
void intrusive_add_ref(StateShare<State>* h) noexcept;
template <class State>
void intrusive_release(StateShare<State>* h) noexcept;

}  // namespace detail
}  // namespace asyncfiber

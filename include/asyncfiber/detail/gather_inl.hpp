// asyncfiber/detail/gather_inl.hpp - the definitions behind asyncfiber/gather.hpp: Outcome's
// members, gather and gather_settled, and the helpers that wait for the children and collect
// their results.
#pragma once

#include <asyncfiber/gather.hpp>

namespace asyncfiber {

template <class T>
Outcome<T> Outcome<T>::of_value(T v) {
    Outcome o;
    ::new (static_cast<void*>(&o.storage_)) T(std::move(v));
    o.has_value_ = true;
    return o;
}
template <class T>
Outcome<T> Outcome<T>::of_error(std::exception_ptr e, bool cancelled) {
    Outcome o;
    o.error_ = std::move(e);
    o.cancelled_ = cancelled;
    return o;
}
template <class T>
Outcome<T>::Outcome(const Outcome& o) : error_(o.error_), cancelled_(o.cancelled_) {
    if (o.has_value_) {
        ::new (static_cast<void*>(&storage_)) T(*o.ptr());
        has_value_ = true;
    }
}
template <class T>
Outcome<T>::Outcome(Outcome&& o) noexcept(std::is_nothrow_move_constructible<T>::value)
    : error_(std::move(o.error_)), cancelled_(o.cancelled_) {
    if (o.has_value_) {
        ::new (static_cast<void*>(&storage_)) T(std::move(*o.ptr()));
        has_value_ = true;
    }
}
template <class T>
Outcome<T>& Outcome<T>::operator=(Outcome o) {
    reset_value();
    error_ = std::move(o.error_);
    cancelled_ = o.cancelled_;
    if (o.has_value_) {
        try {
            ::new (static_cast<void*>(&storage_)) T(std::move(*o.ptr()));
        } catch (...) {
            error_ = std::current_exception();
            throw;
        }
        has_value_ = true;
    }
    return *this;
}

namespace detail {

/// The value of a finished, successful child: moved when no one else holds the task, copied
/// otherwise (the caller may still read it through its own handle).
template <class T>
T take_value(Task<T>& t, std::true_type /*copyable*/) {
    if (detail::Access::state(t)->refs == 1) return std::move(detail::Access::typed(t)->value());
    return detail::Access::typed(t)->value();
}
template <class T>
T take_value(Task<T>& t, std::false_type) {
    return std::move(detail::Access::typed(t)->value());
}
template <class T>
T take_value(Task<T>& t) {
    return take_value(t, std::is_copy_constructible<T>{});
}
inline None take_value(Task<void>& t) {
    detail::Access::typed(t)->value();
    return None{};
}

template <class T>
Outcome<gathered_t<T>> take_outcome(Task<T>& t) {
    TaskBase* s = detail::Access::state(t);
    if (s->outcome == TaskOutcome::value) return Outcome<gathered_t<T>>::of_value(take_value(t));
    s->retrieved = true;
    if (s->outcome == TaskOutcome::cancelled)
        return Outcome<gathered_t<T>>::of_error(
            std::make_exception_ptr(CancelledError(s->cancel_msg())), true);
    return Outcome<gathered_t<T>>::of_error(s->error, false);
}

/// Whether an argument of gather is a task the call itself created: a temporary (an rvalue,
/// such as af::async(f) written in the call) or a callable that gather spawns.
template <class A>
struct created_by_the_call
    : std::integral_constant<bool, !std::is_lvalue_reference<A>::value ||
                                       !is_task<typename std::decay<A>::type>::value> {};

template <class... A, class Tuple, std::size_t... I>
std::ptrdiff_t wait_tuple(Tuple& tasks, GatherMode mode, std::index_sequence<I...>) {
    TaskBase* states[] = {Access::state(std::get<I>(tasks))...};
    TaskBase* created[] = {(created_by_the_call<A>::value ? states[I] : nullptr)...};
    start_in_argument_order(created, sizeof...(I));
    return wait_children(states, sizeof...(I), mode);
}

template <class Tuple, std::size_t... I>
void rethrow_child(Tuple& tasks, std::size_t idx, std::index_sequence<I...>) {
    TaskBase* states[] = {Access::state(std::get<I>(tasks))...};
    states[idx]->rethrow_if_failed();
}

template <class T>
std::ptrdiff_t wait_vector(std::vector<Task<T>>& tasks, GatherMode mode) {
    // Small gathers keep the list of children on the stack.
    TaskBase* inline_states[16];
    std::vector<TaskBase*> heap_states;
    TaskBase** states = inline_states;
    if (tasks.size() > 16) {
        heap_states.resize(tasks.size());
        states = heap_states.data();
    }
    std::size_t n = 0;
    for (auto& t : tasks) {
        if (!t) throw InvalidStateError("asyncfiber: gather of an empty Task handle");
        states[n++] = detail::Access::state(t);
    }
    return wait_children(states, n, mode);
}

template <class Tuple, std::size_t... I>
auto apply_take(Tuple& tasks, std::index_sequence<I...>)
    -> decltype(std::make_tuple(take_value(std::get<I>(tasks))...)) {
    return std::tuple<decltype(take_value(std::get<I>(tasks)))...>(
        take_value(std::get<I>(tasks))...);
}
template <class Tuple, std::size_t... I>
auto apply_outcomes(Tuple& tasks, std::index_sequence<I...>)
    -> std::tuple<decltype(take_outcome(std::get<I>(tasks)))...> {
    return std::tuple<decltype(take_outcome(std::get<I>(tasks)))...>(
        take_outcome(std::get<I>(tasks))...);
}
}  // namespace detail

template <class... A>
std::tuple<detail::gathered_t<typename detail::as_task_t<A>::value_type>...> gather(A&&... args) {
    // Braces: the callables are spawned left to right (a function call's order is unspecified).
    std::tuple<detail::as_task_t<A>...> tasks{detail::as_task(std::forward<A>(args))...};
    auto seq = std::index_sequence_for<A...>{};
    std::ptrdiff_t failed = detail::wait_tuple<A...>(tasks, detail::GatherMode::first_error, seq);
    if (failed >= 0) detail::rethrow_child(tasks, static_cast<std::size_t>(failed), seq);
    return detail::apply_take(tasks, seq);
}

template <class T>
std::vector<detail::gathered_t<T>> gather(std::vector<Task<T>> tasks) {
    std::ptrdiff_t failed = detail::wait_vector(tasks, detail::GatherMode::first_error);
    if (failed >= 0)
        detail::Access::state(tasks[static_cast<std::size_t>(failed)])->rethrow_if_failed();
    std::vector<detail::gathered_t<T>> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) {
        out.push_back(detail::take_value(t));
        t = Task<T>();  // let go of the block while it is still in the cache
    }
    return out;
}

template <class... A>
std::tuple<Outcome<detail::gathered_t<typename detail::as_task_t<A>::value_type>>...>
gather_settled(A&&... args) {
    // Braces: the callables are spawned left to right (a function call's order is unspecified).
    std::tuple<detail::as_task_t<A>...> tasks{detail::as_task(std::forward<A>(args))...};
    auto seq = std::index_sequence_for<A...>{};
    detail::wait_tuple<A...>(tasks, detail::GatherMode::all, seq);
    return detail::apply_outcomes(tasks, seq);
}

template <class T>
std::vector<Outcome<detail::gathered_t<T>>> gather_settled(std::vector<Task<T>> tasks) {
    detail::wait_vector(tasks, detail::GatherMode::all);
    std::vector<Outcome<detail::gathered_t<T>>> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) {
        out.push_back(detail::take_outcome(t));
        t = Task<T>();  // let go of the block while it is still in the cache
    }
    return out;
}

}  // namespace asyncfiber

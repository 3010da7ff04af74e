// asyncfiber/gather.hpp - af::gather and af::gather_settled (asyncio.gather, with and without
// return_exceptions=True).
//
// Start order. Tasks start in the order they were spawned, as in asyncio, with one rule for
// the tasks a gather call's own arguments create: those (the temporaries, such as
// `af::async(f)` written in the call, and the callables gather spawns) that have not started
// yet start in argument order. `af::gather(af::async(a), af::async(b))`, the natural port of
// `asyncio.gather(a(), b())`, so starts a first with every compiler, although C++ leaves the
// order in which a call's arguments (and so the two spawns) are evaluated to the compiler
// (g++ evaluates them right to left). Their places in the ready queue are exchanged among
// themselves; nothing else moves. Tasks passed by name (lvalues) and the vector forms keep
// their creation order, as in asyncio. The one difference from asyncio: a task created
// earlier and passed with std::move counts as created by the call.
#pragma once

#include <asyncfiber/task.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace asyncfiber {

/// How one task of gather_settled ended: a value, an exception, or cancelled.
template <class T>
class Outcome {
public:
    static Outcome of_value(T v) {
        Outcome o;
        ::new (static_cast<void*>(&o.storage_)) T(std::move(v));
        o.has_value_ = true;
        return o;
    }
    static Outcome of_error(std::exception_ptr e, bool cancelled) {
        Outcome o;
        o.error_ = std::move(e);
        o.cancelled_ = cancelled;
        return o;
    }
    Outcome(const Outcome& o) : error_(o.error_), cancelled_(o.cancelled_) {
        if (o.has_value_) {
            ::new (static_cast<void*>(&storage_)) T(*o.ptr());
            has_value_ = true;
        }
    }
    Outcome(Outcome&& o) noexcept(std::is_nothrow_move_constructible<T>::value)
        : error_(std::move(o.error_)), cancelled_(o.cancelled_) {
        if (o.has_value_) {
            ::new (static_cast<void*>(&storage_)) T(std::move(*o.ptr()));
            has_value_ = true;
        }
    }
    /// If moving o's value throws, the exception propagates and this outcome keeps it as
    /// its error: it always holds a value or an error, and is destroyed once.
    Outcome& operator=(Outcome o) {
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
    ~Outcome() { reset_value(); }

    /// The task returned a value.
    bool ok() const noexcept { return has_value_; }
    /// The task was cancelled (error() then holds its CancelledError).
    bool cancelled() const noexcept { return cancelled_; }
    /// The exception (a CancelledError if cancelled), or nullptr if ok().
    std::exception_ptr error() const noexcept { return error_; }
    /// The value; rethrows the error if not ok().
    T& value() & {
        if (!has_value_) std::rethrow_exception(error_);
        return *ptr();
    }
    const T& value() const& {
        if (!has_value_) std::rethrow_exception(error_);
        return *ptr();
    }
    T&& value() && { return std::move(value()); }

private:
    Outcome() = default;
    void reset_value() noexcept {
        if (has_value_) ptr()->~T();
        has_value_ = false;
    }
    T* ptr() noexcept { return reinterpret_cast<T*>(&storage_); }
    const T* ptr() const noexcept { return reinterpret_cast<const T*>(&storage_); }
    typename std::aligned_storage<sizeof(T), alignof(T)>::type storage_;
    bool has_value_ = false;
    std::exception_ptr error_;
    bool cancelled_ = false;
};

namespace detail {

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<Task<T>> : std::true_type {};

template <class T>
Task<T> as_task(const Task<T>& t) {
    return t;
}
template <class F, class = typename std::enable_if<!is_task<typename std::decay<F>::type>::value>::type>
auto as_task(F&& fn) -> decltype(asyncfiber::async(std::forward<F>(fn))) {
    return asyncfiber::async(std::forward<F>(fn));
}

template <class A>
using as_task_t = decltype(as_task(std::declval<A>()));

template <class T>
using gathered_t = typename ResultOf<T>::type;

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
    std::unique_ptr<TaskBase*[]> heap_states;
    TaskBase** states = inline_states;
    if (tasks.size() > 16) {
        heap_states.reset(new TaskBase*[tasks.size()]);
        states = heap_states.get();
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

/// asyncio.gather: runs every argument (a Task<T>, or a callable that is spawned as a task)
/// and returns their values in argument order (void as af::None); the children the call
/// creates start in argument order (see the top of this file). The first exception (or cancellation) of a
/// child propagates at once; the other children keep running. Cancelling the caller cancels
/// every child.
template <class... A>
std::tuple<detail::gathered_t<typename detail::as_task_t<A>::value_type>...> gather(A&&... args) {
    // Braces: the callables are spawned left to right (a function call's order is unspecified).
    std::tuple<detail::as_task_t<A>...> tasks{detail::as_task(std::forward<A>(args))...};
    auto seq = std::index_sequence_for<A...>{};
    std::ptrdiff_t failed = detail::wait_tuple<A...>(tasks, detail::GatherMode::first_error, seq);
    if (failed >= 0) detail::rethrow_child(tasks, static_cast<std::size_t>(failed), seq);
    return detail::apply_take(tasks, seq);
}


/// gather over a vector of tasks of one type: the values in order.
template <class T>
std::vector<detail::gathered_t<T>> gather(std::vector<Task<T>> tasks) {
    std::ptrdiff_t failed = detail::wait_vector(tasks, detail::GatherMode::first_error);
    if (failed >= 0) detail::Access::state(tasks[static_cast<std::size_t>(failed)])->rethrow_if_failed();
    std::vector<detail::gathered_t<T>> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) {
        out.push_back(detail::take_value(t));
        t = Task<T>();  // let go of the block while it is still in the cache
    }
    return out;
}

/// gather with return_exceptions=True: waits for every child and returns how each ended.
/// Cancelling the caller cancels the children and, once they are done, throws CancelledError.
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

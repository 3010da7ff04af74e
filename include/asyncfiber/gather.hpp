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
    static Outcome of_value(T v);
    static Outcome of_error(std::exception_ptr e, bool cancelled);
    Outcome(const Outcome& o);
    Outcome(Outcome&& o) noexcept(std::is_nothrow_move_constructible<T>::value);
    /// If moving o's value throws, the exception propagates and this outcome keeps it as
    /// its error: it always holds a value or an error, and is destroyed once.
    Outcome& operator=(Outcome o);
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
Task<T> as_task(const Task<T>& t) {
    return t;
}
template <class F,
          class = typename std::enable_if<!is_task<typename std::decay<F>::type>::value>::type>
auto as_task(F&& fn) -> decltype(asyncfiber::async(std::forward<F>(fn))) {
    return asyncfiber::async(std::forward<F>(fn));
}

template <class A>
using as_task_t = decltype(as_task(std::declval<A>()));

template <class T>
using gathered_t = typename ResultOf<T>::type;
}  // namespace detail

/// asyncio.gather: runs every argument (a Task<T>, or a callable that is spawned as a task)
/// and returns their values in argument order (void as af::None); the children the call
/// creates start in argument order (see the top of this file). The first exception (or
/// cancellation) of a child propagates at once; the other children keep running. Cancelling the
/// caller cancels every child.
template <class... A>
std::tuple<detail::gathered_t<typename detail::as_task_t<A>::value_type>...> gather(A&&... args);

/// gather over a vector of tasks of one type: the values in order.
template <class T>
std::vector<detail::gathered_t<T>> gather(std::vector<Task<T>> tasks);

/// gather with return_exceptions=True: waits for every child and returns how each ended.
/// Cancelling the caller cancels the children and, once they are done, throws CancelledError.
template <class... A>
std::tuple<Outcome<detail::gathered_t<typename detail::as_task_t<A>::value_type>>...>
gather_settled(A&&... args);

/// gather_settled over a vector of tasks of one type: how each ended, in order.
template <class T>
std::vector<Outcome<detail::gathered_t<T>>> gather_settled(std::vector<Task<T>> tasks);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/gather_inl.hpp>

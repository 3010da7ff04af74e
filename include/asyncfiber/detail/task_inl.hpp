// Internal: the definitions of the templates and inline functions that asyncfiber/task.hpp
// declares (spawning a task, awaiting one, sleep).
#pragma once

#include <asyncfiber/task.hpp>

namespace asyncfiber {

template <class T>
const typename detail::ResultOf<T>::type& Task<T>::result() const {
    check_done();
    return get(std::is_void<T>{});
}

template <class T>
void Task<T>::check_done() const {
    if (!p_) throw InvalidStateError("asyncfiber: result() of an empty Task handle");
    if (!p_->is_done()) throw InvalidStateError("asyncfiber: result() of a pending task");
}

template <class T>
const typename detail::ResultOf<T>::type& Task<T>::get(std::false_type) const {
    return typed()->value();
}

template <class T>
const None& Task<T>::get(std::true_type) const {
    typed()->value();
    static const None none{};
    return none;
}

namespace detail {
template <class F, class... Args>
Task<async_result_t<F, Args...>> spawn_task(std::string name, std::size_t stack,
                                            const Context* context, bool eager, F&& fn,
                                            Args&&... args) {
    using R = async_result_t<F, Args...>;
    auto* st = new TaskImpl<R, typename std::decay<F>::type, typename std::decay<Args>::type...>(
        std::forward<F>(fn), std::forward<Args>(args)...);
    Task<R> handle = Access::adopt<Task<R>>(st);  // owns the first reference, even if spawn throws
    spawn(st, std::move(name), stack, context, eager);
    return handle;
}
}  // namespace detail

template <class F, class... Args, class>
Task<detail::async_result_t<F, Args...>> async(F&& fn, Args&&... args) {
    return detail::spawn_task(std::string(), 0, nullptr, false, std::forward<F>(fn),
                              std::forward<Args>(args)...);
}

template <class F, class... Args>
Task<detail::async_result_t<F, Args...>> async(TaskOptions options, F&& fn, Args&&... args) {
    return detail::spawn_task(std::move(options.name), options.stack_size, &options.context,
                              options.eager, std::forward<F>(fn), std::forward<Args>(args)...);
}

template <class T>
T await(Task<T>& t) {
    if (!t) throw InvalidStateError("asyncfiber: await of an empty Task handle");
    detail::await_done(detail::Access::state(t));
    return detail::Access::typed(t)->value();
}

template <class T>
T await(Task<T>&& t) {
    if (!t) throw InvalidStateError("asyncfiber: await of an empty Task handle");
    detail::await_done(detail::Access::state(t));
    return std::move(detail::Access::typed(t)->value());
}

template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
    // Not `d <= 0`, which chrono spells !(0 < d): true for NaN, which deadline_after refuses.
    if (d < d.zero() || d == d.zero()) {
        yield_now();
        return;
    }
    sleep_until(detail::deadline_after(d));
}

}  // namespace asyncfiber

// asyncfiber/detail/task_group_inl.hpp - the definitions behind asyncfiber/task_group.hpp:
// TaskGroup::spawn, and af::task_group with the scope (TaskGroupScope) that runs its body.
#pragma once

#include <asyncfiber/task_group.hpp>

namespace asyncfiber {

template <class F, class... Args>
Task<detail::async_result_t<F, Args...>> TaskGroup::spawn(F&& fn, Args&&... args) {
    check_open();
    auto t = asyncfiber::async(std::forward<F>(fn), std::forward<Args>(args)...);
    adopt(detail::Access::state(t));
    return t;
}
template <class F, class... Args>
Task<detail::async_result_t<F, Args...>> TaskGroup::spawn(TaskOptions options, F&& fn,
                                                          Args&&... args) {
    check_open();
    auto t =
        asyncfiber::async(std::move(options), std::forward<F>(fn), std::forward<Args>(args)...);
    adopt(detail::Access::state(t));
    return t;
}

namespace detail {
struct TaskGroupScope {
    template <class F>
    static group_body_result_t<F> run(F& body, std::false_type /*void*/) {
        TaskGroup g{TaskGroup::Scoped{}};
        std::exception_ptr error;
        try {
            group_body_result_t<F> r = body(g);
            g.end_scope(nullptr);  // throws what the members' failures call for
            return r;
        } catch (...) {
            if (g.joined_) throw;  // the group's own verdict
            error = std::current_exception();
        }
        g.end_scope(error);  // throws
        std::rethrow_exception(error);
    }
    template <class F>
    static void run(F& body, std::true_type /*void*/) {
        TaskGroup g{TaskGroup::Scoped{}};
        std::exception_ptr error;
        try {
            body(g);
        } catch (...) {
            error = std::current_exception();
        }
        g.end_scope(error);
    }
};
}  // namespace detail

template <class F>
detail::group_body_result_t<F> task_group(F&& body) {
    return detail::TaskGroupScope::run(body, std::is_void<detail::group_body_result_t<F>>{});
}

}  // namespace asyncfiber

// asyncfiber/task_group.hpp - structured concurrency (asyncio.TaskGroup): af::task_group, the
// function scope, and af::TaskGroup, the object it hands its body.
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/task.hpp>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {
struct TaskGroupScope;
}  // namespace detail

/// The tasks of one group. Made by af::task_group (the form to use, see below) or on its
/// own:
///
///     af::TaskGroup g;
///     auto a = g.spawn(fetch, url1);
///     auto b = g.spawn(fetch, url2);
///     g.join();  // waits for both; throws af::TaskGroupError if any failed
///
/// - The first task that fails (with an exception other than CancelledError) cancels every
///   other task of the group; join() waits for all of them, then throws TaskGroupError
///   holding every exception, in the order they happened.
/// - A task cancelled by someone else does not count as a failure.
/// - If the task calling join() is cancelled, the group's tasks are cancelled, join() waits
///   for them and then throws CancelledError, unless some task failed: TaskGroupError wins.
/// - A group destroyed without join() (e.g. an exception left the scope) cancels its tasks
///   and waits for them; failures are then reported to the loop's exception handler. A
///   cancellation of the waiting task during that wait is kept and thrown at its next
///   suspension point.
/// - spawn() after join() or while the group is shutting down throws RuntimeError.
///
/// A group made this way cannot interrupt the code between its creation and join(): a
/// failing member cancels the other members, and the failure waits for join(). The asyncio
/// worker idiom (members consume a queue, the code waits on queue.join()) then waits forever
/// when a member fails; af::task_group interrupts its body and is what to use.
class TaskGroup {
public:
    TaskGroup();
    ~TaskGroup();
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    /// Spawns fn(args...) as a task of the group (af::async) and returns its handle.
    template <class F, class... Args>
    Task<detail::async_result_t<F, Args...>> spawn(F&& fn, Args&&... args);
    template <class F, class... Args>
    Task<detail::async_result_t<F, Args...>> spawn(TaskOptions options, F&& fn, Args&&... args);

    /// Waits until every task of the group is done (see the class comment). Not for the
    /// group of af::task_group, which waits when its body returns (RuntimeError).
    void join();

    /// Tasks of the group not done yet.
    std::size_t size() const noexcept { return active_; }
    /// A task failed (or the joiner was cancelled) and the others are being cancelled.
    bool aborting() const noexcept { return aborting_; }

    struct Member;

private:
    friend struct detail::TaskGroupScope;
    /// A cancellation of the task that waits for the members, and its message.
    struct Cancellation {
        bool seen = false;
        std::string msg;
    };
    struct Scoped {};
    explicit TaskGroup(Scoped);
    void check_open() const;
    void adopt(detail::TaskBase* t);
    void abort() noexcept;
    void on_member_done(Member* m, detail::TaskBase* t) noexcept;
    void wait_all(Cancellation& any, Cancellation& from_outside);
    /// af::task_group's end: waits for the members and throws what asyncio's __aexit__
    /// raises; returns only when the body returned and nothing failed.
    void end_scope(std::exception_ptr body_error);

    detail::List members_;
    std::size_t active_ = 0;
    std::vector<std::exception_ptr> errors_;
    detail::TaskBase* owner_ = nullptr;
    detail::TaskBase* joiner_ = nullptr;
    bool aborting_ = false;
    bool joined_ = false;
    bool scoped_ = false;                   // made by af::task_group: failures cancel the body
    bool parent_cancel_requested_ = false;  // a failure cancelled the body (asyncio's name)
};

namespace detail {
template <class F>
using group_body_result_t =
    typename std::decay<decltype(std::declval<F&>()(std::declval<TaskGroup&>()))>::type;
}  // namespace detail

/// asyncio's `async with asyncio.TaskGroup() as g:` as a function scope, like af::timeout:
///
///     af::task_group([&](af::TaskGroup& g) {
///         for (int i = 0; i < 4; ++i) g.spawn(worker, std::ref(queue));
///         queue.join();        // interrupted if a worker fails
///     });                      // waits for every member; throws af::TaskGroupError
///
/// `body(g)` runs in the calling task; its members are spawned with g.spawn. When the body
/// returns, the call waits for every member and returns the body's value. asyncio's rules:
/// - A member that fails (an exception other than CancelledError) cancels the other members
///   and the body (its current or next suspension point throws CancelledError). Once the
///   body has unwound and every member has ended, the call throws TaskGroupError with every
///   exception in the order they happened. The cancellation the group made is taken back
///   (uncancel), so it does not reach code after the call.
/// - An exception of the body itself cancels the members too and joins them in the
///   TaskGroupError (last).
/// - A cancellation from outside (Task::cancel, an enclosing af::timeout) cancels the
///   members; the call waits for them and throws CancelledError, unless a member failed:
///   TaskGroupError wins, and the outside cancellation stays pending (it is thrown at the
///   task's next suspension point), as asyncio re-cancels the parent.
/// - g.spawn() after a failure throws RuntimeError ("shutting down"); g.join() is refused.
template <class F>
detail::group_body_result_t<F> task_group(F&& body);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/task_group_inl.hpp>

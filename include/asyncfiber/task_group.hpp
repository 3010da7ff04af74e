// asyncfiber/task_group.hpp - af::TaskGroup, structured concurrency (asyncio.TaskGroup).
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/task.hpp>

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace asyncfiber {

/// asyncio.TaskGroup spelled with a scope:
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
/// Unlike asyncio, a failing task does not cancel the code that runs between the group's
/// creation and join() (C++ cannot turn the CancelledError that would unwind it into the
/// TaskGroupError from a destructor); the failure is reported by join().
class TaskGroup {
public:
    TaskGroup();
    ~TaskGroup();
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    /// Spawns fn(args...) as a task of the group (af::async) and returns its handle.
    template <class F, class... Args>
    Task<detail::async_result_t<F, Args...>> spawn(F&& fn, Args&&... args) {
        check_open();
        auto t = asyncfiber::async(std::forward<F>(fn), std::forward<Args>(args)...);
        adopt(t.state());
        return t;
    }
    template <class F, class... Args>
    Task<detail::async_result_t<F, Args...>> spawn(TaskOptions options, F&& fn, Args&&... args) {
        check_open();
        auto t = asyncfiber::async(std::move(options), std::forward<F>(fn),
                                   std::forward<Args>(args)...);
        adopt(t.state());
        return t;
    }

    /// Waits until every task of the group is done (see the class comment).
    void join();

    /// Tasks of the group not done yet.
    std::size_t size() const noexcept { return active_; }
    /// A task failed (or the joiner was cancelled) and the others are being cancelled.
    bool aborting() const noexcept { return aborting_; }

    struct Member;

private:
    void check_open() const;
    void adopt(detail::TaskBase* t);
    void abort() noexcept;
    void on_member_done(Member* m, detail::TaskBase* t) noexcept;
    void wait_all(bool* cancelled, std::string* msg);

    detail::List members_;
    std::size_t active_ = 0;
    std::vector<std::exception_ptr> errors_;
    detail::TaskBase* owner_ = nullptr;
    detail::TaskBase* joiner_ = nullptr;
    bool aborting_ = false;
    bool joined_ = false;
};

}  // namespace asyncfiber

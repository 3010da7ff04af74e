// asyncfiber/task.hpp - tasks: af::async, af::await, af::sleep, cancellation.
//
// Like asyncio.create_task: af::async(fn, args...) queues fn(args...) to run on its own fiber
// and returns a Task<R> handle at once; the task starts when the caller next suspends, after
// the tasks spawned before it (the tasks one af::gather call creates in its arguments start
// in argument order, whatever order the compiler evaluated them in: see gather.hpp).
#pragma once

#include <asyncfiber/detail/context_handle.hpp>
#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/callback.hpp>
#include <asyncfiber/detail/deadline.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/errors.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace asyncfiber {

using Clock = std::chrono::steady_clock;

/// Options of one task. `af::async(af::TaskOptions{"fetcher", 512 * 1024}, fn)`.
struct TaskOptions {
    std::string name;  ///< empty: "Task-<id>"
    std::size_t stack_size =
        0;  ///< bytes of virtual stack (16 KiB to 1 GiB); 0: default_stack_size()
    /// asyncio's eager task factory: the task runs at once, inside af::async, until its first
    /// suspension (or its end); af::async then returns and the spawner goes on. A task that
    /// finishes without suspending is done when af::async returns and never went through the
    /// ready queue. Also from a callback of the running loop (an Asio handler included).
    bool eager = false;
    /// The context the task runs in (not a copy: what it sets lands there, as asyncio's
    /// create_task(context=)); empty: a copy of its creator's context.
    Context context{};
};

/// The stack size of tasks spawned without one (256 KiB unless changed). Only touched pages
/// cost memory. Applies to tasks spawned afterwards on any thread.
std::size_t default_stack_size() noexcept;
/// Sets default_stack_size(); rounded up to whole pages, at least 16 KiB, at most 1 GiB.
void set_default_stack_size(std::size_t bytes);

template <class T>
class Task;

/// A type-erased handle to a task: every Task<T> converts to it. Cheap to copy. Like the
/// task itself, a handle belongs to the thread of the loop that runs the task: operations
/// that act on the task or wait for it (cancel, uncancel, add_done_callback, set_name, await,
/// wait_for, gather, wait, as_completed, shield) throw RuntimeError from another thread while
/// that loop runs, naming the thread-safe ways (Loop::call_soon_threadsafe,
/// af::run_coroutine_threadsafe). Reads (done, cancelled, cancelling, exception, name, id,
/// Task::result) are not checked: they are safe once the task is done and the reading thread
/// has synchronised with the loop's (joined it, or heard from it through a thread-safe call).
class TaskRef {
public:
    TaskRef() noexcept = default;

    explicit operator bool() const noexcept { return p_.get() != nullptr; }
    bool done() const;
    bool cancelled() const;
    /// Requests cancellation: the task's current or next suspension point throws
    /// CancelledError(msg). Returns false if the task is already done.
    bool cancel(std::string msg = {});
    /// How many cancellations are pending (asyncio's cancelling()).
    int cancelling() const;
    /// Takes one pending cancellation request back (asyncio's uncancel()); returns the rest.
    int uncancel();
    /// The exception the task failed with, or nullptr if it succeeded. Throws
    /// InvalidStateError while pending and CancelledError if it was cancelled.
    std::exception_ptr exception() const;
    std::string name() const;
    void set_name(std::string name);
    /// Unique, increasing per process.
    std::uint64_t id() const;
    /// Calls fn(task) on the loop once the task is done (soon, if it already is).
    void add_done_callback(detail::Callback<void(TaskRef)> fn);

    friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.p_ == b.p_; }
    friend bool operator!=(const TaskRef& a, const TaskRef& b) noexcept { return a.p_ != b.p_; }
    friend bool operator<(const TaskRef& a, const TaskRef& b) noexcept {
        // The blocks' addresses as integers: the total order std::less gives pointers,
        // without <functional>.
        return reinterpret_cast<std::uintptr_t>(a.p_.get()) <
               reinterpret_cast<std::uintptr_t>(b.p_.get());
    }

protected:
    detail::IntrusivePtr<detail::TaskBase> p_;

private:
    friend struct detail::Access;
    detail::TaskBase* state() const noexcept { return p_.get(); }
    /// Adopts one reference.
    static TaskRef adopt(detail::TaskBase* p) noexcept {
        TaskRef r;
        r.p_ = detail::IntrusivePtr<detail::TaskBase>::adopt(p);
        return r;
    }
};

/// A handle to a task with a result of type T (T may be void).
template <class T>
class Task : public TaskRef {
public:
    using value_type = T;
    Task() noexcept = default;

    /// The value (a const reference), or rethrows the task's exception; CancelledError if it
    /// was cancelled; InvalidStateError while pending.
    const typename detail::ResultOf<T>::type& result() const;

private:
    friend struct detail::Access;
    detail::TaskState<T>* typed() const noexcept {
        return static_cast<detail::TaskState<T>*>(p_.get());
    }
    static Task adopt(detail::TaskState<T>* p) noexcept {
        Task t;
        t.p_ = detail::IntrusivePtr<detail::TaskBase>::adopt(p);
        return t;
    }
    void check_done() const;
    const typename detail::ResultOf<T>::type& get(std::false_type) const;
    const None& get(std::true_type) const;
};

namespace detail {
template <class F, class... Args>
using async_result_t =
    call_result_t<typename std::decay<F>::type&&, typename std::decay<Args>::type&&...>;

/// Creates the task block of fn(args...) and hands it to the running loop.
template <class F, class... Args>
Task<async_result_t<F, Args...>> spawn_task(std::string name, std::size_t stack,
                                            const Context* context, bool eager, F&& fn,
                                            Args&&... args);

template <class F>
struct is_task_options : std::is_same<typename std::decay<F>::type, TaskOptions> {};

/// Whether T is a Task (gather and wait_for take tasks as they are, callables as new tasks).
template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<Task<T>> : std::true_type {};
}  // namespace detail

/// Spawns fn(args...) as a task of the running loop (asyncio.create_task). The callable and
/// arguments are decay-copied; they are destroyed once the task has run.
template <class F, class... Args,
          class = typename std::enable_if<!detail::is_task_options<F>::value>::type>
Task<detail::async_result_t<F, Args...>> async(F&& fn, Args&&... args);

/// Spawns with a name, a stack size and/or eagerly (TaskOptions::eager).
template <class F, class... Args>
Task<detail::async_result_t<F, Args...>> async(TaskOptions options, F&& fn, Args&&... args);

/// Suspends the calling task until `t` is done; returns a copy of its value or rethrows its
/// exception. Cancelling the caller cancels `t` too (as awaiting a task does in asyncio).
template <class T>
T await(Task<T>& t);
void await(Task<void>& t);

/// As above, but moves the value out of the task.
template <class T>
T await(Task<T>&& t);
void await(Task<void>&& t);

/// Suspends the calling task until `deadline`. Throws CancelledError if the task is cancelled
/// before or while it sleeps.
void sleep_until(Clock::time_point deadline);
/// sleep(0): lets every other ready task run once, in FIFO order, before the caller resumes.
/// Throws CancelledError if the task is cancelled before or while it waits.
void yield_now();
/// Suspends the calling task for `d`. sleep(0) (or any d <= 0) is yield_now(). A duration
/// beyond the clock's range (hours::max(), infinity) sleeps until cancelled; NaN throws
/// std::invalid_argument.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d);

/// The task running now (asyncio.current_task()); an empty handle on a loop's thread outside
/// any task (a callback, an Asio handler), as asyncio returns None. Throws RuntimeError on a
/// thread that runs no loop, as asyncio does without a running loop.
TaskRef current_task();
/// Every task of this thread's loop that is not done yet. Throws RuntimeError outside a loop.
std::vector<TaskRef> all_tasks();

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/task_inl.hpp>

// asyncfiber/wait.hpp - waiting on tasks: wait_for, wait, as_completed, shield (the waiting
// half of asyncio's tasks.py). The deadlines wait_for is built on (timeout, timeout_at,
// Timeout: asyncio's timeouts.py) are in timeouts.hpp, included here.
#pragma once

#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/task.hpp>
#include <asyncfiber/timeouts.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>
#include <vector>

// AsCompleted's iterator names std::input_iterator_tag, which <iterator> declares. With
// libstdc++ the tag's own small internal header gives it without the rest of <iterator>
// (about 90 M compiler instructions here, docs/performance.md, "Header weight").
#if defined(__GLIBCXX__)
#include <bits/stl_iterator_base_types.h>
#else
#include <iterator>
#endif

namespace asyncfiber {

namespace detail {
class CompletionQueue;
}  // namespace detail

/// asyncio.wait_for on a task: waits for `t` at most `d`. On timeout cancels `t`, waits
/// until it has finished, then throws TimeoutError. A value `t` has by the time the timeout
/// is handled is returned, not lost: one it returned after swallowing the cancellation (as
/// in Python 3.12+), or one it produced in the very iteration the deadline passed.
/// Cancelling the caller cancels `t`.
template <class T, class Rep, class Period>
T wait_for(Task<T> t, std::chrono::duration<Rep, Period> d);

/// asyncio.wait_for on a callable: timeout(d, fn), as Python 3.12+ runs the awaited
/// coroutine in the calling task. fn runs at once in the calling task (even one whose
/// cancellation is pending: its first suspension point sees it), so a value it produced is
/// returned and never dropped with a task of its own. As in Python 3.12+, a duration <= 0
/// does not start fn: the call lets the other tasks run once (a suspension point) and throws
/// TimeoutError.
template <
    class F, class Rep, class Period,
    class = typename std::enable_if<!detail::is_task<typename std::decay<F>::type>::value>::type>
auto wait_for(F&& fn, std::chrono::duration<Rep, Period> d) ->
    typename std::decay<decltype(std::forward<F>(fn)())>::type;

/// When af::wait returns (asyncio.FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { first_completed, first_exception, all_completed };

/// What af::wait returns: the tasks that are done and those that are not, each in the order
/// they were given. With C++17: `auto [done, pending] = af::wait(...)`.
struct WaitResult {
    std::vector<TaskRef> done;
    std::vector<TaskRef> pending;
};

/// asyncio.wait: suspends until `when` is satisfied. first_exception counts a task that
/// failed with an exception (not one that was cancelled) and otherwise waits for all.
/// Neither the end of the wait nor cancelling the caller cancels any task. Duplicate
/// handles count once. An empty handle throws InvalidStateError (as everywhere, errors.hpp);
/// an empty list or a `when` that is none of the three throws std::invalid_argument. Like
/// asyncio's, it always suspends: the caller resumes two loop iterations after the task that
/// decides the wait ended (or after the call).
WaitResult wait(std::vector<TaskRef> tasks, ReturnWhen when = ReturnWhen::all_completed);
/// As above, but returns (without error, without cancelling anything) once `timeout` passed
/// (beyond the clock's range: never; NaN: std::invalid_argument).
WaitResult wait_until(std::vector<TaskRef> tasks, ReturnWhen when, Clock::time_point deadline);
template <class Rep, class Period>
WaitResult wait(std::vector<TaskRef> tasks, ReturnWhen when,
                std::chrono::duration<Rep, Period> timeout) {
    return wait_until(std::move(tasks), when, detail::deadline_after(timeout));
}

/// The range af::as_completed returns. Dereferencing an iterator suspends until the next
/// task is done and yields it (asyncio.as_completed). A task is consumed when it is yielded:
/// a loop left with `break` and iterated again (a new begin()) goes on with the next task,
/// as a Python iterator resumes. Move-only; destroying it early leaves the tasks running.
template <class T>
class AsCompleted {
public:
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Task<T>;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = Task<T>;

        iterator() = default;
        /// Suspends until the next task is done and consumes it (dereferencing the same
        /// position again yields the same task). Throws TimeoutError past the deadline.
        Task<T> operator*() const { return r_->next_task(); }
        iterator& operator++() {
            r_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.at_end() == b.at_end();
        }
        friend bool operator!=(const iterator& a, const iterator& b) noexcept { return !(a == b); }

    private:
        friend class AsCompleted;
        explicit iterator(AsCompleted* r) : r_(r) {}
        bool at_end() const noexcept { return !r_ || r_->exhausted(); }
        AsCompleted* r_ = nullptr;
    };

    AsCompleted(std::vector<Task<T>> tasks, Clock::time_point deadline);
    AsCompleted(AsCompleted&&) = default;

    /// Starts a new pass: the task yielded at the position where an earlier loop stopped
    /// was consumed there.
    iterator begin() {
        current_valid_ = false;
        return iterator(this);
    }
    iterator end() { return iterator(); }
    std::size_t size() const noexcept { return tasks_.size(); }

private:
    static std::vector<detail::TaskBase*> states(const std::vector<Task<T>>& ts);
    // At the end when every task was consumed and the position holds none of them.
    bool exhausted() const noexcept;
    Task<T> next_task();
    void advance();

    std::vector<Task<T>> tasks_;
    detail::IntrusivePtr<detail::CompletionQueue> q_;  // this object's alone (move-only)
    std::size_t current_ = 0;     // the task at the iterator's position (an index in tasks_)
    bool current_valid_ = false;  // the position holds a task already consumed
};

/// asyncio.as_completed: `for (auto t : af::as_completed(tasks)) use(af::await(t));` yields
/// the tasks in the order they finish (each already done, so await does not suspend).
template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks) {
    return AsCompleted<T>(std::move(tasks), Clock::time_point::max());
}
/// With a timeout: dereferencing throws TimeoutError once it has passed. Nothing is cancelled.
/// A timeout beyond the clock's range never passes; NaN throws std::invalid_argument.
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks,
                            std::chrono::duration<Rep, Period> timeout) {
    return AsCompleted<T>(std::move(tasks), detail::deadline_after(timeout));
}

/// asyncio.shield: returns a task that finishes as `t` does, but cancelling it (or a task
/// awaiting it) does not cancel `t`. A task already done is returned as it is. Once the shield
/// was cancelled, a later failure of `t` goes to the loop's exception handler (as Python
/// 3.14's shield logs it), once, and counts as retrieved.
template <class T>
Task<T> shield(Task<T> t);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/wait_inl.hpp>

// asyncfiber/detail/wait_inl.hpp - the definitions behind asyncfiber/wait.hpp: wait_for,
// AsCompleted's members and shield, and what they use (take_done, as_completed's
// CompletionQueue, shield's wait without forwarding a cancellation).
#pragma once

#include <asyncfiber/wait.hpp>

namespace asyncfiber {

namespace detail {

/// The value of a finished task: moved out when this handle is the only one (or T cannot be
/// copied), copied otherwise, so that other handles still read it.
template <class T>
T take_done(Task<T>& t) {
    detail::Access::typed(t)->value();  // rethrows
    return take_value(t);
}
inline void take_done(Task<void>& t) { detail::Access::typed(t)->value(); }

/// The non-template core of as_completed: listeners on every task, a FIFO of the indexes of
/// those that finished, an optional deadline.
class CompletionQueue {
public:
    CompletionQueue(std::vector<TaskBase*> tasks, Clock::time_point deadline);
    ~CompletionQueue();
    CompletionQueue(const CompletionQueue&) = delete;
    CompletionQueue& operator=(const CompletionQueue&) = delete;

    /// Suspends until the next task is done; returns its index. Throws TimeoutError past the
    /// deadline, CancelledError if the caller is cancelled (the tasks are not cancelled).
    std::size_t next();
    std::size_t size() const noexcept { return n_; }
    std::size_t yielded() const noexcept { return yielded_; }
    /// For the IntrusivePtr of its one owner (an AsCompleted, on the loop's thread).
    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }

    struct Node;
    struct Timer;

private:
    friend struct Node;
    void on_done(std::size_t index) noexcept;
    std::size_t n_;
    std::size_t yielded_ = 0;
    Node* nodes_;  // one per task given (owned; Node is defined in lib/compose/wait.cpp)
    std::vector<std::size_t> finished_;  // indexes, in completion order
    std::size_t head_ = 0;
    Timer* timer_ = nullptr;  // owned; only with a deadline
    bool timed_out_ = false;
    TaskBase* waiter_ = nullptr;
    std::uint32_t refs_ = 1;
};

/// Waits for `t` to finish without passing a cancellation of the caller on to it.
void wait_done_no_forward(TaskBase* t);
}  // namespace detail

template <class T, class Rep, class Period>
T wait_for(Task<T> t, std::chrono::duration<Rep, Period> d) {
    if (!t) throw InvalidStateError("asyncfiber: wait_for of an empty Task handle");
    detail::check_loop_thread(detail::Access::state(t)->loop, "af::wait_for",
                              detail::LoopUse::await);
    try {
        return timeout(d, [&t]() -> T {
            detail::await_done(detail::Access::state(t));
            return detail::take_done(t);
        });
    } catch (const TimeoutError&) {
        // The deadline was handled after `t` had finished (it could not take the
        // cancellation any more): its value wins.
        if (detail::Access::state(t)->outcome != detail::TaskOutcome::value) throw;
    }
    return detail::take_done(t);
}

template <class F, class Rep, class Period, class>
auto wait_for(F&& fn, std::chrono::duration<Rep, Period> d) ->
    typename std::decay<decltype(std::forward<F>(fn)())>::type {
    if (d <= d.zero()) {
        yield_now();
        throw TimeoutError();
    }
    return timeout(d, [&fn] { return std::forward<F>(fn)(); });
}

template <class T>
AsCompleted<T>::AsCompleted(std::vector<Task<T>> tasks, Clock::time_point deadline)
    : tasks_(std::move(tasks)),
      q_(detail::IntrusivePtr<detail::CompletionQueue>::adopt(
          new detail::CompletionQueue(states(tasks_), deadline))) {}

template <class T>
std::vector<detail::TaskBase*> AsCompleted<T>::states(const std::vector<Task<T>>& ts) {
    std::vector<detail::TaskBase*> s;
    s.reserve(ts.size());
    for (const auto& t : ts) {
        if (!t) throw InvalidStateError("asyncfiber: as_completed of an empty Task handle");
        s.push_back(detail::Access::state(t));
    }
    return s;
}
template <class T>
bool AsCompleted<T>::exhausted() const noexcept {
    return !current_valid_ && q_->yielded() >= q_->size();
}
template <class T>
Task<T> AsCompleted<T>::next_task() {
    if (!current_valid_) {
        current_ = q_->next();
        current_valid_ = true;
    }
    return tasks_[current_];
}
template <class T>
void AsCompleted<T>::advance() {
    if (!current_valid_) next_task();  // ++ without * still consumes one completion
    current_valid_ = false;
}

template <class T>
Task<T> shield(Task<T> t) {
    if (!t) throw InvalidStateError("asyncfiber: shield of an empty Task handle");
    detail::check_loop_thread(detail::Access::state(t)->loop, "af::shield", detail::LoopUse::await);
    if (t.done()) return t;
    return asyncfiber::async(
        [](Task<T> inner) -> T {
            detail::wait_done_no_forward(detail::Access::state(inner));
            return detail::take_done(inner);
        },
        std::move(t));
}

}  // namespace asyncfiber

// asyncfiber/concurrent_future.hpp - af::ConcurrentFuture<R>: what run_coroutine_threadsafe
// returns (asyncio's concurrent.futures.Future). A std::future<R> with the same members, plus
// done(), cancelled() and cancel(), which cancels the task on its loop; it converts (by move)
// to the std::future<R> that run_coroutine_threadsafe returned before, so that code storing
// the result in a std::future keeps compiling.
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/task.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <utility>

namespace asyncfiber {

namespace detail {
template <class R>
struct ThreadsafeRun;
}  // namespace detail

/// The future of af::run_coroutine_threadsafe. Move-only, usable from any thread. get(),
/// wait(), wait_for(), wait_until(), valid() and share() are std::future<R>'s. done() tells
/// whether the result is there; cancel() asks the loop to cancel the task and returns false
/// if the result is there already (concurrent.futures semantics); cancelled() becomes true
/// once the task has ended cancelled (get() then throws CancelledError). A task that catches
/// the cancellation and returns a value delivers that value. Calls other than valid() on a
/// future without a shared state (default-made, moved from) throw std::future_error
/// (no_state), as libstdc++'s std::future does.
template <class R>
class ConcurrentFuture {
public:
    ConcurrentFuture() noexcept = default;
    ConcurrentFuture(ConcurrentFuture&&) noexcept = default;
    ConcurrentFuture& operator=(ConcurrentFuture&&) noexcept = default;
    ConcurrentFuture(const ConcurrentFuture&) = delete;
    ConcurrentFuture& operator=(const ConcurrentFuture&) = delete;

    /// The std::future, by move (this one is left without a state).
    operator std::future<R>() &&;

    R get() { return fut_.get(); }
    void wait() const { fut_.wait(); }
    template <class Rep, class Period>
    std::future_status wait_for(const std::chrono::duration<Rep, Period>& d) const {
        return fut_.wait_for(d);
    }
    template <class C, class Duration>
    std::future_status wait_until(const std::chrono::time_point<C, Duration>& tp) const {
        return fut_.wait_until(tp);
    }
    bool valid() const noexcept { return fut_.valid(); }
    std::shared_future<R> share() noexcept;

    /// The result (value or exception) is there; also after get() took it.
    bool done() const;
    /// The task ended cancelled (or was cancelled before it started).
    bool cancelled() const;
    /// Asks the task's loop to cancel the task (Task::cancel() there). False if the result is
    /// there already, or the loop is closed; true otherwise: the result follows once the task
    /// has ended (CancelledError unless the task caught it).
    bool cancel();

private:
    friend struct detail::Access;
    /// Made by run_coroutine_threadsafe.
    explicit ConcurrentFuture(std::shared_ptr<detail::ThreadsafeRun<R>> run);
    detail::ThreadsafeRun<R>& checked() const;

    std::shared_ptr<detail::ThreadsafeRun<R>> run_;
    std::future<R> fut_;
};

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/concurrent_future_inl.hpp>

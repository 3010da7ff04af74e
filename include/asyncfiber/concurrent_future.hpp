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
/// What run_coroutine_threadsafe's caller and the task share.
template <class R>
struct ThreadsafeRun {
    std::promise<R> promise;
    Loop* loop = nullptr;
    bool set = false;                  // loop thread only: the promise is satisfied
    TaskBase* task = nullptr;          // loop thread only: the task, until its done callback
    std::atomic<bool> ended_cancelled{false};  // written before the promise is satisfied

    /// Loop thread: the task ended cancelled (or never started): the future holds
    /// CancelledError and reports cancelled().
    void set_cancelled(std::exception_ptr e) {
        set = true;
        ended_cancelled.store(true, std::memory_order_relaxed);  // the promise publishes it
        promise.set_exception(std::move(e));
    }
};
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
    operator std::future<R>() && {
        run_.reset();
        return std::move(fut_);
    }

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
    std::shared_future<R> share() noexcept {
        run_.reset();
        return fut_.share();
    }

    /// The result (value or exception) is there; also after get() took it.
    bool done() const {
        checked();
        return !fut_.valid() || fut_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    /// The task ended cancelled (or was cancelled before it started).
    bool cancelled() const {
        const detail::ThreadsafeRun<R>& run = checked();
        return done() && run.ended_cancelled.load(std::memory_order_acquire);
    }
    /// Asks the task's loop to cancel the task (Task::cancel() there). False if the result is
    /// there already, or the loop is closed; true otherwise: the result follows once the task
    /// has ended (CancelledError unless the task caught it).
    bool cancel() {
        std::shared_ptr<detail::ThreadsafeRun<R>> run = run_;
        checked();
        if (done()) return false;
        try {
            run->loop->call_soon_threadsafe([run] {
                if (!run->task) return;  // already ended (its done callback ran)
                run->task->add_ref();
                detail::Access::adopt<TaskRef>(run->task).cancel();
            });
        } catch (const RuntimeError&) {  // the loop is closed: its tasks are over
            return false;
        }
        return true;
    }

private:
    friend struct detail::Access;
    /// Made by run_coroutine_threadsafe.
    explicit ConcurrentFuture(std::shared_ptr<detail::ThreadsafeRun<R>> run)
        : run_(std::move(run)), fut_(run_->promise.get_future()) {}
    detail::ThreadsafeRun<R>& checked() const {
        if (!run_) throw std::future_error(std::future_errc::no_state);
        return *run_;
    }

    std::shared_ptr<detail::ThreadsafeRun<R>> run_;
    std::future<R> fut_;
};

}  // namespace asyncfiber

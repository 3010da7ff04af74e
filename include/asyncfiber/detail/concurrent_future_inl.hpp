// asyncfiber/detail/concurrent_future_inl.hpp - the definitions behind
// asyncfiber/concurrent_future.hpp: ConcurrentFuture's members and the state it shares with
// the task that run_coroutine_threadsafe started (ThreadsafeRun).
#pragma once

#include <asyncfiber/concurrent_future.hpp>

namespace asyncfiber {

namespace detail {
/// What run_coroutine_threadsafe's caller and the task share.
template <class R>
struct ThreadsafeRun {
    std::promise<R> promise;
    Loop* loop = nullptr;
    bool set = false;          // loop thread only: the promise is satisfied
    TaskBase* task = nullptr;  // loop thread only: the task, until its done callback
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

template <class R>
ConcurrentFuture<R>::operator std::future<R>() && {
    run_.reset();
    return std::move(fut_);
}
template <class R>
std::shared_future<R> ConcurrentFuture<R>::share() noexcept {
    run_.reset();
    return fut_.share();
}

template <class R>
bool ConcurrentFuture<R>::done() const {
    checked();
    return !fut_.valid() || fut_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
template <class R>
bool ConcurrentFuture<R>::cancelled() const {
    const detail::ThreadsafeRun<R>& run = checked();
    return done() && run.ended_cancelled.load(std::memory_order_acquire);
}
template <class R>
bool ConcurrentFuture<R>::cancel() {
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

template <class R>
ConcurrentFuture<R>::ConcurrentFuture(std::shared_ptr<detail::ThreadsafeRun<R>> run)
    : run_(std::move(run)), fut_(run_->promise.get_future()) {}
template <class R>
detail::ThreadsafeRun<R>& ConcurrentFuture<R>::checked() const {
    if (!run_) throw std::future_error(std::future_errc::no_state);
    return *run_;
}

}  // namespace asyncfiber

// asyncfiber/detail/threads_inl.hpp - the definitions behind asyncfiber/threads.hpp:
// to_thread with the loop's thread pool it queues on, and run_coroutine_threadsafe.
#pragma once

#include <asyncfiber/threads.hpp>

namespace asyncfiber {

// ======================================================================================
// to_thread and the loop's thread pool
// ======================================================================================

namespace detail {
/// A job queued on a loop's pool (lib/thread_pool.cpp).
class PoolJob;
/// Queues `job` on the pool of the loop running on this thread (created on first use, shut
/// down and joined by Loop::close after the queued jobs ran). The handle lets the task that
/// submitted it take it back while no thread has started it.
std::shared_ptr<PoolJob> submit_to_pool(std::function<void()> job);
/// What cancelling a task in to_thread does (BridgeCore::wait's on_cancel; `job` is a
/// PoolJob). Both take a job that has not started out of the queue: it never runs and the
/// task wakes at once. Of a job that runs, the first waits for the end (returns true), the
/// second leaves it behind (returns false).
bool withdraw_or_wait_for(void* job);
bool withdraw_or_abandon(void* job);

template <class F, class... Args>
async_result_t<F, Args...> run_in_pool(bool abandon, F&& fn, Args&&... args) {
    using R = async_result_t<F, Args...>;
    using Job = BoundCall<typename std::decay<F>::type, typename std::decay<Args>::type...>;
    TaskBase* self = current_task_checked("af::to_thread");
    throw_if_cancelled(self);
    auto core = IntrusivePtr<Shared<R>>::adopt(new Shared<R>);
    // shared_ptr: std::function needs a copyable target; the job itself may be move-only.
    auto job = std::make_shared<Job>(std::forward<F>(fn), std::forward<Args>(args)...);
    CompleterRef<Shared<R>> completer(core.get());
    std::shared_ptr<PoolJob> queued = submit_to_pool([completer, job]() mutable {
        std::exception_ptr err;
        try {
            Shared<R>& out = *completer.get();
            job->call_into([&out](auto&&... v) { out.emplace(std::forward<decltype(v)>(v)...); });
        } catch (...) {
            err = std::current_exception();
        }
        job.reset();  // the callable's destructor runs here, on the pool thread
        // Handed over outside the catch block: once the task has it, this thread keeps no
        // hold on the exception object.
        if (err) completer.get()->set_error(std::move(err));
    });
    core->wait("to_thread", abandon ? &withdraw_or_abandon : &withdraw_or_wait_for, queued.get(),
               abandon);
    return core->take();
}
}  // namespace detail

template <class F, class... Args, class>
detail::async_result_t<F, Args...> to_thread(F&& fn, Args&&... args) {
    return detail::run_in_pool(false, std::forward<F>(fn), std::forward<Args>(args)...);
}

template <class F, class... Args>
detail::async_result_t<F, Args...> to_thread(AbandonOnCancel, F&& fn, Args&&... args) {
    return detail::run_in_pool(true, std::forward<F>(fn), std::forward<Args>(args)...);
}

// ======================================================================================
// run_coroutine_threadsafe
// ======================================================================================

template <class F, class... Args>
ConcurrentFuture<detail::async_result_t<F, Args...>> run_coroutine_threadsafe(Loop& loop, F&& fn,
                                                                              Args&&... args) {
    using R = detail::async_result_t<F, Args...>;
    using Call =
        detail::BoundCall<typename std::decay<F>::type, typename std::decay<Args>::type...>;
    auto run = std::make_shared<detail::ThreadsafeRun<R>>();
    run->loop = &loop;
    auto call = std::make_shared<Call>(std::forward<F>(fn), std::forward<Args>(args)...);
    auto fut = detail::Access::make<ConcurrentFuture<R>>(run);
    auto start = [run, call] {
        if (run->loop->is_closed()) {  // posted before it closed: fails now, as asyncio's would
            run->set = true;
            run->promise.set_exception(
                std::make_exception_ptr(RuntimeError("asyncfiber: Event loop is closed")));
            return;
        }
        Task<void> t = asyncfiber::async([run, call] {
            try {
                std::promise<R>& p = run->promise;
                call->call_into(
                    [&p](auto&&... v) { p.set_value(std::forward<decltype(v)>(v)...); });
                run->set = true;
            } catch (const CancelledError&) {
                run->set_cancelled(std::current_exception());
                throw;  // the task counts as cancelled
            } catch (...) {
                // Handed over to the future: the task itself ends normally.
                run->promise.set_exception(std::current_exception());
                run->set = true;
            }
        });
        run->task =
            detail::Access::state(t);  // for ConcurrentFuture::cancel(), until the callback below
        t.add_done_callback([run](TaskRef) {
            run->task = nullptr;
            // Cancelled before its first step: the body never ran.
            if (!run->set) run->set_cancelled(std::make_exception_ptr(CancelledError()));
        });
    };
    try {
        loop.call_soon_threadsafe(std::move(start));
    } catch (const RuntimeError&) {  // the loop is closed: the future fails at once
        run->promise.set_exception(std::current_exception());
    }
    return fut;
}

}  // namespace asyncfiber

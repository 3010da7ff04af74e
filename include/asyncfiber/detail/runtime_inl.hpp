// asyncfiber/detail/runtime_inl.hpp - the definitions behind asyncfiber/runtime.hpp:
// Runtime::spawn_on and Runtime::run, and the state a spawn_on future shares with its task on
// the other loop (RemoteTask, RemoteRun).
#pragma once

#include <asyncfiber/runtime.hpp>

namespace asyncfiber {

namespace detail {

/// The task a spawn_on future stands for, as its cancellers see it (lib/bridge/runtime.cpp).
struct RemoteTask {
    Loop* loop = nullptr;
    std::atomic<bool> cancel_requested{false};
    /// On the loop's thread only: the task while it lives (a plain pointer: a TaskRef's count
    /// belongs to the loop's thread, and this block may die on any thread).
    TaskBase* task = nullptr;
    /// Any thread: cancels the task on its loop (or keeps it from starting).
    static void request_cancel(const std::shared_ptr<RemoteTask>& remote);
};

/// Owned by spawn_on's start callback, then by the task's body: whoever drops it last
/// without having completed the future (a task cancelled before its first step, a start
/// dropped by a closing loop) completes it with CancelledError.
template <class R>
struct RemoteRun {
    RemoteRun(IntrusivePtr<Shared<R>> c, std::shared_ptr<RemoteTask> r) noexcept
        : core(std::move(c)), remote(std::move(r)) {}
    RemoteRun(const RemoteRun&) = delete;
    RemoteRun& operator=(const RemoteRun&) = delete;
    ~RemoteRun() {
        remote->task = nullptr;
        core->set_error(std::make_exception_ptr(CancelledError()));  // no-op once completed
    }
    IntrusivePtr<Shared<R>> core;
    std::shared_ptr<RemoteTask> remote;
};

}  // namespace detail

template <class F, class... Args>
Future<detail::async_result_t<F, Args...>> Runtime::spawn_on(std::size_t i, F&& fn,
                                                             Args&&... args) {
    using R = detail::async_result_t<F, Args...>;
    using Call =
        detail::BoundCall<typename std::decay<F>::type, typename std::decay<Args>::type...>;
    check_index(i);
    auto core = detail::IntrusivePtr<detail::Shared<R>>::adopt(new detail::Shared<R>);
    auto remote = std::make_shared<detail::RemoteTask>();
    remote->loop = loops_[i].get();
    core->set_remote_cancel([remote] { detail::RemoteTask::request_cancel(remote); });
    auto call = std::make_shared<Call>(std::forward<F>(fn), std::forward<Args>(args)...);
    auto run = std::make_shared<detail::RemoteRun<R>>(core, remote);
    std::shared_ptr<std::atomic<bool>> stopping = stopping_;
    auto start = [run, call, stopping]() mutable {
        detail::RemoteTask& remote = *run->remote;
        if (remote.cancel_requested.load() || stopping->load() || remote.loop->is_closed())
            return;  // dropping `run` fails the future with CancelledError
        Task<void> t = asyncfiber::async(
            [call](std::shared_ptr<detail::RemoteRun<R>> r) {
                detail::Shared<R>& out = *r->core.get();
                std::exception_ptr err;
                std::unique_ptr<CancelledError> cancelled;
                try {
                    call->call_into(
                        [&out](auto&&... v) { out.emplace(std::forward<decltype(v)>(v)...); });
                } catch (const CancelledError& e) {
                    err = std::current_exception();
                    cancelled.reset(new CancelledError(e));
                } catch (...) {
                    err = std::current_exception();
                }
                // Handed over outside the catch blocks: once the future has the exception, this
                // thread holds no reference to it (the awaiting thread may read it, then free it).
                if (err) out.set_error(std::move(err));
                if (cancelled)
                    throw *cancelled;  // the task counts as cancelled (a copy of its own)
            },
            std::move(run));
        remote.task = detail::Access::state(t);
    };
    post(i, std::move(start));  // not posted once stopped: `run` dropped here fails the future
    run.reset();
    return detail::Access::make<Future<R>>(std::move(core));
}

template <class F>
void Runtime::run(F&& fn) {
    auto shared = std::make_shared<typename std::decay<F>::type>(std::forward<F>(fn));
    run_mains([this, shared](std::size_t i) {
        return spawn_on(
            i, [shared](std::size_t index) { (*shared)(index); }, i);
    });
}

}  // namespace asyncfiber

// asyncfiber/runtime.hpp - af::Runtime: one loop per thread, and the hand-offs between them.
//
// A loop is one thread, as asyncio's; a task never moves to another thread. A program that
// outgrows one core runs N loops, each on its own thread (shard per core, as Seastar and
// nginx's workers do), and hands work between them explicitly: spawn_on (a task on another
// loop, its result as an af::Future), af::Channel (a stream of items), or one server per
// loop on one port (ServerOptions::reuse_port). See docs/multicore.md.
#pragma once

#include <asyncfiber/loop.hpp>
#include <asyncfiber/promise.hpp>
#include <asyncfiber/task.hpp>
#include <asyncfiber/threads.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <asyncfiber/detail/thread_annotations.hpp>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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

/// N event loops, each run by a thread of its own until stop(). Create and destroy it on a
/// plain thread (not in a task). Thread-safe: every member may be called from any thread.
class Runtime {
public:
    /// Starts `loops` threads, each running a loop of its own (std::invalid_argument for 0).
    explicit Runtime(std::size_t loops);
    /// stop(), then joins the threads.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    std::size_t size() const noexcept { return loops_.size(); }
    /// Loop i (std::out_of_range past size()). From another thread, only its thread-safe
    /// members (call_soon_threadsafe) may be used, as for any running loop.
    Loop& loop(std::size_t i);

    /// Runs fn(args...) as a task of loop i (fn and args are decay-copied to it) and returns a
    /// future of its result, for af::await in a task of any loop or get() on a plain thread.
    /// The future is tied to the task: its cancel(), or cancelling the task that awaits it,
    /// cancels the task, and the await ends once that task has ended. Once stop() was called
    /// the future fails with CancelledError (also when that happens before the task ran).
    template <class F, class... Args>
    Future<detail::async_result_t<F, Args...>> spawn_on(std::size_t i, F&& fn, Args&&... args);

    /// Runs fn(i) as the main task of every loop i (fn is shared by them: it is called on N
    /// threads at once) and returns when all have ended. The first to fail (in time) makes
    /// run() cancel the others, wait until they have ended, and rethrow its exception. SIGINT
    /// while it runs cancels them all; run() then throws af::KeyboardInterrupt once they have
    /// ended. On a plain thread only (RuntimeError on a thread that runs a loop).
    template <class F>
    void run(F&& fn);

    /// Stops every loop: their tasks are cancelled and run to their end, their loops closed,
    /// pending futures fail with CancelledError. From a plain thread it returns when every
    /// thread has ended; from a task of one of the loops it only starts that (the destructor
    /// joins). Idempotent.
    void stop();

private:
    void check_index(std::size_t i) const;
    /// Hands `start` to loop i; false (nothing posted) once stopped.
    bool post(std::size_t i, std::function<void()> start);
    void thread_main(std::size_t i) noexcept;
    /// run()'s body: starts main i with spawn_main(i) on every loop, waits for them all,
    /// cancelling the rest at the first failure or at SIGINT.
    void run_mains(const std::function<Future<void>(std::size_t)>& spawn_main);
    void join_all();

    std::vector<std::unique_ptr<Loop>> loops_;
    std::vector<std::thread> threads_;
    std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
    detail::Mutex m_;  // held by the posts that must come before the stop, and by stop()
    bool stopped_ ASYNCFIBER_GUARDED_BY(m_) = false;
};

template <class F, class... Args>
Future<detail::async_result_t<F, Args...>> Runtime::spawn_on(std::size_t i, F&& fn, Args&&... args) {
    using R = detail::async_result_t<F, Args...>;
    using Call = std::tuple<typename std::decay<F>::type, std::tuple<typename std::decay<Args>::type...>>;
    check_index(i);
    auto core = detail::IntrusivePtr<detail::Shared<R>>::adopt(new detail::Shared<R>);
    auto remote = std::make_shared<detail::RemoteTask>();
    remote->loop = loops_[i].get();
    core->set_remote_cancel([remote] { detail::RemoteTask::request_cancel(remote); });
    auto call = std::make_shared<Call>(std::forward<F>(fn),
                                       std::tuple<typename std::decay<Args>::type...>(std::forward<Args>(args)...));
    auto run = std::make_shared<detail::RemoteRun<R>>(core, remote);
    std::shared_ptr<std::atomic<bool>> stopping = stopping_;
    auto start = [run, call, stopping]() mutable {
        detail::RemoteTask& remote = *run->remote;
        if (remote.cancel_requested.load() || stopping->load() || remote.loop->is_closed())
            return;  // dropping `run` fails the future with CancelledError
        Task<void> t = asyncfiber::async([call](std::shared_ptr<detail::RemoteRun<R>> r) {
            detail::Shared<R>& out = *r->core.get();
            std::exception_ptr err;
            std::unique_ptr<CancelledError> cancelled;
            try {
                detail::call_and_store(std::get<0>(*call), std::get<1>(*call), [&out](auto&&... v) {
                    out.emplace(std::forward<decltype(v)>(v)...);
                });
            } catch (const CancelledError& e) {
                err = std::current_exception();
                cancelled.reset(new CancelledError(e));
            } catch (...) {
                err = std::current_exception();
            }
            // Handed over outside the catch blocks: once the future has the exception, this
            // thread holds no reference to it (the awaiting thread may read it, then free it).
            if (err) out.set_error(std::move(err));
            if (cancelled) throw *cancelled;  // the task counts as cancelled (a copy of its own)
        }, std::move(run));
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
        return spawn_on(i, [shared](std::size_t index) { (*shared)(index); }, i);
    });
}

}  // namespace asyncfiber

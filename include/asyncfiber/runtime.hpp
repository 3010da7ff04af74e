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
#include <type_traits>
#include <utility>
#include <vector>

namespace asyncfiber {

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

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/runtime_inl.hpp>

// asyncfiber/detail/loop_inl.hpp - the definitions behind asyncfiber/loop.hpp: Loop's
// template members, af::run, and the scopes they use to enter a loop.
#pragma once

#include <asyncfiber/loop.hpp>

namespace asyncfiber {

namespace detail {
/// Loop::spawn's scope: checks the calling thread and makes the loop current for the spawn
/// when no loop is (a plain handler, or before the loop runs).
class SpawnScope {
public:
    explicit SpawnScope(LoopImpl* loop);
    ~SpawnScope();
    SpawnScope(const SpawnScope&) = delete;
    SpawnScope& operator=(const SpawnScope&) = delete;

private:
    LoopImpl* entered_ = nullptr;  // set when this scope made the loop current
};
/// Throws RuntimeError for run_until_complete / run_forever on an embedded loop.
void refuse_if_embedded(LoopImpl* loop, const char* what);

/// Makes a loop current on this thread for a scope; throws RuntimeError if one already runs.
class LoopEntry {
public:
    LoopEntry(LoopImpl* loop, bool handle_sigint);
    ~LoopEntry();
    LoopEntry(const LoopEntry&) = delete;
    LoopEntry& operator=(const LoopEntry&) = delete;
    /// Runs the loop until `main` is done.
    void run_until_done(TaskBase* main);

private:
    void leave() noexcept;
    LoopImpl* loop_;
    bool sigint_;
};

template <class T>
T take_result(Task<T>& t) {
    return std::move(detail::Access::typed(t)->value());
}
inline void take_result(Task<void>& t) { detail::Access::typed(t)->value(); }

/// After run() has cleaned up: if SIGINT cancelled `main` and it ended cancelled (by that
/// request only, as asyncio.Runner checks with uncancel()), ends the process or throws
/// KeyboardInterrupt (see RunOptions). Returns otherwise.
void end_if_interrupted(Loop& loop, TaskBase* main, const RunOptions& options);
}  // namespace detail

template <class F, class... Args, class>
Task<detail::async_result_t<F, Args...>> Loop::spawn(F&& fn, Args&&... args) {
    detail::SpawnScope scope(impl_);
    return asyncfiber::async(std::forward<F>(fn), std::forward<Args>(args)...);
}
template <class F, class... Args>
Task<detail::async_result_t<F, Args...>> Loop::spawn(TaskOptions options, F&& fn, Args&&... args) {
    detail::SpawnScope scope(impl_);
    return asyncfiber::async(std::move(options), std::forward<F>(fn), std::forward<Args>(args)...);
}

template <class F, class... Args>
detail::async_result_t<F, Args...> Loop::run_until_complete(F&& main, Args&&... args) {
    detail::LoopEntry entry(impl_, false);
    auto task = asyncfiber::async(TaskOptions{"main", 0}, std::forward<F>(main),
                                  std::forward<Args>(args)...);
    entry.run_until_done(detail::Access::state(task));
    return detail::take_result(task);
}

template <class F, class... Args>
detail::async_result_t<F, Args...> run(RunOptions options, F&& main, Args&&... args) {
    Loop loop;
    Task<detail::async_result_t<F, Args...>> task;
    {
        detail::LoopEntry entry(detail::Access::impl(loop), true);
        task = asyncfiber::async(TaskOptions{"main", 0}, std::forward<F>(main),
                                 std::forward<Args>(args)...);
        entry.run_until_done(detail::Access::state(task));
    }
    loop.close();
    detail::end_if_interrupted(loop, detail::Access::state(task), options);
    return detail::take_result(task);
}

template <class F, class... Args, class>
detail::async_result_t<F, Args...> run(F&& main, Args&&... args) {
    return asyncfiber::run(RunOptions(), std::forward<F>(main), std::forward<Args>(args)...);
}

}  // namespace asyncfiber

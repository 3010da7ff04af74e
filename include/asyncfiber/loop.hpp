// asyncfiber/loop.hpp - the event loop of a thread, and af::run (asyncio.run).
#pragma once

#include <asyncfiber/task.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace boost {
namespace asio {
class io_context;
}
}  // namespace boost

namespace asyncfiber {

namespace detail {
struct LoopImpl;
struct CallbackItem;
}  // namespace detail

struct WatchdogReport;  // asyncfiber/debug.hpp

/// A callback scheduled with call_soon / call_later / call_at. Cheap to copy.
class Handle {
public:
    Handle() noexcept = default;
    Handle(const Handle& o) noexcept;
    Handle(Handle&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    Handle& operator=(Handle o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~Handle();

    /// The callback will not run (no-op if it already ran).
    void cancel();
    bool cancelled() const noexcept;
    /// For call_later/call_at: when it is (or was) due.
    Clock::time_point when() const noexcept;

    explicit Handle(detail::CallbackItem* adopted) noexcept : p_(adopted) {}

private:
    detail::CallbackItem* p_ = nullptr;
};

/// What the loop reports to its exception handler (asyncio's context dict).
struct ExceptionContext {
    std::string message;
    std::exception_ptr exception;  ///< may be null
    std::string task_name;         ///< may be empty
};

/// The event loop of one thread. Most code uses af::run(); a Loop is for code that needs to
/// drive a loop explicitly (run_until_complete, run_forever).
class Loop {
public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    /// The loop running on this thread. Throws RuntimeError if none runs.
    static Loop& current();

    /// Runs `main(args...)` as a task and the loop until it is done; returns its value or
    /// rethrows its exception. Other tasks stay as they are (see close()).
    template <class F, class... Args>
    detail::async_result_t<F, Args...> run_until_complete(F&& main, Args&&... args);
    /// Runs until stop() is called.
    void run_forever();
    /// Makes run_forever() return after the current iteration.
    void stop();
    /// Cancels every task still alive and runs them to completion (so their destructors
    /// run), shuts the thread pool down and releases the loop's resources. Idempotent.
    void close();
    bool is_running() const noexcept;
    bool is_closed() const noexcept;
    /// The loop's clock.
    Clock::time_point time() const { return Clock::now(); }

    Handle call_soon(std::function<void()> fn);
    Handle call_at(Clock::time_point when, std::function<void()> fn);
    template <class Rep, class Period>
    Handle call_later(std::chrono::duration<Rep, Period> delay, std::function<void()> fn) {
        return call_at(Clock::now() + detail::ceil_to_clock(delay), std::move(fn));
    }
    /// The only member that may be called from any thread: runs fn on the loop soon, waking
    /// the loop if it sleeps.
    void call_soon_threadsafe(std::function<void()> fn);

    void set_debug(bool on);
    bool get_debug() const noexcept;
    /// Debug mode: a task step that runs longer than this without suspending is reported.
    void set_slow_callback_duration(Clock::duration d);
    /// The watchdog: a thread that reports a task step (or a callback) still running after
    /// `d` *while it runs* (a held std::mutex, a blocking call, a busy loop), with the task's
    /// name and a stack trace of the loop's thread, and again when that step ends.
    /// Clock::duration::zero() turns it off. Off by default; in debug mode it is on at the
    /// slow-callback duration unless set here; ASYNCFIBER_WATCHDOG_MS sets it for new loops.
    /// Throws std::invalid_argument for a negative duration. See docs/debugging.md.
    void set_watchdog(Clock::duration d);
    /// Where the watchdog's reports go (stderr by default; an empty function restores that).
    /// Called on the watchdog's own thread, since the loop's thread is the one blocked.
    void set_watchdog_handler(std::function<void(const WatchdogReport&)> fn);
    /// Replaces the default handler (which prints to stderr); an empty function restores it.
    void set_exception_handler(std::function<void(const ExceptionContext&)> fn);
    /// Reports to the exception handler.
    void call_exception_handler(const ExceptionContext& ctx);

    /// The Boost.Asio io_context the loop drives: its handlers run on the loop's thread.
    boost::asio::io_context& io_context();

    /// Runs fn on the loop (outside any task) each time signal `sig` arrives, replacing a
    /// handler this loop had for it. For SIGINT it replaces run()'s "cancel main". Throws
    /// std::invalid_argument for a signal that cannot be caught, RuntimeError once closed.
    void add_signal_handler(int sig, std::function<void()> fn);
    /// Removes the handler and restores the signal's default action; false if there was none.
    bool remove_signal_handler(int sig);

    detail::LoopImpl* impl() const noexcept { return impl_; }

private:
    detail::LoopImpl* impl_;
};

namespace detail {
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
    LoopImpl* loop_;
    bool sigint_;
};

template <class T>
T take_result(Task<T>& t) {
    return std::move(t.typed()->value());
}
inline void take_result(Task<void>& t) { t.typed()->value(); }
}  // namespace detail

template <class F, class... Args>
detail::async_result_t<F, Args...> Loop::run_until_complete(F&& main, Args&&... args) {
    detail::LoopEntry entry(impl_, false);
    auto task = asyncfiber::async(TaskOptions{"main", 0}, std::forward<F>(main),
                                  std::forward<Args>(args)...);
    entry.run_until_done(task.state());
    return detail::take_result(task);
}

/// asyncio.run: makes a loop on this thread, runs main(args...) as its first task and returns
/// its value (or rethrows). When main ends every task still alive is cancelled and run to
/// completion, the thread pool is shut down and the loop closed. SIGINT while it runs cancels
/// main (if SIGINT has its default disposition). Throws RuntimeError if a loop already runs on
/// this thread.
template <class F, class... Args>
detail::async_result_t<F, Args...> run(F&& main, Args&&... args) {
    Loop loop;
    Task<detail::async_result_t<F, Args...>> task;
    {
        detail::LoopEntry entry(loop.impl(), true);
        task = asyncfiber::async(TaskOptions{"main", 0}, std::forward<F>(main),
                                 std::forward<Args>(args)...);
        entry.run_until_done(task.state());
    }
    loop.close();
    return detail::take_result(task);
}

}  // namespace asyncfiber

// asyncfiber/loop.hpp - the event loop of a thread, and af::run (asyncio.run).
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/callback.hpp>
#include <asyncfiber/task.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>
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
    // Every constructor and the destructor are out of line: each may destroy the reference,
    // and the callback's type is the library's.
    Handle() noexcept;
    Handle(const Handle& o) noexcept;
    Handle(Handle&& o) noexcept;
    Handle& operator=(Handle o) noexcept {
        p_.swap(o.p_);
        return *this;
    }
    ~Handle();

    /// The callback will not run (no-op if it already ran).
    void cancel();
    bool cancelled() const noexcept;
    /// For call_later/call_at: when it is (or was) due.
    Clock::time_point when() const noexcept;

    explicit Handle(detail::CallbackItem* adopted) noexcept;

private:
    detail::IntrusivePtr<detail::CallbackItem> p_;
};

/// What the loop reports to its exception handler (asyncio's context dict).
struct ExceptionContext {
    std::string message;
    std::exception_ptr exception;  ///< may be null
    std::string task_name;         ///< may be empty
};

/// The event loop of one thread. Most code uses af::run(); a Loop is for code that needs to
/// drive a loop explicitly (run_until_complete, run_forever).
///
/// While it runs, a loop, its tasks and their handles belong to the thread running it: from
/// any other thread, only call_soon_threadsafe (and af::run_coroutine_threadsafe, built on
/// it) may be used; the rest throws RuntimeError saying so. A started task runs on a stack of
/// the thread that ran it and never moves: when that thread exits, the tasks of the loops it
/// ran that are not closed are cancelled and finished there.
class Loop {
public:
    /// A loop with an io_context of its own, run by run_until_complete / run_forever / af::run.
    Loop();
    /// A loop over an io_context that the application owns and runs (`io.run()`, `run_one()`,
    /// `poll()`, on one thread): the loop's tasks, timers and callbacks run as handlers of
    /// `io`, in asyncio's order, and start with spawn(). The loop holds work on `io` only
    /// while a task, timer or callback is pending, so `io.run()` returns as it would without
    /// it. The loop belongs to the thread that first runs its handlers; a second thread
    /// running `io` meanwhile is refused (RuntimeError out of its run()). `io` must outlive
    /// the loop. See docs/embedding.md.
    explicit Loop(boost::asio::io_context& io);
    /// Closes the loop (close()). When that cannot be done here (its tasks are suspended on
    /// the stacks of another thread that still runs), says so on stderr and leaves it to that
    /// thread's exit.
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    /// The loop running on this thread. Throws RuntimeError if none runs.
    static Loop& current();

    /// Runs `main(args...)` as a task and the loop until it is done; returns its value or
    /// rethrows its exception. Other tasks stay as they are (see close()).
    template <class F, class... Args>
    detail::async_result_t<F, Args...> run_until_complete(F&& main, Args&&... args);
    /// Starts fn(args...) as a task of this loop from outside any task: from a plain handler
    /// of an embedded loop's io_context on its thread, or before the loop runs. The task is
    /// queued (FIFO with call_soon), never run inline. From a task or callback of this loop it
    /// is af::async; from another loop's task, or another thread while this loop runs, it
    /// throws RuntimeError (use call_soon_threadsafe / af::run_coroutine_threadsafe).
    template <class F, class... Args,
              class = typename std::enable_if<!detail::is_task_options<F>::value>::type>
    Task<detail::async_result_t<F, Args...>> spawn(F&& fn, Args&&... args);
    template <class F, class... Args>
    Task<detail::async_result_t<F, Args...>> spawn(TaskOptions options, F&& fn, Args&&... args);

    /// Runs until stop() is called.
    void run_forever();
    /// Makes run_forever() return after the current iteration. On the loop's thread (from
    /// another: call_soon_threadsafe([&] { loop.stop(); })).
    void stop();
    /// Cancels every task still alive and runs them to completion (so their destructors
    /// run), shuts the thread pool down and releases the loop's resources. Idempotent. Throws
    /// RuntimeError while the loop runs, and on a thread other than the one that ran it while
    /// tasks are suspended on that thread's stacks and it still runs (close it there).
    void close();
    bool is_running() const noexcept;
    bool is_closed() const noexcept;
    /// The loop's clock.
    Clock::time_point time() const { return Clock::now(); }

    // The callbacks below take any callable with the right arguments, a move-only one
    // included (detail/callback.hpp); an empty one (nullptr, an empty std::function) throws
    // std::invalid_argument, except for the handlers, where it restores the default.

    /// On the loop's thread (RuntimeError from another thread while the loop runs).
    Handle call_soon(detail::Callback<void()> fn);
    /// `when` == Clock::time_point::max(): never (the callback stays until cancelled).
    Handle call_at(Clock::time_point when, detail::Callback<void()> fn);
    /// A delay beyond the clock's range (hours::max(), infinity) means never; NaN throws
    /// std::invalid_argument.
    template <class Rep, class Period>
    Handle call_later(std::chrono::duration<Rep, Period> delay, detail::Callback<void()> fn) {
        return call_at(detail::deadline_after(delay), std::move(fn));
    }
    /// The only member that may be called from any thread: runs fn on the loop soon, waking
    /// the loop if it sleeps. Throws RuntimeError("Event loop is closed") once the loop is
    /// closed; what was posted before runs when it closes.
    void call_soon_threadsafe(detail::Callback<void()> fn);

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
    void set_watchdog_handler(detail::Callback<void(const WatchdogReport&)> fn);
    /// Replaces the default handler (which prints to stderr); an empty function restores it.
    void set_exception_handler(detail::Callback<void(const ExceptionContext&)> fn);
    /// Reports to the exception handler.
    void call_exception_handler(const ExceptionContext& ctx);

    /// The Boost.Asio io_context the loop drives (the application's, for an embedded loop):
    /// its handlers run on the loop's thread.
    boost::asio::io_context& io_context();

    /// Runs fn on the loop (outside any task) each time signal `sig` arrives, replacing a
    /// handler this loop had for it. For SIGINT it replaces run()'s "cancel main". Throws
    /// std::invalid_argument for a signal that cannot be caught, RuntimeError once closed.
    void add_signal_handler(int sig, detail::Callback<void()> fn);
    /// Removes the handler and restores the signal's default action; false if there was none.
    bool remove_signal_handler(int sig);

private:
    friend struct detail::Access;
    detail::LoopImpl* impl() const noexcept { return impl_; }
    detail::LoopImpl* impl_;
};

/// How af::run ends a program that SIGINT interrupted.
struct RunOptions {
    /// SIGINT (Ctrl-C) while run() runs cancels the main task. If main ends cancelled by it,
    /// run() first cleans up as always (cancels and finishes the other tasks, shuts the pool
    /// down, closes the loop), then:
    /// - false (the default): ends the process as an interrupted program ends, by SIGINT's
    ///   default action (stdout and stderr flushed first): the parent sees it killed by
    ///   SIGINT, a shell reports status 130. CPython ends an uncaught KeyboardInterrupt so.
    ///   Destructors of objects outside run() and atexit handlers do not run.
    /// - true: throws af::KeyboardInterrupt, for a program that has more to do.
    bool throw_on_interrupt = false;
};

namespace detail {
template <class F>
struct is_run_options : std::is_same<typename std::decay<F>::type, RunOptions> {};
}  // namespace detail

/// asyncio.run: makes a loop on this thread, runs main(args...) as its first task and returns
/// its value (or rethrows). When main ends every task still alive is cancelled and run to
/// completion, the thread pool is shut down and the loop closed. SIGINT while it runs cancels
/// main (if SIGINT has its default disposition); a program so interrupted ends as an
/// interrupted program does, killed by SIGINT, once run() has cleaned up, unless `options`
/// ask for af::KeyboardInterrupt instead (see RunOptions). Throws RuntimeError if a loop
/// already runs on this thread.
template <class F, class... Args>
detail::async_result_t<F, Args...> run(RunOptions options, F&& main, Args&&... args);

/// The same with the default options.
template <class F, class... Args,
          class = typename std::enable_if<!detail::is_run_options<F>::value>::type>
detail::async_result_t<F, Args...> run(F&& main, Args&&... args);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/loop_inl.hpp>

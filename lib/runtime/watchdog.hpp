// Internal: the loop's watchdog, a thread that watches the loop's steps from outside.
//
// The loop publishes where it is with StepMark: a counter it bumps (a relaxed atomic store,
// no clock read) when a task step or a callback begins and when it ends. The watchdog thread
// samples it every eighth of its threshold; a step whose count has not moved for the
// threshold is still running — a held std::mutex, a blocking system call, a busy loop. The
// watchdog then signals the loop's thread (SIGURG, see watchdog.cpp), whose handler copies
// the task's name and a backtrace() of the thread, and reports them from its own thread,
// symbolized with Boost.Stacktrace, to Loop::set_watchdog_handler (stderr by default); a
// second report says when the step ended. The same thread serves SIGQUIT in debug mode: it
// asks the loop for the task dump at its next safe point, or, if the loop is stuck in a step,
// has the signal handler print it on the loop's thread right away.
//
// A loop has a watchdog thread while its watchdog is on or it is in debug mode; Loop::close()
// (and turning both off) joins it.
#pragma once

#include <asyncfiber/loop.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace asyncfiber {
namespace detail {

struct LoopImpl;
class Watchdog;

/// Where the loop is, for a thread watching it: odd while a step (a task's run until its
/// next suspension, or a callback) runs, even between steps; each step has its own values.
class StepMark {
public:
    void begin() noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    void end() noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }
    static bool in_step(std::uint64_t v) noexcept { return v & 1; }

private:
    std::atomic<std::uint64_t> v_{0};
};

struct WatchdogDeleter {
    void operator()(Watchdog* w) const noexcept;  // stops and joins the thread
};

/// Loop::set_watchdog_handler's function, shared by the loop, its watchdog thread and the
/// reports on their way (null: stderr).
using WatchdogHandler = std::shared_ptr<const Callback<void(const WatchdogReport&)>>;

/// The watchdog settings of one loop and its thread (created while it is needed).
struct WatchdogState {
    /// Loop::set_watchdog's duration (zero: off) once it was called (or the environment set
    /// it); until then the watchdog follows debug mode, on at the slow-callback duration.
    bool set = false;
    Clock::duration setting{};
    WatchdogHandler handler;  // null: stderr
    std::unique_ptr<Watchdog, WatchdogDeleter> thread;
};

/// The threshold the loop's settings give now (zero: no step reports).
Clock::duration watchdog_threshold(const LoopImpl* L) noexcept;
/// Starts, retunes or stops the loop's watchdog thread after a change of its settings or of
/// debug mode. Throws std::system_error if the thread cannot be started.
void watchdog_update(LoopImpl* L);
/// Stops and joins the thread (Loop::close).
void watchdog_stop(LoopImpl* L) noexcept;
/// On the loop's thread, when the loop is entered / left: the watchdog signals the thread
/// only in between (a thread that left the loop may end).
void watchdog_loop_entered(LoopImpl* L) noexcept;
void watchdog_loop_left(LoopImpl* L) noexcept;
/// Loop::set_watchdog_handler.
void watchdog_set_handler(LoopImpl* L, Callback<void(const WatchdogReport&)> fn);
/// Reads ASYNCFIBER_WATCHDOG_MS into the settings (a new loop).
void watchdog_read_environment(LoopImpl* L);
/// How many watchdog threads of this process have started and not yet returned from their
/// function. A joined thread is gone from this count when its join returns, whereas the kernel
/// may list it in /proc/self/task a moment longer; tests read this to tell the two apart.
int watchdog_threads_running() noexcept;

}  // namespace detail
}  // namespace asyncfiber

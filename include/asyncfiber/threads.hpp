// asyncfiber/threads.hpp - blocking work on the loop's thread pool, and tasks started from
// other threads (asyncio's threads.py and run_coroutine_threadsafe).
//
// - af::to_thread(fn, args...): runs a blocking function on the loop's thread pool.
// - af::set_default_executor_size / af::set_executor_size: the pool's bounds.
// - af::run_coroutine_threadsafe(loop, fn, args...): starts a task from a foreign thread
//   (its af::ConcurrentFuture, in concurrent_future.hpp, can cancel it).
//
// The awaiting task and the pool thread share one reference-counted heap block and nothing
// else; a cancelled task still waits for a function that already runs, which may reach into
// the task's frame (unless af::abandon_on_cancel says it owns everything it touches).
#pragma once

#include <asyncfiber/concurrent_future.hpp>
#include <asyncfiber/detail/bridge_core.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/task.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <type_traits>
#include <utility>

namespace asyncfiber {

// ======================================================================================
// to_thread and the loop's thread pool
// ======================================================================================

/// The number of threads of a loop's pool when it is created (lazily, by the first
/// to_thread): min(32, hardware threads + 4) unless changed. Affects pools created later.
std::size_t default_executor_size() noexcept;
void set_default_executor_size(std::size_t threads);
/// Bounds this loop's pool. Threads are started on demand up to the bound; lowering it lets
/// surplus threads end once idle. Call before the loop runs or on its thread. Throws
/// std::invalid_argument for 0 (also set_default_executor_size), RuntimeError once closed.
void set_executor_size(Loop& loop, std::size_t threads);

/// The tag of `af::to_thread(af::abandon_on_cancel, fn, args...)`.
struct AbandonOnCancel {};
/// Makes to_thread leave fn behind when its task is cancelled (see to_thread).
constexpr AbandonOnCancel abandon_on_cancel{};

/// Runs fn(args...) on the loop's thread pool and suspends the calling task until it
/// returns; returns its value or rethrows its exception (same type). fn and args are
/// decay-copied and destroyed on the pool thread.
///
/// Cancelling the task (or a timeout) while fn runs keeps the task waiting until fn has
/// returned, then throws CancelledError (fn's result is dropped): fn may capture the task's
/// locals by reference, and they are still there whenever it touches them (Trio's default,
/// for that reason). A call cancelled while its job still waits for a free thread ends at
/// once, and the job never runs (its fn and args are then destroyed on the loop's thread).
template <class F, class... Args,
          class = typename std::enable_if<
              !std::is_same<typename std::decay<F>::type, AbandonOnCancel>::value>::type>
detail::async_result_t<F, Args...> to_thread(F&& fn, Args&&... args);

/// `af::to_thread(af::abandon_on_cancel, fn, args...)`: as above, but cancelling the task
/// wakes it with CancelledError at once while fn runs on; its result is dropped when it
/// comes. Only for an fn that owns everything it touches (captures by value, arguments by
/// value): nothing of the task's frame may be reached from it once the task has moved on.
template <class F, class... Args>
detail::async_result_t<F, Args...> to_thread(AbandonOnCancel, F&& fn, Args&&... args);

// ======================================================================================
// run_coroutine_threadsafe
// ======================================================================================

/// From any thread: runs fn(args...) as a task of `loop` (which must be running or run
/// later) and returns an af::ConcurrentFuture of its result (a std::future<R> with done(),
/// cancelled() and cancel(); it converts to std::future<R>). The future holds the task's
/// exception, CancelledError if the task was cancelled (ConcurrentFuture::cancel() included),
/// RuntimeError("Event loop is closed") at once if the loop is closed (or closes before it
/// could start the task).
template <class F, class... Args>
ConcurrentFuture<detail::async_result_t<F, Args...>> run_coroutine_threadsafe(Loop& loop, F&& fn,
                                                                              Args&&... args);

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/threads_inl.hpp>

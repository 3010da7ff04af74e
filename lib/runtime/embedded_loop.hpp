// Internal: a loop over the application's io_context (Loop(io_context&)). Such a loop never
// blocks: the io_context runs it as one of its handlers (the "drive"), posted while something
// is ready and woken by a steady_timer at the next deadline (embedded_loop.cpp).
#pragma once

#include "loop_impl.hpp"

#include <functional>

namespace asyncfiber {
namespace detail {

/// At construction of an embedded loop: links it to `io` (which must outlive it).
void embed_loop(LoopImpl* L, boost::asio::io_context& io);
/// When the loop releases its resources: its handlers still queued in the io_context find no
/// loop when they run (or are destroyed with the io_context), and it holds no work any more.
void detach_embedding(LoopImpl* L) noexcept;

/// After a change to an embedded loop's timers made outside its handlers (call_at from a
/// plain handler, Handle::cancel): the io_context's timer follows the next deadline.
void embedded_timers_changed(LoopImpl* L) noexcept;

/// Posts fn to run inside the embedded loop (current on the thread, as a callback) on its
/// thread; dropped unrun if the loop's resources are gone by then. Any thread.
void post_inside_embedded(LoopImpl* L, Callback<void()> fn);

/// The embedded loop whose io_context runs a handler on this thread now (current_loop() in a
/// plain handler), or nullptr. Cheap when the program has no embedded loop.
LoopImpl* embedded_loop_running_here() noexcept;

/// In a plain handler of L's io_context on this thread: binds L to this thread (as its first
/// drive does), so that other threads are refused from now on. Throws RuntimeError when
/// another thread has it.
void bind_embedded_if_running_here(LoopImpl* L);

/// L is closed: it holds no work on its io_context any more and its timer stops waiting
/// (what other threads posted before still runs, finding it closed).
void embedded_loop_closed(LoopImpl* L) noexcept;

/// The thread that ran L's handlers exits (its tasks are finished): another may run it.
void unbind_embedded(LoopImpl* L) noexcept;

}  // namespace detail
}  // namespace asyncfiber

// A loop over the application's io_context (Loop(io_context&)).
//
// The application runs the io_context (run, run_one, poll); the loop runs as its handler.
// While a task or callback is ready, one "drive" handler is queued in the io_context: it runs
// loop iterations (due timers, then the steps ready at the iteration's start, as LoopImpl::run
// does) until nothing is ready, a task spent its budget, or as many iterations have passed as
// the owned loop runs between two looks at its io_context; then it re-queues itself behind
// the handlers that became ready meanwhile, if anything is still ready. A steady_timer of the
// io_context wakes the loop at its next deadline. So an idle loop costs nothing, and a loop
// with no pending task, timer or callback holds no work: io.run() returns as it would without
// the loop.
//
// During a drive the loop is current on the thread exactly as under LoopEntry, so everything
// built on the loop works unchanged. Between drives the application's own handlers run; the
// loop stays bound to the thread that first ran it (running_on), which is how another thread
// running the same io_context is noticed and refused: a task runs on a stack of its thread
// and never moves (loop_threads.cpp).
//
// Handlers the loop gave the io_context keep the Embedding, not the loop: once the loop has
// released its resources they find no loop and do nothing, so closing or destroying the loop
// while the io_context still holds them is safe.
#include "embedded_loop.hpp"

#include "debug_impl.hpp"
#include "fiber_switch.hpp"
#include "io_driver.hpp"
#include "overflow_guard.hpp"
#include "stack_pool.hpp"

#include <asyncfiber/detail/thread_annotations.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace asyncfiber {
namespace detail {

struct Embedding {
    Embedding(LoopImpl* l, boost::asio::io_context& c)
        : loop(l), io(c), timer(new boost::asio::steady_timer(c)) {}
    LoopImpl* loop;  // null once the loop has released its resources (loop thread only)
    boost::asio::io_context& io;
    std::unique_ptr<boost::asio::steady_timer> timer;
    Clock::time_point armed_at;
    bool timer_armed = false;
    bool drive_posted = false;
    /// Held while a task is pending (a task waiting on another thread, say, has no handler of
    /// its own in the io_context); a queued drive and the timer's wait hold work themselves.
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
};

namespace {

// As many iterations as the owned loop runs between two looks at its io_context
// (scheduler.cpp, kIoPollEvery): handlers of the application wait no longer here than I/O
// completions wait there.
constexpr int kIterationsPerDrive = 64;

// Every embedded loop not yet released, for current_loop() in a plain handler; the count lets
// a program without embedded loops skip the lock.
Mutex g_embedded_m;
std::vector<LoopImpl*> g_embedded ASYNCFIBER_GUARDED_BY(g_embedded_m);
std::atomic<std::size_t> g_embedded_count{0};

[[noreturn]] void throw_run_by_two_threads() {
    throw RuntimeError(
        "asyncfiber: the io_context of an embedded af::Loop is run by more than one thread: the "
        "loop belongs to the thread that first ran its handlers, and its tasks never move to "
        "another thread. Run the io_context on one thread (one io_context and one loop per "
        "thread; no strand is needed); from another thread, hand work to the loop with "
        "loop.call_soon_threadsafe(fn)");
}

/// The part of LoopEntry that is done once per thread: the loop belongs to this thread from
/// its first handler until that thread exits or the loop is closed.
void bind_to_this_thread(LoopImpl* L) {
    const std::thread::id me = std::this_thread::get_id();
    std::thread::id cur = L->running_on.load(std::memory_order_acquire);
    if (cur == me) return;
    if (cur != std::thread::id() || !L->running_on.compare_exchange_strong(cur, me))
        throw_run_by_two_threads();
    try {
        adopt_loop_on_this_thread(L);  // refuses when its tasks are on another thread's stacks
        install_overflow_guard();
        L->eh_globals = thread_eh_globals();
        L->stacks = &StackPool::for_this_thread();
    } catch (...) {
        L->running_on.store(std::thread::id());
        throw;
    }
}

/// The loop current on this thread for one handler: what LoopEntry does per run, here per
/// drive (binding the thread is done once).
class Inside {
public:
    explicit Inside(LoopImpl* L) : L_(L) {
        if (entered_loop())
            throw RuntimeError(
                "asyncfiber: the io_context of an embedded loop is run inside a "
                "task or callback of another loop on this thread");
        bind_to_this_thread(L);
        L->entered = true;
        L->wake_on_push = false;
        set_current_loop(L);
        L->cached_now_ns = now_ns();
        debug_loop_enter(L);
    }
    ~Inside() {
        debug_loop_leave(L_);
        set_current_loop(nullptr);
        L_->entered = false;
        L_->driving = false;
        L_->wake_on_push = true;
    }
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;

private:
    LoopImpl* L_;
};

void hold_work(Embedding& e, bool on) {
    if (on == static_cast<bool>(e.work)) return;
    if (on)
        e.work.reset(new boost::asio::executor_work_guard<boost::asio::io_context::executor_type>(
            e.io.get_executor()));
    else
        e.work.reset();
}

void drive(const std::shared_ptr<Embedding>& e);

void post_drive(const std::shared_ptr<Embedding>& e, bool from_drive) {
    if (e->drive_posted) return;
    std::shared_ptr<Embedding> keep = e;
    auto fn = [keep] {
        keep->drive_posted = false;
        drive(keep);
    };
    // From the drive itself it is a continuation (defer: no lock, no wake-up on the thread
    // that runs it); otherwise a plain post.
    if (from_drive)
        boost::asio::defer(e->io, std::move(fn));
    else
        boost::asio::post(e->io, std::move(fn));
    e->drive_posted = true;
}

void arm_timer(const std::shared_ptr<Embedding>& e, Clock::time_point when) {
    if (e->timer_armed && e->armed_at == when) return;
    e->armed_at = when;
    e->timer_armed = true;
    e->timer->expires_at(when);  // a wait in flight ends with operation_aborted
    std::shared_ptr<Embedding> keep = e;
    e->timer->async_wait([keep](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;  // re-armed or released
        keep->timer_armed = false;
        drive(keep);
    });
}

/// After a handler of the loop (or a change from outside one): a drive while something is
/// ready, else the timer at the next deadline, and work held while a task is pending.
void rearm(LoopImpl* L, bool in_handler) noexcept {
    const std::shared_ptr<Embedding>& e = L->embedding;
    if (!e || !e->loop || L->closed) return;
    try {
        if (L->ready_head) {
            post_drive(e, in_handler);
        } else {
            Clock::time_point until =
                L->timers.empty() ? Clock::time_point::max() : L->timers.next_deadline();
            // Memory to give back later bounds the wait, as in LoopImpl::run, but only while
            // the loop holds work anyway: an idle loop must let io.run() return.
            if (L->stacks && (L->live_count > 0 || !L->timers.empty()))
                until = std::min(until, L->give_back_memory());
            if (until != Clock::time_point::max()) {
                arm_timer(e, until);
            } else if (e->timer_armed) {
                e->timer_armed = false;
                e->timer->cancel();
            }
        }
        hold_work(*e, L->live_count > 0 || !L->timers.empty());
    } catch (...) {
        L->report(ExceptionContext{"an embedded loop could not queue its handler in the io_context",
                                   std::current_exception(),
                                   {}});
    }
}

void drive(const std::shared_ptr<Embedding>& e) {
    LoopImpl* L = e->loop;
    // Closing (its own run finishes the tasks) or closed: nothing to do here.
    if (!L || L->closed || L->entered) return;
    try {
        Inside inside(L);
        L->driving = true;
        L->end_drive = false;
        for (int n = 0; n < kIterationsPerDrive; ++n) {
            if (!L->timers.empty()) L->fire_due_timers();
            if (!L->ready_head) break;
            L->run_ready_once();
            ++L->iterations;
            if (L->end_drive) break;
        }
    } catch (...) {
        rearm(L, true);  // the thread the loop belongs to carries on
        throw;           // out of this thread's io.run(), as a throwing handler does
    }
    rearm(L, true);
}

/// A function posted from any thread, run inside the loop as its callbacks are.
struct InsidePost {
    std::shared_ptr<Embedding> e;
    Callback<void()> fn;

    void operator()() {
        LoopImpl* L = e->loop;
        if (!L) return;  // released: dropped unrun
        if (L->entered || L->closed) {
            // Within close()'s own run the loop is current already; once closed, fn finds it
            // closed (a run_coroutine_threadsafe future fails at once), as on an owned loop.
            fn();
            return;
        }
        try {
            Inside inside(L);
            try {
                fn();
            } catch (...) {
                L->report(ExceptionContext{
                    "exception in a function posted to the loop", std::current_exception(), {}});
            }
        } catch (...) {
            boost::asio::post(e->io, std::move(*this));  // for the thread the loop belongs to
            throw;
        }
        rearm(L, true);
    }
};

}  // namespace

void embed_loop(LoopImpl* L, boost::asio::io_context& io) {
    L->embedding = std::make_shared<Embedding>(L, io);
    L->wake_on_push = true;
    MutexLock g(g_embedded_m);
    g_embedded.push_back(L);
    g_embedded_count.store(g_embedded.size(), std::memory_order_relaxed);
}

void detach_embedding(LoopImpl* L) noexcept {
    Embedding* e = L->embedding.get();
    if (!e || !e->loop) return;
    {
        MutexLock g(g_embedded_m);
        g_embedded.erase(std::remove(g_embedded.begin(), g_embedded.end(), L), g_embedded.end());
        g_embedded_count.store(g_embedded.size(), std::memory_order_relaxed);
    }
    e->loop = nullptr;
    L->wake_on_push = false;
    e->work.reset();
    e->timer.reset();  // its wait ends with operation_aborted, finding no loop
    e->timer_armed = false;
}

void request_drive(LoopImpl* L) noexcept {
    const std::shared_ptr<Embedding>& e = L->embedding;
    if (!e || !e->loop || L->closed) return;
    const std::thread::id runner = L->running_on.load(std::memory_order_relaxed);
    if (runner != std::thread::id() && runner != std::this_thread::get_id()) {
        // A handler of the library's own (an I/O completion) woke a task on a thread that the
        // loop does not belong to: the io_context is run by two threads. Said loudly; the
        // loop's next handler on that thread refuses it.
        L->report(
            ExceptionContext{"the io_context of an embedded loop is run by more than one "
                             "thread: a task was woken on a thread the loop does not "
                             "belong to (run the io_context on one thread only)",
                             nullptr,
                             {}});
    }
    try {
        post_drive(e, false);
    } catch (...) {
        L->report(ExceptionContext{"an embedded loop could not queue its handler in the io_context",
                                   std::current_exception(),
                                   {}});
    }
}

void embedded_timers_changed(LoopImpl* L) noexcept {
    if (L->wake_on_push) rearm(L, false);  // inside a handler, its end re-arms
}

void post_inside_embedded(LoopImpl* L, Callback<void()> fn) {
    std::shared_ptr<Embedding> e = L->embedding;
    boost::asio::io_context& io = e->io;
    boost::asio::post(io, InsidePost{std::move(e), std::move(fn)});
}

LoopImpl* embedded_loop_running_here() noexcept {
    if (g_embedded_count.load(std::memory_order_relaxed) == 0) return nullptr;
    const std::thread::id me = std::this_thread::get_id();
    MutexLock g(g_embedded_m);
    for (LoopImpl* L : g_embedded) {
        const std::thread::id runner = L->running_on.load(std::memory_order_acquire);
        if ((runner == me || runner == std::thread::id()) &&
            L->embedding->io.get_executor().running_in_this_thread())
            return L;
    }
    return nullptr;
}

void bind_embedded_if_running_here(LoopImpl* L) {
    if (L->embedding && L->embedding->loop &&
        L->embedding->io.get_executor().running_in_this_thread())
        bind_to_this_thread(L);
}

void embedded_loop_closed(LoopImpl* L) noexcept {
    Embedding* e = L->embedding.get();
    if (!e || !e->loop) return;
    e->work.reset();
    if (e->timer_armed) {
        e->timer_armed = false;
        e->timer->cancel();
    }
}

void unbind_embedded(LoopImpl* L) noexcept {
    if (L->embedding) L->running_on.store(std::thread::id());
}

}  // namespace detail
}  // namespace asyncfiber

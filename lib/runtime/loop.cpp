// af::Loop, af::Handle and the scopes in which a loop is current on a thread.
#include "debug_impl.hpp"
#include "embedded_loop.hpp"
#include "fiber_switch.hpp"
#include "io_driver.hpp"
#include "loop_impl.hpp"
#include "overflow_guard.hpp"
#include "stack_pool.hpp"
#include "task_locals.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <pthread.h>
#include <signal.h>
#include <stdexcept>
#include <string>

namespace asyncfiber {
namespace detail {

LoopImpl::LoopImpl(Loop* o, boost::asio::io_context* borrowed)
    : owner(o), io(borrowed ? new IoDriver(this, *borrowed) : new IoDriver(this)) {
    if (borrowed) embed_loop(this, *borrowed);
    // asyncio reads PYTHONASYNCIODEBUG the same way: any value but empty or "0" turns it on.
    const char* env = std::getenv("ASYNCFIBER_DEBUG");
    debug = env && *env && std::strcmp(env, "0") != 0;
    watchdog_read_environment(this);
}

LoopImpl::~LoopImpl() { release_resources(); }

void LoopImpl::release_resources() noexcept {
    // Callbacks still queued were never run; drop the loop's references to them (and what
    // they hold, task handles included: those hold references to this block). With tasks
    // still alive (a loop that could not be finished) the queue and the timers also hold
    // nodes on their stacks: nothing of that is touched.
    if (live_count == 0) {
        while (ReadyItem* it = pop_ready())
            if (it->kind == ReadyItem::Kind::callback) {
                auto* cb = static_cast<CallbackItem*>(it);
                cb->queued = false;
                cb->release();
            }
        while (TimerNode* n = timers.pop_due(Clock::time_point::max())) {
            CallbackItem* cb = static_cast<CallbackItem::Timer*>(n)->item;
            cb->queued = false;
            cb->release();
        }
    }
    exception_handler = nullptr;
    io_objects.reset();
    detach_embedding(this);  // while the io_context's timer service is there
    io.reset();
}

void LoopImpl::finish_close() {
    while (!close_hooks.empty()) {
        auto hook = std::move(close_hooks.back());
        close_hooks.pop_back();
        hook();
    }
    {
        std::lock_guard<std::mutex> g(post_m);
        closed = true;
    }
    // What other threads posted before the loop closed runs now, on the closed loop, so that
    // it fails at once (a run_coroutine_threadsafe future: "Event loop is closed") rather
    // than waiting for the loop's destruction. (An embedded loop's run as the application's
    // io_context's handlers, in the io_context's order.)
    if (!embedding) io->poll();
    embedded_loop_closed(this);  // io.run() may return now
    release_loop_from_its_thread(this);
    unbind_embedded(this);
}

void LoopImpl::post_threadsafe(Callback<void()> fn) {
    std::lock_guard<std::mutex> g(post_m);
    if (closed) throw RuntimeError("asyncfiber: Event loop is closed");
    io->post(std::move(fn));
}

namespace {
/// A callback item with two references: the returned Handle's and the loop's (released when
/// it has run or is cancelled).
CallbackItem* new_callback(LoopImpl* loop, Callback<void()> fn) {
    auto* cb = new CallbackItem;
    cb->loop = loop;
    cb->fn = std::move(fn);
    cb->queued = true;
    cb->add_ref();
    return cb;
}
}  // namespace

Handle LoopImpl::call_soon(Callback<void()> fn) {
    CallbackItem* cb = new_callback(this, std::move(fn));
    push_ready(cb);
    return Handle(cb);
}

Handle LoopImpl::call_at(Clock::time_point when, Callback<void()> fn) {
    CallbackItem* cb = new_callback(this, std::move(fn));
    cb->timer.fire = [](TimerNode* n) {
        CallbackItem* c = static_cast<CallbackItem::Timer*>(n)->item;
        c->loop->push_ready(c);  // due: runs in this iteration's order, after earlier timers
    };
    timers.push(&cb->timer, when);
    return Handle(cb);
}

void LoopImpl::run_callback(CallbackItem* cb) noexcept {
    cb->queued = false;
    if (!cb->cancelled) {
        try {
            Callback<void()> fn = std::move(cb->fn);  // leaves cb->fn empty
            CallbackContextScope own_context;         // what fn sets stays with it
            fn();
        } catch (const CancelledError&) {
            report(ExceptionContext{
                "CancelledError escaped a loop callback", std::current_exception(), {}});
        } catch (...) {
            report(ExceptionContext{"exception in a loop callback", std::current_exception(), {}});
        }
    }
    cb->release();
}

void LoopImpl::report(const ExceptionContext& ctx) noexcept {
    if (exception_handler) {
        try {
            exception_handler(ctx);
            return;
        } catch (...) {
            std::fputs("asyncfiber: the exception handler threw; falling back to stderr\n", stderr);
        }
    }
    default_report(ctx);
}

void default_report(const ExceptionContext& ctx) noexcept {
    std::string line = "asyncfiber: " + ctx.message;
    if (!ctx.task_name.empty()) line += " (task '" + ctx.task_name + "')";
    if (ctx.exception) line += ": " + describe_exception(ctx.exception);
    line += "\n";
    std::fputs(line.c_str(), stderr);
}

LoopEntry::LoopEntry(LoopImpl* loop, bool handle_sigint) : loop_(loop), sigint_(false) {
    if (entered_loop())
        throw RuntimeError(
            "asyncfiber: a loop is already running on this thread "
            "(run() and run_until_complete() cannot be nested)");
    if (loop->closed) throw RuntimeError("asyncfiber: the loop is closed");
    // An embedded loop stays bound to its thread between its handlers (embedded_loop.cpp).
    const std::thread::id runner = loop->running_on.load();
    if (loop->entered || (runner != std::thread::id() && runner != std::this_thread::get_id()))
        throw RuntimeError("asyncfiber: the loop is already running");
    // What may fail comes first; what it sets up is undone if a later step fails, so that a
    // failed start-up (no descriptor left for the SIGINT watch, say) leaves this thread and
    // the loop as they were.
    adopt_loop_on_this_thread(loop);
    install_overflow_guard();
    loop->eh_globals = thread_eh_globals();
    loop->stacks = &StackPool::for_this_thread();
    loop->entered = true;
    loop->running_on.store(std::this_thread::get_id());
    set_current_loop(loop);
    loop->cached_now_ns = now_ns();
    try {
        debug_loop_enter(loop);
        if (handle_sigint) {
            sigint_ = true;
            loop->io->watch_sigint([loop] {
                if (!loop->main_task) return;
                loop->interrupted = true;
                cancel_task(loop->main_task, "interrupted by SIGINT");
            });
        }
    } catch (...) {
        leave();
        throw;
    }
}

LoopEntry::~LoopEntry() { leave(); }

void LoopEntry::leave() noexcept {
    debug_loop_leave(loop_);
    if (sigint_) loop_->io->unwatch_sigint();
    loop_->main_task = nullptr;
    loop_->entered = false;
    if (!loop_->embedding) loop_->running_on.store(std::thread::id());
    set_current_loop(nullptr);
}

void LoopEntry::run_until_done(TaskBase* main) {
    refuse_if_embedded(loop_, "Loop::run_until_complete");
    loop_->main_task = main;
    loop_->run([main] { return main->is_done(); });
    if (!main->is_done()) {
        // stop() was called before main finished (asyncio: "Event loop stopped before Future
        // completed").
        throw RuntimeError("asyncfiber: the loop stopped before the main task completed");
    }
}

void end_if_interrupted(Loop& loop, TaskBase* main, const RunOptions& options) {
    if (!detail::Access::impl(loop)->interrupted || main->outcome != TaskOutcome::cancelled) return;
    // Another cancellation besides SIGINT's: main's CancelledError is not an interruption.
    if (uncancel_task(main) != 0) return;
    main->retrieved = true;
    if (options.throw_on_interrupt) throw KeyboardInterrupt();
    // End as an interrupted program ends: by SIGINT's default action, so that the parent
    // (a shell: status 130) sees the interruption. What the program printed goes out first.
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, nullptr);
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    ::pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);
    ::raise(SIGINT);
    std::_Exit(128 + SIGINT);  // not reached
}

void refuse_if_embedded(LoopImpl* L, const char* what) {
    if (L->embedding)
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " on a loop over the application's io_context: it runs while the "
                           "application runs that io_context (io.run()); start tasks with "
                           "loop.spawn(fn)");
}

SpawnScope::SpawnScope(LoopImpl* L) {
    LoopImpl* cur = entered_loop();
    if (cur == L) return;  // in a task or callback of this loop: af::async
    if (cur)
        throw RuntimeError(
            "asyncfiber: Loop::spawn from a task or callback of another loop: a "
            "loop's tasks start on its own thread; use "
            "af::run_coroutine_threadsafe(loop, fn) or "
            "loop.call_soon_threadsafe(fn)");
    check_loop_thread(L, "Loop::spawn", LoopUse::act);
    if (L->closed) throw RuntimeError("asyncfiber: Loop::spawn on a closed loop");
    // A plain handler of an embedded loop's io_context: the loop is this thread's from now on.
    bind_embedded_if_running_here(L);
    set_current_loop(L);
    entered_ = L;
}

SpawnScope::~SpawnScope() {
    if (entered_) set_current_loop(nullptr);
}

}  // namespace detail

// ---- Handle ----

Handle::Handle(detail::CallbackItem* adopted) noexcept
    : p_(detail::IntrusivePtr<detail::CallbackItem>::adopt(adopted)) {}

Handle::Handle() noexcept = default;

Handle::Handle(const Handle& o) noexcept = default;

Handle::Handle(Handle&& o) noexcept = default;

Handle::~Handle() = default;

void Handle::cancel() {
    if (!p_ || p_->cancelled) return;
    p_->cancelled = true;
    p_->fn = nullptr;  // release what the callback holds now
    if (p_->queued && p_->timer.scheduled()) {
        detail::LoopImpl* L = p_->loop;
        L->timers.remove(&p_->timer);
        p_->queued = false;
        p_->release();
        detail::embedded_timers_changed(L);  // no-op unless embedded, outside its handlers
    }
}

bool Handle::cancelled() const noexcept { return p_ && p_->cancelled; }

Clock::time_point Handle::when() const noexcept {
    return p_ ? p_->timer.when : Clock::time_point{};
}

// ---- Loop ----

Loop::Loop() : impl_(new detail::LoopImpl(this, nullptr)) {}

Loop::Loop(boost::asio::io_context& io) : impl_(new detail::LoopImpl(this, &io)) {}

Loop::~Loop() {
    detail::LoopImpl* L = impl_;
    std::string why = "it is running";
    try {
        if (!L->entered) close();
    } catch (const std::exception& e) {
        why = e.what();
    } catch (...) {
        why = "an unknown exception";
    }
    if (!L->closed) {
        // Its tasks cannot be finished here (they are suspended on the stacks of a thread that
        // still runs, or the loop runs): the block stays, and the thread whose stacks they use
        // finishes them when it exits, then closes and releases it.
        L->owner = nullptr;
        std::string line =
            "asyncfiber: a Loop was destroyed before it could be closed (" + why + "); its " +
            std::to_string(L->live_count) +
            " task(s) are cancelled and finished when the thread they run on exits\n";
        std::fputs(line.c_str(), stderr);
    } else {
        L->owner = nullptr;
        L->release_resources();
    }
    L->release();
}

Loop& Loop::current() {
    detail::LoopImpl* L =
        detail::loop_checked("af::Loop::current");  // a plain handler too (embedded loop)
    if (!L->owner)
        throw RuntimeError(
            "asyncfiber: the running loop's Loop object was destroyed (its tasks "
            "are being finished at the exit of their thread)");
    return *L->owner;
}

void Loop::run_forever() {
    detail::refuse_if_embedded(impl_, "Loop::run_forever");
    detail::LoopEntry entry(impl_, false);
    impl_->run([] { return false; });
}

void Loop::stop() {
    // From another thread the flag could go unseen by a loop blocked in its io_context.
    detail::check_loop_thread(impl_, "Loop::stop", detail::LoopUse::act);
    if (impl_->embedding)
        throw RuntimeError(
            "asyncfiber: Loop::stop on a loop over the application's io_context: "
            "it runs as long as the application runs the io_context (io.stop() "
            "stops that)");
    impl_->stop_requested = true;
}

void Loop::close() {
    if (impl_->closed) return;
    const std::thread::id runner = impl_->running_on.load();
    if (impl_->entered) throw RuntimeError("asyncfiber: cannot close a running loop");
    // An embedded loop is bound to the thread that runs its io_context (between its handlers).
    if (runner != std::thread::id() && runner != std::this_thread::get_id()) {
        if (impl_->embedding) detail::check_loop_thread(impl_, "Loop::close", detail::LoopUse::act);
        throw RuntimeError("asyncfiber: cannot close a running loop");
    }
    if (impl_->live_count > 0) {
        if (detail::loop_tasks_belong_to_another_thread(impl_))
            throw RuntimeError(
                "asyncfiber: Loop::close on a thread other than the one that ran the loop, "
                "while " +
                std::to_string(impl_->live_count) +
                " of its tasks are suspended on that thread's stacks (a task never moves to "
                "another thread): close the loop on that thread; when that thread exits, it "
                "finishes them itself");
        detail::report_never_awaited(impl_);
        detail::LoopEntry entry(impl_, false);
        impl_->cancel_all_and_finish();
    }
    detail::watchdog_stop(impl_);
    impl_->finish_close();
}

bool Loop::is_running() const noexcept { return impl_->entered; }
bool Loop::is_closed() const noexcept { return impl_->closed; }

Handle Loop::call_soon(detail::Callback<void()> fn) {
    detail::check_loop_thread(impl_, "Loop::call_soon", detail::LoopUse::act);
    if (impl_->closed) throw RuntimeError("asyncfiber: call_soon on a closed loop");
    if (!fn) throw std::invalid_argument("asyncfiber: call_soon needs a function");
    fn = detail::with_current_context(std::move(fn));  // asyncio: a copy of the caller's context
    return impl_->call_soon(std::move(fn));
}

Handle Loop::call_at(Clock::time_point when, detail::Callback<void()> fn) {
    detail::check_loop_thread(impl_, "Loop::call_at", detail::LoopUse::act);
    if (impl_->closed) throw RuntimeError("asyncfiber: call_at on a closed loop");
    if (!fn) throw std::invalid_argument("asyncfiber: call_at needs a function");
    fn = detail::with_current_context(std::move(fn));  // asyncio: a copy of the caller's context
    Handle h = impl_->call_at(when, std::move(fn));
    detail::embedded_timers_changed(impl_);  // no-op unless embedded, outside its handlers
    return h;
}

void Loop::call_soon_threadsafe(detail::Callback<void()> fn) {
    if (!fn) throw std::invalid_argument("asyncfiber: call_soon_threadsafe needs a function");
    fn = detail::with_current_context(std::move(fn));  // the calling thread's (or task's)
    detail::LoopImpl* L = impl_;
    L->post_threadsafe([L, fn = std::move(fn)] {
        struct Step {  // a step for the watchdog, as call_soon's callbacks are
            detail::StepMark& m;
            ~Step() { m.end(); }
        } step{L->step};
        L->step.begin();
        try {
            detail::CallbackContextScope own_context;  // what fn sets stays with it
            fn();
        } catch (...) {
            L->report(ExceptionContext{
                "exception in a call_soon_threadsafe callback", std::current_exception(), {}});
        }
    });
}

void Loop::set_debug(bool on) {
    impl_->debug = on;
    detail::watchdog_update(impl_);  // debug mode's watchdog and SIGQUIT dump
}
bool Loop::get_debug() const noexcept { return impl_->debug; }
void Loop::set_slow_callback_duration(Clock::duration d) {
    impl_->slow_step = d;
    detail::watchdog_update(impl_);  // debug mode's watchdog follows it
}

void Loop::set_watchdog(Clock::duration d) {
    if (d < Clock::duration::zero())
        throw std::invalid_argument(
            "asyncfiber: set_watchdog needs a duration of zero (off) or more");
    impl_->watch.setting = d;
    impl_->watch.set = true;
    detail::watchdog_update(impl_);
}

void Loop::set_watchdog_handler(detail::Callback<void(const WatchdogReport&)> fn) {
    detail::watchdog_set_handler(impl_, std::move(fn));
}

void Loop::set_exception_handler(detail::Callback<void(const ExceptionContext&)> fn) {
    impl_->exception_handler = std::move(fn);
}

void Loop::call_exception_handler(const ExceptionContext& ctx) { impl_->report(ctx); }

boost::asio::io_context& Loop::io_context() { return impl_->io->context(); }

}  // namespace asyncfiber

// af::Loop, af::Handle and the scopes in which a loop is current on a thread.
#include "debug_impl.hpp"
#include "fiber_switch.hpp"
#include "io_driver.hpp"
#include "loop_impl.hpp"
#include "overflow_guard.hpp"
#include "stack_pool.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace asyncfiber {
namespace detail {

LoopImpl::LoopImpl(Loop* o) : owner(o), io(new IoDriver(this)) {
    // asyncio reads PYTHONASYNCIODEBUG the same way: any value but empty or "0" turns it on.
    const char* env = std::getenv("ASYNCFIBER_DEBUG");
    debug = env && *env && std::strcmp(env, "0") != 0;
}

LoopImpl::~LoopImpl() {
    // Callbacks still queued were never run; drop the loop's references to them.
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

namespace {
/// A callback item with two references: the returned Handle's and the loop's (released when
/// it has run or is cancelled).
CallbackItem* new_callback(LoopImpl* loop, std::function<void()> fn) {
    auto* cb = new CallbackItem;
    cb->loop = loop;
    cb->fn = std::move(fn);
    cb->queued = true;
    cb->add_ref();
    return cb;
}
}  // namespace

Handle LoopImpl::call_soon(std::function<void()> fn) {
    CallbackItem* cb = new_callback(this, std::move(fn));
    push_ready(cb);
    return Handle(cb);
}

Handle LoopImpl::call_at(Clock::time_point when, std::function<void()> fn) {
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
            std::function<void()> fn = std::move(cb->fn);
            cb->fn = nullptr;
            fn();
        } catch (const CancelledError&) {
            report(ExceptionContext{"CancelledError escaped a loop callback", std::current_exception(), {}});
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
    if (ctx.exception) {
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::exception& e) {
            line += ": " + std::string(e.what());
        } catch (const CancelledError& e) {
            line += ": CancelledError: " + std::string(e.what());
        } catch (...) {
            line += ": an exception of unknown type";
        }
    }
    line += "\n";
    std::fputs(line.c_str(), stderr);
}

LoopEntry::LoopEntry(LoopImpl* loop, bool handle_sigint) : loop_(loop), sigint_(false) {
    if (current_loop())
        throw RuntimeError("asyncfiber: a loop is already running on this thread "
                           "(run() and run_until_complete() cannot be nested)");
    if (loop->closed) throw RuntimeError("asyncfiber: the loop is closed");
    if (loop->entered) throw RuntimeError("asyncfiber: the loop is already running");
    loop->entered = true;
    loop->thread = std::this_thread::get_id();
    loop->eh_globals = thread_eh_globals();
    loop->stacks = &StackPool::for_this_thread();
    install_overflow_guard();
    set_current_loop(loop);
    loop->cached_now_ns = now_ns();
    debug_loop_enter(loop);
    if (handle_sigint) {
        sigint_ = true;
        loop->io->watch_sigint([loop] {
            if (loop->main_task) cancel_task(loop->main_task, "interrupted by SIGINT");
        });
    }
}

LoopEntry::~LoopEntry() {
    debug_loop_leave(loop_);
    if (sigint_) loop_->io->unwatch_sigint();
    loop_->main_task = nullptr;
    loop_->entered = false;
    set_current_loop(nullptr);
}

void LoopEntry::run_until_done(TaskBase* main) {
    loop_->main_task = main;
    loop_->run([main] { return main->is_done(); });
    if (!main->is_done()) {
        // stop() was called before main finished (asyncio: "Event loop stopped before Future
        // completed").
        throw RuntimeError("asyncfiber: the loop stopped before the main task completed");
    }
}

}  // namespace detail

// ---- Handle ----

Handle::Handle(const Handle& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
}

Handle::~Handle() {
    if (p_) p_->release();
}

void Handle::cancel() {
    if (!p_ || p_->cancelled) return;
    p_->cancelled = true;
    p_->fn = nullptr;  // release what the callback holds now
    if (p_->queued && p_->timer.scheduled()) {
        p_->loop->timers.remove(&p_->timer);
        p_->queued = false;
        p_->release();
    }
}

bool Handle::cancelled() const noexcept { return p_ && p_->cancelled; }

Clock::time_point Handle::when() const noexcept { return p_ ? p_->timer.when : Clock::time_point{}; }

// ---- Loop ----

Loop::Loop() : impl_(new detail::LoopImpl(this)) {}

Loop::~Loop() {
    try {
        if (!impl_->entered) close();
    } catch (...) {
    }
    delete impl_;
}

Loop& Loop::current() {
    detail::LoopImpl* L = detail::current_loop();
    if (!L) throw RuntimeError("asyncfiber: no running loop on this thread");
    return *L->owner;
}

void Loop::run_forever() {
    detail::LoopEntry entry(impl_, false);
    impl_->run([] { return false; });
}

void Loop::stop() { impl_->stop_requested = true; }

void Loop::close() {
    if (impl_->closed) return;
    if (impl_->entered) throw RuntimeError("asyncfiber: cannot close a running loop");
    if (impl_->live_count > 0) {
        detail::report_never_awaited(impl_);
        detail::LoopEntry entry(impl_, false);
        impl_->cancel_all_and_finish();
    }
    while (!impl_->close_hooks.empty()) {
        auto hook = std::move(impl_->close_hooks.back());
        impl_->close_hooks.pop_back();
        hook();
    }
    impl_->closed = true;
}

bool Loop::is_running() const noexcept { return impl_->entered; }
bool Loop::is_closed() const noexcept { return impl_->closed; }

Handle Loop::call_soon(std::function<void()> fn) {
    if (impl_->closed) throw RuntimeError("asyncfiber: call_soon on a closed loop");
    if (!fn) throw std::invalid_argument("asyncfiber: call_soon needs a function");
    return impl_->call_soon(std::move(fn));
}

Handle Loop::call_at(Clock::time_point when, std::function<void()> fn) {
    if (impl_->closed) throw RuntimeError("asyncfiber: call_at on a closed loop");
    if (!fn) throw std::invalid_argument("asyncfiber: call_at needs a function");
    return impl_->call_at(when, std::move(fn));
}

void Loop::call_soon_threadsafe(std::function<void()> fn) {
    if (!fn) throw std::invalid_argument("asyncfiber: call_soon_threadsafe needs a function");
    detail::LoopImpl* L = impl_;
    L->io->post([L, fn] {
        try {
            fn();
        } catch (...) {
            L->report(ExceptionContext{"exception in a call_soon_threadsafe callback",
                                       std::current_exception(), {}});
        }
    });
}

void Loop::set_debug(bool on) {
    impl_->debug = on;
    if (!impl_->entered) return;  // the next entry sets the SIGQUIT dump up
    if (on)
        detail::debug_loop_enter(impl_);
    else
        detail::debug_loop_leave(impl_);
}
bool Loop::get_debug() const noexcept { return impl_->debug; }
void Loop::set_slow_callback_duration(Clock::duration d) { impl_->slow_step = d; }

void Loop::set_exception_handler(std::function<void(const ExceptionContext&)> fn) {
    impl_->exception_handler = std::move(fn);
}

void Loop::call_exception_handler(const ExceptionContext& ctx) { impl_->report(ctx); }

boost::asio::io_context& Loop::io_context() { return impl_->io->context(); }

}  // namespace asyncfiber

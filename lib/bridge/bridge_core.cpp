// The thread-safe state between an awaiting task and whatever completes it (bridge_core.hpp).
#include "runtime/io_driver.hpp"
#include "runtime/loop_impl.hpp"
#include "runtime/thread_mutex.hpp"

#include <asyncfiber/bridge.hpp>
#include <asyncfiber/detail/bridge_core.hpp>
#include <asyncfiber/detail/suspend.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace asyncfiber {
namespace detail {

std::exception_ptr error_of(const boost::system::error_code& ec) {
    return ec ? std::make_exception_ptr(boost::system::system_error(ec)) : std::exception_ptr();
}

void report_extra_completion(const char* what) noexcept {
    std::string line = std::string("asyncfiber: ") + what +
                       " was completed more than once; the extra completion was ignored\n";
    std::fputs(line.c_str(), stderr);
}

void report_orphaned_completion(OrphanedCompletion how, bool object_named) noexcept {
    LoopImpl* L = current_loop();
    if (!L || how == OrphanedCompletion::aborted) return;
    const bool lost = how == OrphanedCompletion::with_result && !object_named;
    if (!lost && !L->debug) return;
    try {
        std::string msg =
            "a Boost.Asio operation awaited with af::use_await completed after its task had "
            "stopped waiting (cancelled or timed out)";
        if (lost)
            msg +=
                "; what it produced (bytes it read, a connection it accepted...) is lost. "
                "Name the I/O object, af::use_await.cancels(obj), so that the operation is "
                "cancelled with its task";
        else if (how == OrphanedCompletion::failed)
            msg += " and failed; the error was dropped";
        else
            msg += "; its result was dropped";
        L->report(ExceptionContext{msg, nullptr, {}});
    } catch (...) {
        // Out of memory while reporting: nothing more can be said.
    }
}

void BridgeCore::drop_completer() noexcept {
    if (completers_.drop()) set_broken();
}

bool BridgeCore::set_error(std::exception_ptr e) {
    ThreadMutexLock lk(m_);
    if (state_ != State::pending) return false;
    if (!abandoned_) error_ = std::move(e);
    publish(lk, State::error);
    return true;
}

void BridgeCore::set_broken() noexcept {
    ThreadMutexLock lk(m_);
    if (state_ != State::pending) return;
    try {
        publish(lk, State::broken);
    } catch (...) {
        // Only the post to another thread's loop can throw (out of memory); the state is
        // set, so the waiter sees it at its next wake-up (at the latest its cancellation).
    }
}

struct BridgeCore::Extras {
    std::vector<Callback<void()>> callbacks;
    std::condition_variable blocked;  // plain threads in block()
    std::size_t blocked_count = 0;
    // Shared, so that it is called outside the lock while a copy of the core may drop it.
    std::shared_ptr<Callback<void()>> cancel_remote;
    bool cancel_requested = false;
};

BridgeCore::~BridgeCore() { delete extras_; }

namespace {
void run_done_callbacks(std::vector<Callback<void()>>& callbacks) noexcept {
    for (auto& fn : callbacks) {
        try {
            fn();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "asyncfiber: exception in a done callback of af::Future: %s\n",
                         e.what());
        } catch (...) {
            std::fputs("asyncfiber: exception in a done callback of af::Future\n", stderr);
        }
    }
}
}  // namespace

void BridgeCore::publish(ThreadMutexLock& lk, State s) {
    state_ = s;
    std::vector<Callback<void()>> callbacks;
    if (extras_) {
        callbacks.swap(extras_->callbacks);
        if (extras_->blocked_count) extras_->blocked.notify_all();
    }
    TaskBase* w = waiter_;
    LoopImpl* L = loop_;
    if (w && current_loop() == L) {
        // On the waiter's own thread nothing can unregister it between here and wake().
        lk.unlock();
        wake(w);
    } else if (w) {
        // Another thread. The waiter is registered, so its task is suspended and its loop
        // alive; posting under the lock keeps it so until the post is done. The posted wake
        // reads the waiter again on the loop thread: by then it may have left (cancelled),
        // and it is no longer named here.
        add_ref();
        IntrusivePtr<BridgeCore> keep = IntrusivePtr<BridgeCore>::adopt(this);
        L->io->post([keep] {
            TaskBase* t;
            {
                ThreadMutexLock g(keep->m_);
                t = keep->waiter_;
            }
            if (t) wake(t);
        });
        lk.unlock();
    } else {
        lk.unlock();
    }
    run_done_callbacks(callbacks);
}

BridgeCore::Extras& BridgeCore::extras() {
    if (!extras_) extras_ = new Extras;
    return *extras_;
}

void BridgeCore::block(const char* what) {
    if (current_loop())
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " called on a thread that runs a loop: blocking it would stop every "
                           "task of that loop (and may wait for one of them forever). In a "
                           "task, use af::await(future)");
    std::unique_lock<std::mutex> lk(native(m_));
    if (state_ != State::pending) return;
    Extras& x = extras();
    ++x.blocked_count;
    x.blocked.wait(lk, [this] { return state_ != State::pending; });
    --x.blocked_count;
}

void BridgeCore::add_done_callback(Callback<void()> fn) {
    if (!fn) throw std::invalid_argument("asyncfiber: add_done_callback with an empty function");
    {
        ThreadMutexLock lk(m_);
        if (state_ == State::pending) {
            extras().callbacks.push_back(std::move(fn));
            return;
        }
    }
    fn();  // already complete: the caller's thread is the one that completes it
}

void BridgeCore::set_remote_cancel(Callback<void()> cancel_remote) {
    auto fn = std::make_shared<Callback<void()>>(std::move(cancel_remote));
    ThreadMutexLock lk(m_);
    extras().cancel_remote = std::move(fn);
}

bool BridgeCore::cancel() {
    ThreadMutexLock lk(m_);
    if (state_ != State::pending) return extras_ && extras_->cancel_requested;
    Extras& x = extras();
    if (x.cancel_requested) return true;
    x.cancel_requested = true;
    if (x.cancel_remote) {
        // The remote side completes the core when it has ended; take() then says cancelled.
        std::shared_ptr<Callback<void()>> fn = x.cancel_remote;
        lk.unlock();
        (*fn)();
        return true;
    }
    error_ = std::make_exception_ptr(CancelledError());
    publish(lk, State::error);
    return true;
}

bool BridgeCore::cancel_requested() const {
    ThreadMutexLock lk(m_);
    return extras_ && extras_->cancel_requested;
}

bool BridgeCore::forward_cancel_to_remote(void* core) {
    auto* c = static_cast<BridgeCore*>(core);
    std::shared_ptr<Callback<void()>> fn;
    {
        ThreadMutexLock lk(c->m_);
        if (!c->extras_ || !c->extras_->cancel_remote || c->state_ != State::pending) return false;
        fn = c->extras_->cancel_remote;
    }
    (*fn)();
    return true;  // the awaiting task wakes when the remote side has ended
}

bool BridgeCore::ready() const {
    ThreadMutexLock lk(m_);
    return state_ != State::pending;
}

void BridgeCore::check_take() {
    ThreadMutexLock lk(m_);
    switch (state_) {
    case State::pending:
        throw InvalidStateError("asyncfiber: the result is not ready yet");
    case State::broken:
        throw BrokenPromise();
    default:
        break;
    }
    if (extras_ && extras_->cancel_requested) {
        // af::Future::cancel(): whatever came after it (a remote task that ended anyway) is
        // not handed out.
        if (taken_) throw InvalidStateError("asyncfiber: the result was already retrieved");
        taken_ = true;
        throw CancelledError();
    }
    switch (state_) {
    case State::pending:
    case State::broken:
        break;
    case State::error: {
        if (taken_) throw InvalidStateError("asyncfiber: the result was already retrieved");
        taken_ = true;
        // Moved out: the exception object then lives only on the awaiting side, and the
        // core, whose last reference may go on another thread, no longer shares it.
        std::exception_ptr e = std::move(error_);
        error_ = nullptr;
        std::rethrow_exception(e);
    }
    case State::value:
        if (taken_) throw InvalidStateError("asyncfiber: the result was already retrieved");
        taken_ = true;
        return;
    }
}

bool BridgeCore::abandoned() const {
    ThreadMutexLock lk(m_);
    return abandoned_;
}

namespace {
struct CancelCall : CancelHook {
    CancelCall(bool (*f)(void*), void* a, LoopImpl* l) noexcept : fn(f), arg(a), loop(l) {}
    bool (*fn)(void*);
    void* arg;
    LoopImpl* loop;
    bool deferred = false;  // a cancel waits for the operation to complete
    std::string msg;
};

bool forward_cancel(CancelHook* h, const std::string& msg) {
    auto* c = static_cast<CancelCall*>(h);
    bool runs_on = false;
    try {
        runs_on = c->fn(c->arg);
    } catch (...) {
        c->loop->report(ExceptionContext{
            "exception while cancelling an awaited operation", std::current_exception(), {}});
    }
    if (!runs_on) return false;  // the task is woken with CancelledError at once
    // Taken over: the task wakes when the operation completes, then throws CancelledError.
    c->deferred = true;
    c->msg = msg;
    return true;
}
}  // namespace

void BridgeCore::wait(const char* what, bool (*on_cancel)(void*), void* arg,
                      bool abandon_on_cancel) {
    TaskBase* self = current_task_checked(what);
    {
        ThreadMutexLock lk(m_);
        if (waiter_) throw InvalidStateError("asyncfiber: another task already awaits this");
        if (state_ != State::pending) return;  // not a suspension point
        if (self->must_cancel && abandon_on_cancel) abandoned_ = true;
    }
    throw_if_cancelled(self);

    struct Registration {
        BridgeCore* core;
        TaskBase* self;
        bool abandon;
        CancelCall call;
        ~Registration() {
            ThreadMutexLock lk(core->m_);
            core->waiter_ = nullptr;
            core->loop_ = nullptr;
            if (abandon && core->state_ == State::pending) core->abandoned_ = true;
            self->cancel_hook = nullptr;
        }
    } reg{this, self, abandon_on_cancel, CancelCall{on_cancel, arg, self->loop}};
    {
        ThreadMutexLock lk(m_);
        waiter_ = self;
        loop_ = self->loop;
    }
    if (on_cancel) {
        reg.call.forward = &forward_cancel;
        self->cancel_hook = &reg.call;
    }
    for (;;) {
        {
            ThreadMutexLock lk(m_);
            if (state_ != State::pending) break;
        }
        suspend(self, what);
        throw_if_cancelled(self);
    }
    if (reg.call.deferred) throw CancelledError(reg.call.msg);
}

}  // namespace detail
}  // namespace asyncfiber

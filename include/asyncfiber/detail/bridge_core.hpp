// Internal: the state shared between a task that awaits something and whatever completes it
// (a Promise, a callback, an Asio handler, a pool thread), possibly on another thread.
//
// Why a separate heap block with its own reference count: the completing side may outlive the
// awaiting task (a callback that fires after its task was cancelled, an Asio handler that
// completes with operation_aborted after the task left). Neither side ever points into the
// other's memory; both only hold references to this block. The awaiting task's identity is
// kept here under a mutex and cleared before it leaves, so a late completion finds nobody to
// wake and only stores (or drops) its value.
#pragma once

#include <asyncfiber/detail/atomic_count.hpp>
#include <asyncfiber/detail/callback.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/detail/thread_mutex.hpp>
#include <asyncfiber/errors.hpp>

#include <cstdint>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

namespace asyncfiber {
namespace detail {

class BridgeCore {
public:
    enum class State : std::uint8_t { pending, value, error, broken };

    BridgeCore() noexcept = default;
    BridgeCore(const BridgeCore&) = delete;
    BridgeCore& operator=(const BridgeCore&) = delete;
    virtual ~BridgeCore();

    void add_ref() noexcept { refs_.add(); }
    void release() noexcept {
        if (refs_.drop()) delete this;
    }

    /// Completers are the copies of a callback / handler that may still complete the await.
    /// When the last one goes away while nothing was set, the await ends with BrokenPromise.
    void add_completer() noexcept { completers_.add(); }
    void drop_completer() noexcept;

    /// Any thread. Completes with an exception; false if it was already completed.
    bool set_error(std::exception_ptr e);
    /// Any thread. Ends a pending await with BrokenPromise.
    void set_broken() noexcept;

    /// In a task: suspends until the state is no longer pending. Throws CancelledError when
    /// the task is cancelled (asyncio: even if a value arrived meanwhile). Before that,
    /// `on_cancel(arg)` (if given) runs from the cancel() call, on the loop thread: if it
    /// returns false the task wakes at once; if it returns true the operation is still
    /// running and will complete, and the task waits for that before it throws
    /// CancelledError (what the operation produced is dropped). With `abandon_on_cancel`, a
    /// completion arriving after the task left is dropped unread. Throws InvalidStateError
    /// if another task already waits here.
    void wait(const char* what, bool (*on_cancel)(void*), void* arg, bool abandon_on_cancel);
    /// Whether the waiting task left by cancellation before the completion came (a late
    /// completion then finds nobody to hand its result to).
    bool abandoned() const;

    bool ready() const;

    // ---- af::Future's side, used from any thread (none of it costs a core that never uses it)

    /// Blocks the calling plain thread until the state is no longer pending. Throws
    /// RuntimeError on a thread that runs a loop (blocking it would stop every task there).
    void block(const char* what);
    /// Runs `fn()` once the state is no longer pending: on the thread that completes it, or
    /// at once on this thread when it already is.
    void add_done_callback(Callback<void()> fn);
    /// Makes the core remote: cancel() then calls `cancel_remote()` (any thread, outside the
    /// lock) instead of completing at once, and the core completes when what it stands for
    /// has ended. Set before the core is shared.
    void set_remote_cancel(Callback<void()> cancel_remote);
    /// Pending: a plain core completes with CancelledError, a remote one asks its remote side
    /// to stop (once). Returns whether it is cancelled: false when it completed otherwise.
    bool cancel();
    /// Whether cancel() was called while pending (a later completion is ignored, reported).
    bool cancel_requested() const;
    /// For an await whose task is cancelled: a remote core forwards the cancellation and the
    /// task waits for the end (true); a plain one lets the task go at once (false).
    static bool forward_cancel_to_remote(void* core);

    /// After wait(): returns if a value is there, rethrows the error, throws BrokenPromise;
    /// InvalidStateError if the value was already taken. Marks it taken.
    void check_take();

protected:
    /// Under `lk`, with state_ == pending: sets `s` and wakes the waiting task, directly when
    /// on its loop's thread, otherwise through the loop's io_context (thread-safe).
    /// Runs the done callbacks and wakes blocked threads too; returns with `lk` unlocked.
    void publish(ThreadMutexLock& lk, State s);

    mutable ThreadMutex m_;
    State state_ = State::pending;
    bool abandoned_ = false;  // the waiter left by cancellation: store nothing more
    bool taken_ = false;
    std::exception_ptr error_;

private:
    /// What only an af::Future uses (done callbacks, blocked threads, a remote cancel),
    /// allocated on first use (lib/bridge/bridge_core.cpp).
    struct Extras;
    Extras& extras();           // under m_
    Extras* extras_ = nullptr;  // guarded by m_

    AtomicCount refs_;
    AtomicCount completers_{0};
    TaskBase* waiter_ = nullptr;  // guarded by m_; set only while that task is suspended here
    LoopImpl* loop_ = nullptr;    // the waiter's loop (alive while waiter_ is set)
};

/// Prints "<what> was completed more than once; the extra completion was ignored" to stderr.
void report_extra_completion(const char* what) noexcept;

/// The core with storage for a value of type T (constructed in place, at most once).
template <class T>
class Shared final : public BridgeCore {
public:
    ~Shared() override {
        if (has_) ptr()->~T();
    }
    /// Any thread. Constructs the value from `a` (an exception from that constructor becomes
    /// the result); false if already completed. Drops the value if the waiter left.
    template <class... A>
    bool emplace(A&&... a) {
        ThreadMutexLock lk(m_);
        if (state_ != State::pending) return false;
        if (abandoned_) {
            publish(lk, State::value);
            return true;
        }
        std::exception_ptr err;
        try {
            ::new (static_cast<void*>(&storage_)) T(std::forward<A>(a)...);
            has_ = true;
        } catch (...) {
            err = std::current_exception();
        }
        if (err) {
            // Published after the catch block ended, so that this thread no longer holds
            // the exception when the waiter takes it (it may then be freed over there).
            error_ = std::move(err);
            publish(lk, State::error);
            return true;
        }
        publish(lk, State::value);
        return true;
    }
    /// After wait(): moves the value out (or throws, see check_take). What is left of it is
    /// destroyed here too: otherwise it would die with the core's last reference, perhaps
    /// later and on the completing thread.
    T take() {
        check_take();
        T v(std::move(*ptr()));
        ptr()->~T();
        has_ = false;
        return v;
    }

private:
    T* ptr() noexcept { return reinterpret_cast<T*>(&storage_); }
    typename std::aligned_storage<sizeof(T), alignof(T)>::type storage_;
    bool has_ = false;
};

template <>
class Shared<void> final : public BridgeCore {
public:
    bool emplace() {
        ThreadMutexLock lk(m_);
        if (state_ != State::pending) return false;
        publish(lk, State::value);
        return true;
    }
    void take() { check_take(); }
};

/// A reference held by something that may complete the core (a callback copy, a handler).
/// The last one destroyed without completing breaks the promise.
template <class C>
class CompleterRef {
public:
    explicit CompleterRef(C* c) noexcept : c_(c) {
        c_->add_ref();
        c_->add_completer();
    }
    CompleterRef(const CompleterRef& o) noexcept : c_(o.c_) {
        if (c_) {
            c_->add_ref();
            c_->add_completer();
        }
    }
    CompleterRef(CompleterRef&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    CompleterRef& operator=(const CompleterRef&) = delete;
    ~CompleterRef() {
        if (c_) {
            c_->drop_completer();
            c_->release();
        }
    }
    C* get() const noexcept { return c_; }
    explicit operator bool() const noexcept { return c_ != nullptr; }

private:
    C* c_;
};

}  // namespace detail
}  // namespace asyncfiber

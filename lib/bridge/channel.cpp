// The waiting side of af::Channel (asyncfiber/channel.hpp): tasks of any loop and plain
// threads in one wait list, each woken through a one-shot bridge core of its own.
//
// Why a bridge core per wait: it already does everything a waiter on another thread needs
// (waking a task through its loop's io_context, or a blocked thread, and a wake that arrives
// after the task left finds nobody), so the channel itself only keeps lists of who waits.
#include "runtime/loop_impl.hpp"
#include "runtime/thread_mutex.hpp"

#include <asyncfiber/channel.hpp>
#include <asyncfiber/detail/bridge_core.hpp>

#include <cstdio>
#include <exception>
#include <mutex>

namespace asyncfiber {
namespace detail {

namespace {
/// One waiting put or get, on its task's (or thread's) stack, linked while it waits. Touched
/// by others only under the channel's mutex, and only while linked.
struct ChannelWaiter : ListNode {
    IntrusivePtr<Shared<void>> wake;
    bool notified = false;
};

void notify(ChannelWaiter* w) noexcept {
    w->unlink();
    w->notified = true;
    // Under the channel's mutex, then the core's (never the other way round). It can fail
    // only posting to another loop, out of memory; the waiter then stays until cancelled.
    try {
        w->wake->emplace();
    } catch (...) {
        std::fputs("asyncfiber: a Channel could not wake a waiter (out of memory)\n", stderr);
    }
}
}  // namespace

ChannelWaiters::~ChannelWaiters() {
    if (!getters_.empty() || !putters_.empty()) {
        // A task or thread still waits and would touch this channel when it wakes.
        std::fputs(
            "asyncfiber: an af::Channel was destroyed while a task or thread waited on it; "
            "a channel must outlive every call on it\n",
            stderr);
        std::terminate();
    }
}

void ChannelWaiters::wait(bool getter, const char* what) {
    // The caller's lock, held here as a unique_lock for the waiting below, and still held
    // when this returns or throws.
    std::unique_lock<std::mutex> lk(native(m), std::adopt_lock);
    struct KeepLocked {
        std::unique_lock<std::mutex>& lk;
        ~KeepLocked() { lk.release(); }
    } keep{lk};
    TaskBase* self = current_task_or_null();
    if (!self && current_loop())
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " would block a thread that runs a loop (outside a task): call it "
                           "in a task, or use the _nowait form");
    ChannelWaiter w;
    w.wake = IntrusivePtr<Shared<void>>::adopt(new Shared<void>);
    (getter ? getters_ : putters_).push_back(&w);
    IntrusivePtr<Shared<void>> wake = w.wake;
    lk.unlock();
    try {
        if (self)
            wake->wait(what, nullptr, nullptr, false);
        else
            wake->block(what);
    } catch (...) {
        lk.lock();
        if (w.linked())
            w.unlink();
        else if (w.notified)
            notify_one(getter);  // what we were told of stays in the channel: pass it on
        throw;
    }
    lk.lock();
}

void ChannelWaiters::notify_one(bool getter) noexcept {
    ListNode* n = (getter ? getters_ : putters_).front();
    if (n) notify(static_cast<ChannelWaiter*>(n));
}

void ChannelWaiters::notify_all() noexcept {
    while (ListNode* n = getters_.front()) notify(static_cast<ChannelWaiter*>(n));
    while (ListNode* n = putters_.front()) notify(static_cast<ChannelWaiter*>(n));
}

}  // namespace detail
}  // namespace asyncfiber

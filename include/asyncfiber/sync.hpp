// asyncfiber/sync.hpp - synchronisation primitives for tasks (asyncio's locks module).
//
// None of them is thread-safe: like asyncio's, they belong to one loop. Using one from
// another thread's loop throws RuntimeError instead of corrupting it.
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/task.hpp>

namespace asyncfiber {

namespace detail {
/// Binds a primitive to the loop that first uses it and refuses any other.
class LoopAffinity {
public:
    void check(const char* what);

private:
    const void* loop_ = nullptr;
};
}  // namespace detail

/// asyncio.Event: wait() suspends until set() is called; set() wakes every waiter (FIFO).
class Event {
public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event();

    bool is_set() const noexcept { return set_; }
    void set();
    void clear() noexcept { set_ = false; }
    /// Returns at once if set; otherwise suspends until set(). Cancellable.
    void wait();

private:
    detail::LoopAffinity affinity_;
    detail::List waiters_;
    bool set_ = false;
};

}  // namespace asyncfiber

// asyncfiber/channel.hpp - af::Channel<T>: a bounded queue shared by loops and plain threads.
//
// af::Queue belongs to one loop; a Channel is what tasks of different loops (a Runtime's) and
// plain threads hand items through. get() and put() suspend only the calling task when called
// in a task, on any loop, and block the calling thread when called on a plain thread.
//
// No item is ever lost or duplicated, whatever cancellations land where (the invariant the
// implementation keeps): an item is always in exactly one place, the putter's argument, the
// channel's buffer, or the getter's result, and it moves between them only under the
// channel's mutex, by the task or thread whose put or get it is, after that call's last
// suspension point, with nothing that can throw a cancellation between the move and the
// return. A waiter is only ever *told* that an item or a free slot may be there; it then
// takes it itself. A waiter told so and cancelled before it ran passes the word on to the
// next waiter, and the item (or the slot) stays in the channel for it. So a cancelled get has
// taken nothing and a cancelled put has put nothing, as with asyncio.Queue.
#pragma once

#include <asyncfiber/detail/intrusive_list.hpp>
#include <asyncfiber/detail/ring_buffer.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/detail/task_state.hpp>
#include <asyncfiber/detail/thread_mutex.hpp>
#include <asyncfiber/errors.hpp>

#include <cstddef>
#include <stdexcept>
#include <utility>

namespace asyncfiber {

namespace detail {

/// The waiting side of a Channel and its mutex, the same for every element type
/// (lib/bridge/channel.cpp). Everything but `m` itself runs with `m` held by the caller.
class ChannelWaiters {
public:
    ChannelWaiters() = default;
    ChannelWaiters(const ChannelWaiters&) = delete;
    ChannelWaiters& operator=(const ChannelWaiters&) = delete;
    ~ChannelWaiters();

    /// The channel's mutex.
    ThreadMutex m;

    /// Waits until notify_one/notify_all on `getters` (get) or not (put) picks this caller:
    /// suspends the calling task, or blocks a plain thread, with the mutex released meanwhile.
    /// Returns with the mutex held. A cancelled task throws CancelledError (with the mutex
    /// held), having passed a notification it had received on to the next waiter.
    /// RuntimeError on a loop's thread outside a task.
    void wait(bool getter, const char* what);
    /// Tells the first getter (or putter) that an item (a slot) may be there. Cheap if none.
    void notify_one(bool getter) noexcept;
    /// Tells every waiter (shutdown).
    void notify_all() noexcept;

private:
    List getters_;
    List putters_;
};

}  // namespace detail

/// A bounded multi-producer multi-consumer FIFO queue for tasks of any loop and plain threads.
/// `capacity` must be at least 1 (std::invalid_argument otherwise): a rendezvous channel,
/// capacity 0, is not offered; capacity 1 is the closest, and an af::Future is the one-shot
/// hand-off. The channel must outlive every call on it (as a std::mutex must). Element types
/// only need to be movable.
template <class T>
class Channel {
public:
    explicit Channel(std::size_t capacity) : capacity_(checked(capacity)) {}
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    /// Puts an item, waiting while the channel is full (suspending the calling task, or
    /// blocking the calling plain thread). Throws QueueShutDown once shutdown() was called. A
    /// put cancelled while it waits has put nothing.
    void put(T item);

    /// Removes and returns the oldest item, waiting while the channel is empty. After
    /// shutdown(), the items left are still returned; then it throws QueueShutDown. A get
    /// cancelled while it waits has taken nothing.
    T get();

    /// Puts an item now: QueueFull when full, QueueShutDown after shutdown(). Any thread.
    void put_nowait(T item);

    /// Takes the oldest item now: QueueEmpty when empty (QueueShutDown if also shut down).
    T get_nowait();

    /// The number of items in the channel (a snapshot: other threads may change it).
    std::size_t qsize() const {
        detail::ThreadMutexLock lk(w_.m);
        return items_.size();
    }
    std::size_t capacity() const noexcept { return capacity_; }
    bool is_shutdown() const {
        detail::ThreadMutexLock lk(w_.m);
        return shutdown_;
    }

    /// As af::Queue (Python 3.13): put() and put_nowait() throw QueueShutDown from now on;
    /// get() throws it once the channel is empty. With immediate=true the items are dropped at
    /// once, so get() throws at once. Waiting putters and getters wake up and throw.
    /// Idempotent. Any thread.
    void shutdown(bool immediate = false);

private:
    static std::size_t checked(std::size_t capacity);
    // In a task: the cooperative budget, before anything (a cancellation landing there moves
    // nothing).
    static void begin();
    // Under the lock, with an item there.
    T take();

    mutable detail::ChannelWaiters w_;
    const std::size_t capacity_;
    detail::RingBuffer<T> items_;
    bool shutdown_ = false;
};

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/channel_inl.hpp>

// asyncfiber/queue.hpp - af::Queue, af::PriorityQueue, af::LifoQueue (asyncio.Queue and
// friends, with Python 3.13's shutdown()).
//
// Like asyncio's queues they belong to one loop and are not thread-safe (use from another
// thread's loop throws RuntimeError). Element types only need to be movable.
#pragma once

#include <asyncfiber/detail/loop_affinity.hpp>
#include <asyncfiber/detail/ring_buffer.hpp>
#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/errors.hpp>

#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {

/// The storage of each kind: in which order items come out (detail/queue_inl.hpp).
template <class T>
class FifoStore;
template <class T>
class LifoStore;
template <class T, class Compare>
class HeapStore;

/// PriorityQueue's default order: `a < b`, as Python's heapq compares. (Not std::less, only so
/// that this header need not include <functional>; any comparison object can be given.)
template <class T>
struct Less {
    bool operator()(const T& a, const T& b) const { return a < b; }
};

/// The queue logic shared by the three kinds; Store says in which order items come out.
template <class T, class Store>
class BasicQueue {
public:
    using value_type = T;

    /// maxsize <= 0: unbounded.
    explicit BasicQueue(std::ptrdiff_t maxsize = 0, Store store = Store())
        : store_(std::move(store)), maxsize_(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0) {}
    BasicQueue(const BasicQueue&) = delete;
    BasicQueue& operator=(const BasicQueue&) = delete;
    /// Tasks still waiting on the queue (or woken and not yet out of get/put/join) wake up
    /// with RuntimeError: a bug in the caller, reported rather than left hanging.
    ~BasicQueue();

    std::size_t qsize() const noexcept { return store_.size(); }
    /// 0 when unbounded.
    std::size_t maxsize() const noexcept { return maxsize_; }
    bool empty() const noexcept { return store_.size() == 0; }
    bool full() const noexcept { return maxsize_ != 0 && store_.size() >= maxsize_; }
    bool is_shutdown() const noexcept { return shutdown_; }

    /// Puts an item, suspending (cancellably) while the queue is full. Throws QueueShutDown
    /// once shutdown() was called. A put cancelled while it waits has not put anything.
    void put(T item);

    /// Puts an item now; QueueFull if full, QueueShutDown after shutdown().
    void put_nowait(T item);

    /// Removes and returns an item, suspending (cancellably) while the queue is empty. After
    /// shutdown(), remaining items are still returned; then it throws QueueShutDown. A get
    /// cancelled while it waits has taken nothing.
    T get();

    /// Removes and returns an item now; QueueEmpty if empty (QueueShutDown if also shut down).
    T get_nowait();

    /// Marks one item taken with get() as processed. Throws std::invalid_argument (asyncio's
    /// ValueError) if called more often than items were put.
    void task_done();

    /// Suspends until every item put has been marked with task_done().
    void join();

    /// Python 3.13: put() and put_nowait() throw QueueShutDown from now on; get() throws it
    /// once the queue is empty. With immediate=true the queue is emptied at once (each dropped
    /// item counts as task_done()) so get() throws at once. Blocked putters and getters wake
    /// up and throw. Idempotent.
    void shutdown(bool immediate = false);

private:
    void push(T&& item);
    T pop();
    void set_finished() noexcept { notify_all(joiners_); }

    LoopAffinity affinity_;
    Store store_;
    std::size_t maxsize_;
    std::size_t unfinished_ = 0;
    bool shutdown_ = false;
    List getters_;
    List putters_;
    List joiners_;
    List leaving_;  // woken getters and putters whose tasks have not left get/put yet
};

}  // namespace detail

/// asyncio.Queue: first in, first out.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
public:
    explicit Queue(std::ptrdiff_t maxsize = 0)
        : detail::BasicQueue<T, detail::FifoStore<T>>(maxsize) {}
};

/// asyncio.LifoQueue: last in, first out.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
public:
    explicit LifoQueue(std::ptrdiff_t maxsize = 0)
        : detail::BasicQueue<T, detail::LifoStore<T>>(maxsize) {}
};

/// asyncio.PriorityQueue: the smallest item under Compare comes out first (with the default,
/// `a < b`, in Python's heap order; std::greater<T> gives a max-queue). Items that compare
/// equal come out in no particular order; put (priority, sequence) pairs for a stable order.
template <class T, class Compare = detail::Less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
public:
    explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare comp = Compare())
        : detail::BasicQueue<T, detail::HeapStore<T, Compare>>(
              maxsize, detail::HeapStore<T, Compare>(std::move(comp))) {}
};

}  // namespace asyncfiber

// Definitions of the templates declared above.
#include <asyncfiber/detail/queue_inl.hpp>

// asyncfiber/queue.hpp - af::Queue, af::PriorityQueue, af::LifoQueue (asyncio.Queue and
// friends, with Python 3.13's shutdown()).
//
// Like asyncio's queues they belong to one loop and are not thread-safe (use from another
// thread's loop throws RuntimeError). Element types only need to be movable.
#pragma once

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/sync.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {

/// FIFO storage (asyncio.Queue).
template <class T>
class FifoStore {
public:
    void push(T&& v) { d_.push_back(std::move(v)); }
    T pop() {
        T v = std::move(d_.front());
        d_.pop_front();
        return v;
    }
    std::size_t size() const noexcept { return d_.size(); }
    void clear() { d_.clear(); }

private:
    std::deque<T> d_;
};

/// LIFO storage (asyncio.LifoQueue).
template <class T>
class LifoStore {
public:
    void push(T&& v) { v_.push_back(std::move(v)); }
    T pop() {
        T v = std::move(v_.back());
        v_.pop_back();
        return v;
    }
    std::size_t size() const noexcept { return v_.size(); }
    void clear() { v_.clear(); }

private:
    std::vector<T> v_;
};

/// Heap storage (asyncio.PriorityQueue): pops the smallest element under Compare first, as
/// Python's heapq does with `<`. A raw heap rather than std::priority_queue, whose top() is
/// const and so cannot hand out move-only elements.
template <class T, class Compare>
class HeapStore {
public:
    explicit HeapStore(Compare c = Compare()) : greater_{std::move(c)} {}
    void push(T&& v) {
        v_.push_back(std::move(v));
        std::push_heap(v_.begin(), v_.end(), greater_);
    }
    T pop() {
        std::pop_heap(v_.begin(), v_.end(), greater_);
        T v = std::move(v_.back());
        v_.pop_back();
        return v;
    }
    std::size_t size() const noexcept { return v_.size(); }
    void clear() { v_.clear(); }

private:
    struct Greater {
        Compare less;
        bool operator()(const T& a, const T& b) { return less(b, a); }
    };
    std::vector<T> v_;
    Greater greater_;
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
    ~BasicQueue() {
        orphan_waiters(getters_);
        orphan_waiters(putters_);
        orphan_waiters(joiners_);
        orphan_waiters(leaving_);
    }

    std::size_t qsize() const noexcept { return store_.size(); }
    /// 0 when unbounded.
    std::size_t maxsize() const noexcept { return maxsize_; }
    bool empty() const noexcept { return store_.size() == 0; }
    bool full() const noexcept { return maxsize_ != 0 && store_.size() >= maxsize_; }
    bool is_shutdown() const noexcept { return shutdown_; }

    /// Puts an item, suspending (cancellably) while the queue is full. Throws QueueShutDown
    /// once shutdown() was called. A put cancelled while it waits has not put anything.
    void put(T item) {
        TaskBase* self = current_task_checked("Queue::put");
        affinity_.check(self->loop, "Queue");
        cooperate(self);  // before anything: a cancellation landing there puts nothing
        while (full()) {
            if (shutdown_) throw QueueShutDown();
            Waiter w(self, &leaving_);
            putters_.push_back(&w);
            try {
                park(w, "Queue::put");
            } catch (const CancelledError&) {
                // A free slot signalled to us must not be lost for the next putter.
                if (w.notified && !full()) notify_first(putters_);
                throw;
            }
        }
        if (shutdown_) throw QueueShutDown();
        push(std::move(item));
    }

    /// Puts an item now; QueueFull if full, QueueShutDown after shutdown().
    void put_nowait(T item) {
        affinity_.check("Queue");
        if (shutdown_) throw QueueShutDown();
        if (full()) throw QueueFull();
        push(std::move(item));
    }

    /// Removes and returns an item, suspending (cancellably) while the queue is empty. After
    /// shutdown(), remaining items are still returned; then it throws QueueShutDown. A get
    /// cancelled while it waits has taken nothing.
    T get() {
        TaskBase* self = current_task_checked("Queue::get");
        affinity_.check(self->loop, "Queue");
        cooperate(self);  // before anything: a cancellation landing there takes nothing
        while (empty()) {
            if (shutdown_) throw QueueShutDown();
            Waiter w(self, &leaving_);
            getters_.push_back(&w);
            try {
                park(w, "Queue::get");
            } catch (const CancelledError&) {
                // The item signalled to us stays in the queue: wake the next getter for it.
                if (w.notified && !empty()) notify_first(getters_);
                throw;
            }
        }
        return pop();
    }

    /// Removes and returns an item now; QueueEmpty if empty (QueueShutDown if also shut down).
    T get_nowait() {
        affinity_.check("Queue");
        if (empty()) {
            if (shutdown_) throw QueueShutDown();
            throw QueueEmpty();
        }
        return pop();
    }

    /// Marks one item taken with get() as processed. Throws std::invalid_argument (asyncio's
    /// ValueError) if called more often than items were put.
    void task_done() {
        affinity_.check("Queue");
        if (unfinished_ == 0)
            throw std::invalid_argument("asyncfiber: Queue::task_done called too many times");
        if (--unfinished_ == 0) set_finished();
    }

    /// Suspends until every item put has been marked with task_done().
    void join() {
        TaskBase* self = current_task_checked("Queue::join");
        affinity_.check(self->loop, "Queue");
        if (unfinished_ == 0) return;
        Waiter w(self);
        joiners_.push_back(&w);
        park(w, "Queue::join");
    }

    /// Python 3.13: put() and put_nowait() throw QueueShutDown from now on; get() throws it
    /// once the queue is empty. With immediate=true the queue is emptied at once (each dropped
    /// item counts as task_done()) so get() throws at once. Blocked putters and getters wake
    /// up and throw. Idempotent.
    void shutdown(bool immediate = false) {
        affinity_.check("Queue");
        shutdown_ = true;
        if (immediate) {
            while (!empty()) {
                store_.pop();
                if (unfinished_ > 0) --unfinished_;
            }
            if (unfinished_ == 0) set_finished();
        }
        notify_all(getters_);
        notify_all(putters_);
    }

private:
    void push(T&& item) {
        store_.push(std::move(item));
        ++unfinished_;
        notify_first(getters_);
    }
    T pop() {
        T v = store_.pop();
        notify_first(putters_);
        return v;
    }
    void set_finished() noexcept {
        notify_all(joiners_);
    }

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
    explicit Queue(std::ptrdiff_t maxsize = 0) : detail::BasicQueue<T, detail::FifoStore<T>>(maxsize) {}
};

/// asyncio.LifoQueue: last in, first out.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
public:
    explicit LifoQueue(std::ptrdiff_t maxsize = 0)
        : detail::BasicQueue<T, detail::LifoStore<T>>(maxsize) {}
};

/// asyncio.PriorityQueue: the smallest item under Compare comes out first (with the default
/// std::less, as Python's heap order does). Items that compare equal come out in no
/// particular order; put (priority, sequence) pairs for a stable order.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
public:
    explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare comp = Compare())
        : detail::BasicQueue<T, detail::HeapStore<T, Compare>>(
              maxsize, detail::HeapStore<T, Compare>(std::move(comp))) {}
};

}  // namespace asyncfiber

// asyncfiber/detail/queue_inl.hpp - the definitions behind asyncfiber/queue.hpp: the three
// storages (FIFO, LIFO, heap) and the members of the queue logic they share (BasicQueue).
#pragma once

#include <asyncfiber/queue.hpp>

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

template <class T, class Store>
BasicQueue<T, Store>::~BasicQueue() {
    orphan_waiters(getters_);
    orphan_waiters(putters_);
    orphan_waiters(joiners_);
    orphan_waiters(leaving_);
}

template <class T, class Store>
void BasicQueue<T, Store>::put(T item) {
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

template <class T, class Store>
void BasicQueue<T, Store>::put_nowait(T item) {
    affinity_.check("Queue");
    if (shutdown_) throw QueueShutDown();
    if (full()) throw QueueFull();
    push(std::move(item));
}

template <class T, class Store>
T BasicQueue<T, Store>::get() {
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

template <class T, class Store>
T BasicQueue<T, Store>::get_nowait() {
    affinity_.check("Queue");
    if (empty()) {
        if (shutdown_) throw QueueShutDown();
        throw QueueEmpty();
    }
    return pop();
}

template <class T, class Store>
void BasicQueue<T, Store>::task_done() {
    affinity_.check("Queue");
    if (unfinished_ == 0)
        throw std::invalid_argument("asyncfiber: Queue::task_done called too many times");
    if (--unfinished_ == 0) set_finished();
}

template <class T, class Store>
void BasicQueue<T, Store>::join() {
    TaskBase* self = current_task_checked("Queue::join");
    affinity_.check(self->loop, "Queue");
    if (unfinished_ == 0) return;
    Waiter w(self);
    joiners_.push_back(&w);
    park(w, "Queue::join");
}

template <class T, class Store>
void BasicQueue<T, Store>::shutdown(bool immediate) {
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

template <class T, class Store>
void BasicQueue<T, Store>::push(T&& item) {
    store_.push(std::move(item));
    ++unfinished_;
    notify_first(getters_);
}
template <class T, class Store>
T BasicQueue<T, Store>::pop() {
    T v = store_.pop();
    notify_first(putters_);
    return v;
}

}  // namespace detail

}  // namespace asyncfiber

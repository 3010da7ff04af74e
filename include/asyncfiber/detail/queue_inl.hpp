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
    void push(T&& v) { items_.push_back(std::move(v)); }
    T pop() { return items_.pop_front(); }
    std::size_t size() const noexcept { return items_.size(); }
    void clear() noexcept { items_.clear(); }

private:
    RingBuffer<T> items_;
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

/// Heap storage (asyncio.PriorityQueue): a binary min-heap under Compare, so the smallest
/// element comes out first, as Python's heapq does with `<`. Written out rather than
/// std::priority_queue, whose top() is const and so cannot hand out move-only elements, and
/// rather than std::push_heap/pop_heap, whose header (<algorithm>) the public headers avoid.
template <class T, class Compare>
class HeapStore {
public:
    explicit HeapStore(Compare c = Compare()) : less_(std::move(c)) {}
    void push(T&& v) {
        v_.push_back(std::move(v));
        // Sift up: move the new element's parents down until its place is found.
        std::size_t hole = v_.size() - 1;
        T item(std::move(v_[hole]));
        while (hole > 0) {
            const std::size_t parent = (hole - 1) / 2;
            if (!less_(item, v_[parent])) break;
            v_[hole] = std::move(v_[parent]);
            hole = parent;
        }
        v_[hole] = std::move(item);
    }
    T pop() {
        T top(std::move(v_.front()));
        T last(std::move(v_.back()));
        v_.pop_back();
        const std::size_t n = v_.size();
        if (n > 0) {
            // Sift down from the root: move the smaller child up until `last` fits.
            std::size_t hole = 0;
            for (;;) {
                std::size_t child = 2 * hole + 1;
                if (child >= n) break;
                if (child + 1 < n && less_(v_[child + 1], v_[child])) ++child;
                if (!less_(v_[child], last)) break;
                v_[hole] = std::move(v_[child]);
                hole = child;
            }
            v_[hole] = std::move(last);
        }
        return top;
    }
    std::size_t size() const noexcept { return v_.size(); }
    void clear() { v_.clear(); }

private:
    std::vector<T> v_;
    Compare less_;
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

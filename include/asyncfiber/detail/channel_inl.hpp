// asyncfiber/detail/channel_inl.hpp - the definitions behind asyncfiber/channel.hpp: the
// members of Channel<T> (the item moves that keep its no-loss invariant, stated there).
#pragma once

#include <asyncfiber/channel.hpp>

namespace asyncfiber {

template <class T>
void Channel<T>::put(T item) {
    begin();
    detail::ThreadMutexLock lk(w_.m);
    for (;;) {
        if (shutdown_) throw QueueShutDown();
        if (items_.size() < capacity_) break;
        w_.wait(false, "Channel::put");
    }
    items_.push_back(std::move(item));
    w_.notify_one(true);
}

template <class T>
T Channel<T>::get() {
    begin();
    detail::ThreadMutexLock lk(w_.m);
    for (;;) {
        if (!items_.empty()) break;
        if (shutdown_) throw QueueShutDown();
        w_.wait(true, "Channel::get");
    }
    return take();
}

template <class T>
void Channel<T>::put_nowait(T item) {
    detail::ThreadMutexLock lk(w_.m);
    if (shutdown_) throw QueueShutDown();
    if (items_.size() >= capacity_) throw QueueFull();
    items_.push_back(std::move(item));
    w_.notify_one(true);
}

template <class T>
T Channel<T>::get_nowait() {
    detail::ThreadMutexLock lk(w_.m);
    if (items_.empty()) {
        if (shutdown_) throw QueueShutDown();
        throw QueueEmpty();
    }
    return take();
}

template <class T>
void Channel<T>::shutdown(bool immediate) {
    detail::RingBuffer<T> dropped;  // destroyed after the lock is released
    detail::ThreadMutexLock lk(w_.m);
    shutdown_ = true;
    if (immediate) dropped.swap(items_);
    w_.notify_all();
}

template <class T>
std::size_t Channel<T>::checked(std::size_t capacity) {
    if (capacity == 0)
        throw std::invalid_argument("asyncfiber: a Channel needs a capacity of at least 1");
    return capacity;
}
template <class T>
void Channel<T>::begin() {
    if (detail::TaskBase* self = detail::current_task_or_null()) detail::cooperate(self);
}
template <class T>
T Channel<T>::take() {
    T v(items_.pop_front());
    w_.notify_one(false);
    return v;
}

}  // namespace asyncfiber

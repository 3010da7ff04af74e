// Internal: detail::ThreadMutex, a std::mutex that the public headers can hold without
// including <mutex> (docs/performance.md, "Header weight"): the object lives in storage
// inside ThreadMutex and is made, locked and unlocked by lib/runtime/thread_mutex.cpp. The
// library's own code reaches the std::mutex itself (for a condition variable) through
// lib/runtime/thread_mutex.hpp. Used by the state a Future shares with its completer and by
// a Channel.
#pragma once

namespace asyncfiber {
namespace detail {

class ThreadMutex {
public:
    ThreadMutex() noexcept;
    ~ThreadMutex();
    ThreadMutex(const ThreadMutex&) = delete;
    ThreadMutex& operator=(const ThreadMutex&) = delete;

    void lock();
    void unlock() noexcept;

private:
    friend struct ThreadMutexAccess;
    alignas(16) unsigned char storage_[64];
};

/// Holds a ThreadMutex, as std::unique_lock does: locked on construction, unlocked on
/// destruction unless unlock() came first.
class ThreadMutexLock {
public:
    explicit ThreadMutexLock(ThreadMutex& m) : m_(&m) { m.lock(); }
    ~ThreadMutexLock() {
        if (m_) m_->unlock();
    }
    ThreadMutexLock(const ThreadMutexLock&) = delete;
    ThreadMutexLock& operator=(const ThreadMutexLock&) = delete;

    void unlock() noexcept {
        m_->unlock();
        m_ = nullptr;
    }

private:
    ThreadMutex* m_;
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: the std::mutex inside a detail::ThreadMutex (asyncfiber/detail/thread_mutex.hpp),
// for the library code that waits on it with a condition variable or holds it as a
// std::unique_lock.
#pragma once

#include <asyncfiber/detail/thread_mutex.hpp>

#include <mutex>

namespace asyncfiber {
namespace detail {

struct ThreadMutexAccess {
    static std::mutex& native(ThreadMutex& m) noexcept {
        return *reinterpret_cast<std::mutex*>(m.storage_);
    }
};

inline std::mutex& native(ThreadMutex& m) noexcept { return ThreadMutexAccess::native(m); }

}  // namespace detail
}  // namespace asyncfiber

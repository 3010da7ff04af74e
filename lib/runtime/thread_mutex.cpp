// detail::ThreadMutex (asyncfiber/detail/thread_mutex.hpp): a std::mutex made in storage that
// the public headers declare without <mutex>.
#include "thread_mutex.hpp"

#include <new>

namespace asyncfiber {
namespace detail {

static_assert(sizeof(std::mutex) <= 64 && alignof(std::mutex) <= 16,
              "ThreadMutex's storage is too small for a std::mutex here");

ThreadMutex::ThreadMutex() noexcept { ::new (static_cast<void*>(storage_)) std::mutex; }

ThreadMutex::~ThreadMutex() { native(*this).~mutex(); }

void ThreadMutex::lock() { native(*this).lock(); }

void ThreadMutex::unlock() noexcept { native(*this).unlock(); }

}  // namespace detail
}  // namespace asyncfiber

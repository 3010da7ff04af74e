// Internal: which sanitizer this translation unit is built with (g++ and clang++ spell it
// differently). Defines ASYNCFIBER_ASAN and/or ASYNCFIBER_TSAN.
//
// Only for what differs when the library itself is instrumented (the task-block cache steps
// aside so that ASan sees use-after-free of a task block). Fiber switches are announced to
// whichever sanitizer runs the program, found at run time (fiber_switch.hpp).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define ASYNCFIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNCFIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ASYNCFIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASYNCFIBER_TSAN 1
#endif
#endif

// Happens-before edges made by the library's own atomics, announced to ThreadSanitizer when
// the program runs under it: an application built with -fsanitize=thread and linked against
// the ordinary library does not see the library's atomics (they are not instrumented), only
// its mutexes (intercepted), so a hand-off through a lock-free queue of the library would
// read as a race between the application's code on both sides. Weak, as in fiber_switch.hpp:
// null unless the TSan runtime is linked in.
extern "C" {
__attribute__((weak)) void __tsan_acquire(void* addr);
__attribute__((weak)) void __tsan_release(void* addr);
}

namespace asyncfiber {
namespace detail {

/// Before a store that publishes data to another thread.
inline void announce_release(void* addr) noexcept {
    if (__tsan_release) __tsan_release(addr);
}
/// After the load that received it.
inline void announce_acquire(void* addr) noexcept {
    if (__tsan_acquire) __tsan_acquire(addr);
}

}  // namespace detail
}  // namespace asyncfiber

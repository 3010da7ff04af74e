// Internal: the one place where stacks are switched.
//
// Tasks run on Boost.Context's fcontext (the assembly switch under boost::context::fiber):
// about 6 ns a switch, with no allocation and no bookkeeping we do not control. Around each
// switch the C++ runtime's per-thread exception state is swapped, so each task keeps its own
// `throw;` and std::current_exception() even when it suspends inside a catch block, and the
// sanitizers are told about the switch so that their reports stay true.
#pragma once

#include <asyncfiber/detail/task_state.hpp>

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>
#include <cxxabi.h>

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

#ifdef ASYNCFIBER_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef ASYNCFIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace asyncfiber {
namespace detail {

namespace fctx = boost::context::detail;

/// This thread's __cxa_eh_globals ({caughtExceptions, uncaughtExceptions} in both libstdc++
/// and libc++abi).
inline EhState* thread_eh_globals() noexcept {
    return reinterpret_cast<EhState*>(abi::__cxa_get_globals());
}

/// AddressSanitizer's fiber protocol: announce the stack a switch goes to (start), and on the
/// other side confirm the arrival (finish). Without it ASan takes a fiber's stack for a
/// corrupt one as soon as an exception is thrown there. No-ops in other builds.
inline void asan_start_switch(void** fake_stack, const void* bottom, std::size_t size) noexcept {
#ifdef ASYNCFIBER_ASAN
    __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
    (void)fake_stack;
    (void)bottom;
    (void)size;
#endif
}
inline void asan_finish_switch(void* fake_stack, const void** old_bottom,
                               std::size_t* old_size) noexcept {
#ifdef ASYNCFIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
#else
    (void)fake_stack;
    (void)old_bottom;
    (void)old_size;
#endif
}

/// Marker passed by a fiber's last switch: the task is finished, its stack can go.
inline void* finished_marker() noexcept {
    static char marker;
    return &marker;
}

}  // namespace detail
}  // namespace asyncfiber

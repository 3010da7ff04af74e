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

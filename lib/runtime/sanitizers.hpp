// Internal: which sanitizer this translation unit is built with (g++ and clang++ spell it
// differently). Defines ASYNCFIBER_ASAN and/or ASYNCFIBER_TSAN.
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

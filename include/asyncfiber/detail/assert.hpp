// ASYNCFIBER_ASSERT(condition, message): states an invariant the code relies on.
//
// Checked where ASYNCFIBER_ASSERTIONS is 1: by default in builds without NDEBUG (Debug) and
// in sanitizer builds (CMake's ASYNCFIBER_SANITIZE and ASYNCFIBER_ASSERTIONS options define
// it); elsewhere it compiles to nothing and evaluates nothing. A broken invariant is a defect
// of the library, not a misuse (misuse gets an exception with a message): it prints what
// broke and where, then aborts, so that the state is seen as it was, in a core file or a
// debugger, before anything else runs on it.
#pragma once

#ifndef ASYNCFIBER_ASSERTIONS
#ifdef NDEBUG
#define ASYNCFIBER_ASSERTIONS 0
#else
#define ASYNCFIBER_ASSERTIONS 1
#endif
#endif

#if ASYNCFIBER_ASSERTIONS
namespace asyncfiber {
namespace detail {
[[noreturn]] void assertion_failed(const char* condition, const char* message, const char* file,
                                   int line) noexcept;
}  // namespace detail
}  // namespace asyncfiber
#define ASYNCFIBER_ASSERT(condition, message) \
    (__builtin_expect(!!(condition), 1)       \
         ? (void)0                            \
         : ::asyncfiber::detail::assertion_failed(#condition, message, __FILE__, __LINE__))
#else
// Not evaluated, but still compiled: the condition stays valid code, and what it names
// counts as used.
#define ASYNCFIBER_ASSERT(condition, message) ((void)sizeof(!(condition)))
#endif

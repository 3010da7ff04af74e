// What a broken invariant (ASYNCFIBER_ASSERT) prints before it aborts. Defined in every build
// of the library, so that code compiled with assertions (a Debug build of a program that
// includes the detail headers) links against a release library too. The header declares the
// function only where assertions are on, so this file turns them on for itself.
#undef ASYNCFIBER_ASSERTIONS
#define ASYNCFIBER_ASSERTIONS 1
#include <asyncfiber/detail/assert.hpp>

#include <cstdio>
#include <cstdlib>

namespace asyncfiber {
namespace detail {

[[noreturn]] void assertion_failed(const char* condition, const char* message, const char* file,
                                   int line) noexcept {
    std::fprintf(stderr, "asyncfiber: internal invariant broken at %s:%d: %s (%s)\n", file, line,
                 message, condition);
    std::fflush(stderr);
    std::abort();
}

}  // namespace detail
}  // namespace asyncfiber

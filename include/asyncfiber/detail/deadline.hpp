// Internal: the one conversion from a duration given to the API to a deadline on the loop's
// clock. Every entry point that takes a duration (sleep, call_later, timeout, wait_for, wait,
// as_completed) goes through deadline_after(), so that they all agree on the edge cases:
//
// - a duration too long for the clock (hours::max(), 1e30 s, infinity) means "never":
//   Clock::time_point::max(), which no timer reaches and which the loop does not wake for;
// - a negative duration too long for the clock saturates to Clock::time_point::min()
//   (already past);
// - NaN has no meaning as a duration and throws std::invalid_argument;
// - otherwise the deadline is rounded up to the clock's tick, so it is never early.
//
// Time points given to the API are already on the loop's clock; Clock::time_point::max()
// means "never" there too.
#pragma once

#include <chrono>
#include <limits>
#include <ratio>
#include <stdexcept>
#include <type_traits>

namespace asyncfiber {
namespace detail {

namespace deadline_impl {
using Clock = std::chrono::steady_clock;
using Ticks = Clock::rep;

inline Clock::time_point saturated(bool forward) noexcept {
    return forward ? Clock::time_point::max() : Clock::time_point::min();
}

inline Clock::time_point add(Clock::time_point now, Ticks ticks) noexcept {
    Ticks sum;
    if (__builtin_add_overflow(now.time_since_epoch().count(), ticks, &sum))
        return saturated(ticks > 0);
    return Clock::time_point(Clock::duration(sum));
}

// An integral count of a unit that is a whole number of clock ticks (ns, ms, s, hours...):
// exact, no floating point on the common path.
template <class Rep, class Ratio>
Clock::time_point after(Rep count, Clock::time_point now, std::true_type) noexcept {
    Ticks ticks;
    if (__builtin_mul_overflow(count, Ratio::num, &ticks)) return saturated(count > 0);
    return add(now, ticks);
}

// Anything else (floating-point counts, units finer than a tick): in long double, which holds
// every tick count of a 64-bit clock exactly, then rounded up. The compiler's builtins (as
// __builtin_mul_overflow above) instead of <cmath>, which would weigh on every includer.
template <class Rep, class Ratio>
Clock::time_point after(Rep count, Clock::time_point now, std::false_type) {
    const long double ticks =
        __builtin_ceill(static_cast<long double>(count) * static_cast<long double>(Ratio::num) /
                        static_cast<long double>(Ratio::den));
    if (__builtin_isnan(ticks)) throw std::invalid_argument("asyncfiber: a duration is NaN");
    constexpr Ticks kMax = std::numeric_limits<Ticks>::max();
    constexpr Ticks kMin = std::numeric_limits<Ticks>::min();
    if (ticks >= static_cast<long double>(kMax)) return Clock::time_point::max();
    if (ticks <= static_cast<long double>(kMin)) return Clock::time_point::min();
    return add(now, static_cast<Ticks>(ticks));
}
}  // namespace deadline_impl

/// now + d on the loop's clock, rounded up; Clock::time_point::max() ("never") when that is
/// beyond the clock's range, min() when before it. Throws std::invalid_argument for NaN.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(
    std::chrono::duration<Rep, Period> d,
    std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    using Ratio = std::ratio_divide<Period, std::chrono::steady_clock::period>;
    using Exact = std::integral_constant<bool, std::is_integral<Rep>::value && Ratio::den == 1>;
    return deadline_impl::after<Rep, Ratio>(d.count(), now, Exact{});
}

}  // namespace detail
}  // namespace asyncfiber

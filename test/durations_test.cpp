// "Forever" and invalid durations: every API entry point that takes a duration converts it
// the same way (detail/deadline.hpp): beyond the clock's range means never, NaN is refused.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include "support/process_probes.hpp"

#include <chrono>
#include <limits>
#include <ratio>
#include <stdexcept>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
using fsec = std::chrono::duration<double>;
const fsec kInfinity{std::numeric_limits<double>::infinity()};
const fsec kNaN{std::numeric_limits<double>::quiet_NaN()};
const fsec kHuge{1e30};
}  // namespace

TEST(Deadline, SaturatesRoundsUpAndRefusesNaN) {
    using af::detail::deadline_after;
    const af::Clock::time_point now = af::Clock::now();
    EXPECT_EQ(deadline_after(std::chrono::hours::max(), now), af::Clock::time_point::max());
    EXPECT_EQ(deadline_after(std::chrono::seconds::max(), now), af::Clock::time_point::max());
    EXPECT_EQ(deadline_after(std::chrono::nanoseconds::max(), now), af::Clock::time_point::max());
    EXPECT_EQ(deadline_after(kInfinity, now), af::Clock::time_point::max());
    EXPECT_EQ(deadline_after(kHuge, now), af::Clock::time_point::max());
    EXPECT_EQ(deadline_after(std::chrono::hours::min(), now), af::Clock::time_point::min());
    EXPECT_EQ(deadline_after(-kInfinity, now), af::Clock::time_point::min());
    EXPECT_THROW(deadline_after(kNaN, now), std::invalid_argument);
    EXPECT_THROW(
        deadline_after(std::chrono::duration<float>(std::numeric_limits<float>::quiet_NaN()), now),
        std::invalid_argument);
    // In range: exact for whole ticks, rounded up (never early) otherwise.
    EXPECT_EQ(deadline_after(10ms, now), now + 10ms);
    EXPECT_EQ(deadline_after(-10ms, now), now - 10ms);
    EXPECT_EQ(deadline_after(std::chrono::duration<double, std::nano>(1.5), now), now + 2ns);
    EXPECT_EQ(deadline_after(std::chrono::duration<long long, std::pico>(1500), now), now + 2ns);
    EXPECT_EQ(deadline_after(fsec(0.25), now), now + 250ms);
}

TEST(ForeverDurations, SleepForeverWaitsUntilCancelledWithoutWakingTheLoop) {
    for (int which = 0; which < 3; ++which) {
        af::run([which] {
            int woke = 0;
            auto sleeper = af::async([&] {
                if (which == 0) af::sleep(std::chrono::hours::max());
                if (which == 1) af::sleep(kHuge);
                if (which == 2) af::sleep(kInfinity);
                ++woke;
            });
            const double cpu0 = probes::cpu_seconds();
            af::sleep(200ms);
            // An idle loop with a "never" deadline blocks: no wake-ups, no busy loop.
            EXPECT_LT(probes::cpu_seconds() - cpu0, 0.1) << which;
            EXPECT_FALSE(sleeper.done()) << which;
            EXPECT_EQ(woke, 0) << which;
            sleeper.cancel();
            EXPECT_THROW(af::await(sleeper), af::CancelledError);
            EXPECT_EQ(woke, 0);
        });
    }
}

TEST(ForeverDurations, SleepNaNThrowsAndMinusInfinityYields) {
    af::run([] {
        EXPECT_THROW(af::sleep(kNaN), std::invalid_argument);
        std::vector<int> order;
        auto other = af::async([&] { order.push_back(1); });
        af::sleep(-kInfinity);  // already past: a yield, as sleep(0)
        order.push_back(2);
        EXPECT_EQ(order, (std::vector<int>{1, 2}));
        af::await(other);
    });
}

TEST(ForeverDurations, CallLaterForeverNeverRunsAndNaNThrows) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        int ran = 0;
        af::Handle h1 = loop.call_later(std::chrono::hours::max(), [&] { ++ran; });
        af::Handle h2 = loop.call_later(kInfinity, [&] { ++ran; });
        af::Handle h3 = loop.call_later(kHuge, [&] { ++ran; });
        EXPECT_EQ(h1.when(), af::Clock::time_point::max());
        EXPECT_EQ(h2.when(), af::Clock::time_point::max());
        EXPECT_THROW(loop.call_later(kNaN, [&] { ++ran; }), std::invalid_argument);
        af::sleep(50ms);
        EXPECT_EQ(ran, 0);
        h1.cancel();
        h2.cancel();
        h3.cancel();
    });
}

TEST(ForeverDurations, TimeoutAndWaitForForeverDoNotExpire) {
    af::run([] {
        EXPECT_EQ(af::timeout(std::chrono::hours::max(),
                              [] {
                                  af::sleep(20ms);
                                  return 1;
                              }),
                  1);
        EXPECT_EQ(af::timeout(kInfinity,
                              [] {
                                  af::sleep(20ms);
                                  return 2;
                              }),
                  2);
        EXPECT_EQ(af::timeout(kHuge,
                              [] {
                                  af::sleep(20ms);
                                  return 3;
                              }),
                  3);
        EXPECT_EQ(af::wait_for(af::async([] {
                                   af::sleep(20ms);
                                   return 4;
                               }),
                               std::chrono::hours::max()),
                  4);
        EXPECT_EQ(af::wait_for(af::async([] {
                                   af::sleep(20ms);
                                   return 5;
                               }),
                               kInfinity),
                  5);
    });
}

TEST(ForeverDurations, TimeoutAndWaitForRefuseNaNAndLeaveTheTaskAlone) {
    af::run([] {
        bool ran = false;
        EXPECT_THROW(af::timeout(kNaN, [&] { ran = true; }), std::invalid_argument);
        EXPECT_FALSE(ran);
        auto t = af::async([] {
            af::sleep(20ms);
            return 6;
        });
        // asyncio times out at once here; NaN has no meaning as a duration.
        EXPECT_THROW(af::wait_for(t, kNaN), std::invalid_argument);
        EXPECT_FALSE(t.done());
        EXPECT_EQ(af::await(t), 6);
        EXPECT_FALSE(t.cancelled());
    });
}

TEST(ForeverDurations, WaitWithAForeverTimeoutWaitsForTheTasks) {
    af::run([] {
        auto a = af::async([] { af::sleep(20ms); });
        auto b = af::async([] { af::sleep(30ms); });
        af::WaitResult r =
            af::wait({a, b}, af::ReturnWhen::all_completed, std::chrono::seconds::max());
        EXPECT_EQ(r.done.size(), 2u);
        EXPECT_TRUE(r.pending.empty());
        auto c = af::async([] { af::sleep(20ms); });
        r = af::wait({c}, af::ReturnWhen::all_completed, kInfinity);
        EXPECT_EQ(r.done.size(), 1u);
        auto d = af::async([] { af::sleep(5ms); });
        EXPECT_THROW(af::wait({d}, af::ReturnWhen::all_completed, kNaN), std::invalid_argument);
        af::await(d);
    });
}

TEST(ForeverDurations, AsCompletedWithAForeverTimeoutYieldsEveryTask) {
    af::run([] {
        std::vector<af::Task<int>> ts;
        for (int i = 0; i < 3; ++i)
            ts.push_back(af::async([i] {
                af::sleep(std::chrono::milliseconds(10 * (3 - i)));
                return i;
            }));
        std::vector<int> order;
        for (auto t : af::as_completed(ts, std::chrono::hours::max()))
            order.push_back(af::await(t));
        EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
        order.clear();
        for (auto t : af::as_completed(ts, kInfinity)) order.push_back(af::await(t));
        EXPECT_EQ(order.size(), 3u);
        EXPECT_THROW(af::as_completed(ts, kNaN), std::invalid_argument);
    });
}

// Runtime guarantees: per-task exception state, misuse errors, idle behaviour, reports,
// explicit loops.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include "support/process_probes.hpp"

#include <chrono>
#include <cxxabi.h>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
// uncaught_count() is C++17; the C++ runtime has counted them all along.
int uncaught_count() {
#if __cplusplus >= 201703L
    return std::uncaught_exceptions();
#else
    struct Globals {
        void* caught;
        unsigned int uncaught;
    };
    return static_cast<int>(reinterpret_cast<Globals*>(abi::__cxa_get_globals())->uncaught);
#endif
}
std::string what_of(std::exception_ptr p) {
    try {
        std::rethrow_exception(p);
    } catch (const std::exception& e) {
        return e.what();
    }
}
}  // namespace

TEST(Exceptions, EachTaskKeepsItsOwnExceptionAcrossSuspensions) {
    af::run([] {
        std::vector<std::string> seen;
        auto body = [&](std::string name) {
            try {
                throw std::runtime_error(name);
            } catch (const std::exception&) {
                af::sleep(0s);  // the other task enters its own catch block meanwhile
                seen.push_back(name + ":" + what_of(std::current_exception()));
                af::sleep(0s);
                try {
                    throw;  // rethrows this task's exception, not the other's
                } catch (const std::runtime_error& again) {
                    seen.push_back(name + ":rethrown " + again.what());
                }
            }
            EXPECT_EQ(std::current_exception(), nullptr);
        };
        af::gather([&] { body("A"); }, [&] { body("B"); });
        EXPECT_EQ(seen, (std::vector<std::string>{"A:A", "B:B", "A:rethrown A", "B:rethrown B"}));
    });
}

TEST(Exceptions, UncaughtExceptionsCountIsPerTask) {
    af::run([] {
        struct SuspendsInDestructor {
            int* out;
            ~SuspendsInDestructor() { *out = uncaught_count(); }
        };
        int in_unwinding = -1, other = -1;
        auto a = af::async([&] {
            try {
                SuspendsInDestructor s{&in_unwinding};
                throw std::runtime_error("x");
            } catch (const std::exception&) {
            }
        });
        auto b = af::async([&] { other = uncaught_count(); });
        af::gather(a, b);
        EXPECT_EQ(in_unwinding, 1);
        EXPECT_EQ(other, 0);
    });
}

TEST(Misuse, SuspensionOutsideALoopThrowsRuntimeError) {
    EXPECT_THROW(af::sleep(1ms), af::RuntimeError);
    EXPECT_THROW(af::sleep(0s), af::RuntimeError);
    EXPECT_THROW(af::async([] {}), af::RuntimeError);
    EXPECT_THROW(af::current_task(), af::RuntimeError);
    EXPECT_THROW(af::all_tasks(), af::RuntimeError);
    EXPECT_THROW(af::Loop::current(), af::RuntimeError);
    af::Event ev;
    EXPECT_THROW(ev.wait(), af::RuntimeError);
}

TEST(Misuse, SuspensionFromALoopCallbackThrowsRuntimeError) {
    af::run([] {
        bool threw = false;
        af::Loop::current().call_soon([&] {
            try {
                af::sleep(1ms);
            } catch (const af::RuntimeError& e) {
                threw = std::string(e.what()).find("outside a task") != std::string::npos;
            }
        });
        af::sleep(1ms);
        EXPECT_TRUE(threw);
    });
}

TEST(Misuse, EmptyHandle) {
    af::Task<int> t;
    EXPECT_FALSE(t);
    EXPECT_THROW(t.done(), af::InvalidStateError);
    af::run([&] { EXPECT_THROW(af::await(t), af::InvalidStateError); });
}

TEST(Reports, UnretrievedExceptionIsReportedWithTaskName) {
    testing::internal::CaptureStderr();
    af::run([] {
        af::async(af::TaskOptions{"doomed", 0}, [] { throw std::runtime_error("lost error"); });
        af::sleep(1ms);
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("never retrieved"), std::string::npos) << err;
    EXPECT_NE(err.find("doomed"), std::string::npos) << err;
    EXPECT_NE(err.find("lost error"), std::string::npos) << err;
}

TEST(Reports, RetrievedExceptionIsNotReported) {
    testing::internal::CaptureStderr();
    af::run([] {
        auto t = af::async([] { throw std::runtime_error("seen"); });
        EXPECT_THROW(af::await(t), std::runtime_error);
    });
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(Reports, ExceptionHandlerReceivesReports) {
    af::Loop loop;
    std::vector<std::string> got;
    loop.set_exception_handler(
        [&](const af::ExceptionContext& c) { got.push_back(c.task_name + ": " + c.message); });
    loop.run_until_complete([] {
        af::async(af::TaskOptions{"w", 0}, [] { throw std::runtime_error("x"); });
        af::sleep(1ms);
    });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], "w: Task exception was never retrieved");
}

TEST(Idle, ASleepingLoopUsesNoCpu) {
    double before = probes::cpu_seconds();
    af::run([] { af::sleep(300ms); });
    EXPECT_LT(probes::cpu_seconds() - before, 0.05);
}

// A loop that other threads fed watches for their next post a few microseconds before it
// sleeps (io_driver.cpp); once they stop, it must sleep, not go on watching.
TEST(Idle, ALoopFedByAnotherThreadSleepsOnceTheFeedingStops) {
    double during = 0;
    af::run([&] {
        for (int i = 0; i < 200; ++i) EXPECT_EQ(af::to_thread([i] { return i + 1; }), i + 1);
        const double before = probes::cpu_seconds();
        af::sleep(300ms);
        during = probes::cpu_seconds() - before;
    });
    EXPECT_LT(during, 0.05);
}

TEST(ExplicitLoop, RunUntilCompleteTwiceThenClose) {
    af::Loop loop;
    EXPECT_EQ(loop.run_until_complete([] { return 1; }), 1);
    EXPECT_FALSE(loop.is_running());
    EXPECT_EQ(loop.run_until_complete([] {
        EXPECT_TRUE(af::Loop::current().is_running());
        return 2;
    }),
              2);
    loop.close();
    EXPECT_TRUE(loop.is_closed());
    EXPECT_THROW(loop.run_until_complete([] { return 3; }), af::RuntimeError);
}

TEST(ExplicitLoop, CloseFinishesTasksLeftBehind) {
    bool cleaned = false;
    {
        af::Loop loop;
        loop.run_until_complete([&] {
            af::async([&] {
                try {
                    af::sleep(100s);
                } catch (const af::CancelledError&) {
                    cleaned = true;
                    throw;
                }
            });
            af::sleep(0s);
        });
        EXPECT_FALSE(cleaned);
        loop.close();
    }
    EXPECT_TRUE(cleaned);
}

TEST(ExplicitLoop, RunForeverUntilStop) {
    af::Loop loop;
    std::vector<int> order;
    loop.call_soon([&] { order.push_back(1); });
    loop.call_later(2ms, [&] {
        order.push_back(3);
        af::Loop::current().stop();
    });
    loop.call_soon([&] { order.push_back(2); });
    loop.run_forever();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(ExplicitLoop, CancelledHandleDoesNotRun) {
    af::run([] {
        bool ran = false;
        auto h = af::Loop::current().call_later(1ms, [&] { ran = true; });
        auto h2 = af::Loop::current().call_soon([&] { ran = true; });
        h.cancel();
        h2.cancel();
        EXPECT_TRUE(h.cancelled());
        af::sleep(5ms);
        EXPECT_FALSE(ran);
    });
}

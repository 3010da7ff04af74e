// af::Future from plain threads and any thread: get(), done(), cancel(), add_done_callback(),
// and a promise's value that survives the cancellation of the task awaiting it.
#include <asyncfiber/bridge.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace af = asyncfiber;
using namespace std::chrono_literals;

TEST(FutureGet, BlocksAPlainThreadUntilATaskSetsIt) {
    af::Promise<std::string> p;
    af::Future<std::string> f = p.get_future();
    std::string got;
    std::thread reader([&] { got = f.get(); });
    af::run([&] {
        af::sleep(20ms);
        EXPECT_TRUE(got.empty());
        p.set_value("hello");
    });
    reader.join();
    EXPECT_EQ(got, "hello");
    EXPECT_THROW(f.get(), af::InvalidStateError);  // moved out by the first get
}

TEST(FutureGet, RethrowsTheExceptionAndReportsABrokenPromise) {
    af::Promise<int> p;
    auto f = p.get_future();
    std::thread setter([&] { p.set_exception(std::make_exception_ptr(std::out_of_range("x"))); });
    EXPECT_THROW(f.get(), std::out_of_range);
    setter.join();

    af::Future<int> g;
    {
        af::Promise<int> q;
        g = q.get_future();
    }
    EXPECT_TRUE(g.done());
    EXPECT_THROW(g.get(), af::BrokenPromise);
}

TEST(FutureGet, RefusedOnAThreadThatRunsALoop) {
    af::Promise<int> p;
    auto f = p.get_future();
    af::run([&] {
        EXPECT_THROW(f.get(), af::RuntimeError);
        // Refused even when the value is there: the rule does not depend on timing.
        p.set_value(3);
        EXPECT_THROW(f.get(), af::RuntimeError);
        EXPECT_EQ(af::await(f), 3);
    });
}

TEST(FutureGet, EmptyFutureIsMisuse) {
    af::Future<int> f;
    EXPECT_THROW(f.get(), af::InvalidStateError);
    EXPECT_THROW(f.cancel(), af::InvalidStateError);
    EXPECT_THROW(f.add_done_callback([] {}), af::InvalidStateError);
    EXPECT_FALSE(f.done());
}

TEST(FutureDone, FollowsTheCompletion) {
    af::Promise<void> p;
    auto f = p.get_future();
    EXPECT_FALSE(f.done());
    p.set_value();
    EXPECT_TRUE(f.done());
    f.get();
}

TEST(FutureCancel, CompletesWithCancelledErrorAndALaterSetIsIgnoredAndReported) {
    af::Promise<int> p;
    auto f = p.get_future();
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.done());
    EXPECT_TRUE(f.cancel());  // still cancelled: as concurrent.futures, true again
    testing::internal::CaptureStderr();
    EXPECT_NO_THROW(p.set_value(5));
    EXPECT_NO_THROW(p.set_exception(std::make_exception_ptr(std::logic_error("late"))));
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("a Promise whose Future was cancelled was completed more than once"),
              std::string::npos)
        << err;
    EXPECT_THROW(f.get(), af::CancelledError);
}

TEST(FutureCancel, ADoneFutureIsNotCancelled) {
    af::Promise<int> p;
    auto f = p.get_future();
    p.set_value(1);
    EXPECT_FALSE(f.cancel());
    EXPECT_EQ(f.get(), 1);
    // A second set is still an error of the caller: only a cancelled future forgives it.
    EXPECT_THROW(p.set_value(2), af::InvalidStateError);
}

TEST(FutureCancel, FromAnotherThreadWakesTheAwaitingTask) {
    af::Promise<int> p;
    auto f = p.get_future();
    af::run([&] {
        std::thread canceller([&] {
            std::this_thread::sleep_for(10ms);
            f.cancel();
        });
        EXPECT_THROW(af::await(f), af::CancelledError);
        canceller.join();
        // The future was cancelled, not the task: it goes on.
        af::sleep(0ms);
    });
}

TEST(FutureDoneCallback, RunsOnTheCompletingThread) {
    af::Promise<int> p;
    auto f = p.get_future();
    std::thread::id ran_on;
    std::atomic<int> calls{0};
    f.add_done_callback([&] {
        ran_on = std::this_thread::get_id();
        ++calls;
    });
    std::thread::id setter_id;
    std::thread setter([&] {
        setter_id = std::this_thread::get_id();
        p.set_value(4);
    });
    setter.join();
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(ran_on, setter_id);
    // Done already: runs at once, here.
    f.add_done_callback([&] {
        EXPECT_EQ(std::this_thread::get_id(), std::this_thread::get_id());
        ++calls;
    });
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(f.get(), 4);
}

TEST(FutureDoneCallback, RunsOnCancelAndItsExceptionIsReported) {
    af::Promise<int> p;
    auto f = p.get_future();
    int calls = 0;
    f.add_done_callback([] { throw std::runtime_error("callback failed"); });
    f.add_done_callback([&] { ++calls; });
    testing::internal::CaptureStderr();
    f.cancel();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("callback failed"), std::string::npos) << err;
    EXPECT_EQ(calls, 1);
    EXPECT_THROW(f.add_done_callback(std::function<void()>()), std::invalid_argument);
}

// Legacy code sets the promise on its own thread after the task that awaited it was
// cancelled: nothing is lost, a later await gets the value.
TEST(FutureAwait, CancellingTheAwaitingTaskLeavesTheFutureAsItIs) {
    af::Promise<std::unique_ptr<int>> p;
    auto f = p.get_future();
    af::run([&] {
        auto t = af::async([&] { return *af::await(f); });
        af::sleep(0ms);
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_FALSE(f.done());
        std::thread legacy([&] { p.set_value(std::unique_ptr<int>(new int(42))); });
        legacy.join();
        EXPECT_TRUE(f.done());
        EXPECT_EQ(*af::await(f), 42);
    });
}

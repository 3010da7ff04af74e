// The callables the API's callback parameters take (Loop::call_soon and its kin,
// add_done_callback, the loop's handlers, a server's connection handler): any callable, a
// move-only one included, kept inside the callback or on the heap, destroyed exactly once;
// an empty one (nullptr, an empty std::function, a null function pointer) is refused or
// restores the default where the API says so.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// Counts how many objects are alive, so that a leak or a double destruction shows.
struct Counted {
    static int alive;
    Counted() { ++alive; }
    Counted(const Counted&) { ++alive; }
    Counted(Counted&&) noexcept { ++alive; }
    ~Counted() { --alive; }
};
int Counted::alive = 0;

int g_calls = 0;
void plain_function() { ++g_calls; }

}  // namespace

TEST(Callback, HoldsSmallAndLargeMoveOnlyCallablesAndDestroysEachOnce) {
    using Cb = af::detail::Callback<int(int)>;
    {
        auto p = std::make_unique<int>(40);
        Cb small = [p = std::move(p), c = Counted()](int v) { return *p + v; };
        std::vector<char> pad(100, 'x');
        Cb large = [pad, c = Counted(), more = std::string(64, 'y')](int v) {
            return static_cast<int>(pad.size()) + v;
        };
        EXPECT_EQ(Counted::alive, 2);
        EXPECT_EQ(small(2), 42);
        EXPECT_EQ(large(1), 101);
        Cb moved = std::move(small);        // the inline one moves its callable
        Cb moved_large = std::move(large);  // the heap one moves its pointer
        EXPECT_FALSE(small);
        EXPECT_FALSE(large);
        EXPECT_EQ(Counted::alive, 2);
        EXPECT_EQ(moved(0), 40);
        EXPECT_EQ(moved_large(0), 100);
        moved = std::move(moved_large);  // destroys the inline one, takes the heap one
        EXPECT_EQ(Counted::alive, 1);
        EXPECT_EQ(moved(0), 100);
        moved = nullptr;
        EXPECT_EQ(Counted::alive, 0);
        EXPECT_FALSE(moved);
    }
    EXPECT_EQ(Counted::alive, 0);
}

TEST(Callback, EmptyFromNullptrAnEmptyStdFunctionOrANullPointer) {
    af::detail::Callback<void()> a = nullptr;
    std::function<void()> empty;
    af::detail::Callback<void()> b = empty;
    void (*null_fn)() = nullptr;
    af::detail::Callback<void()> c = null_fn;
    af::detail::Callback<void()> d;
    EXPECT_FALSE(a);
    EXPECT_FALSE(b);
    EXPECT_FALSE(c);
    EXPECT_FALSE(d);
    EXPECT_THROW(a(), af::InvalidStateError);
    af::detail::Callback<void()> f = &plain_function;
    af::detail::Callback<void()> g = plain_function;
    std::function<void()> full = plain_function;
    af::detail::Callback<void()> h = full;  // a copy of the std::function
    g_calls = 0;
    f();
    g();
    h();
    full();
    EXPECT_EQ(g_calls, 4);
}

TEST(Callback, ADiscardedResultAndConvertedArguments) {
    int seen = 0;
    af::detail::Callback<void(int)> f = [&](long v) { return seen = static_cast<int>(v); };
    f(7);
    EXPECT_EQ(seen, 7);
    std::string got;
    af::detail::Callback<void(const std::string&)> g = [&](std::string s) { got = s; };
    g("text");
    EXPECT_EQ(got, "text");
}

TEST(Callback, CallSoonAndCallLaterRunMoveOnlyCallables) {
    std::vector<int> order;
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        auto one = std::make_unique<int>(1);
        auto two = std::make_unique<int>(2);
        auto three = std::make_unique<int>(3);
        loop.call_later(10ms, [p = std::move(three), &order] { order.push_back(*p); });
        loop.call_soon([p = std::move(one), &order] { order.push_back(*p); });
        loop.call_soon_threadsafe([p = std::move(two), &order] { order.push_back(*p); });
        af::sleep(50ms);
    });
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(Callback, EmptyCallablesAreRefusedWhereAFunctionIsNeeded) {
    af::run([&] {
        af::Loop& loop = af::Loop::current();
        std::function<void()> empty;
        EXPECT_THROW(loop.call_soon(empty), std::invalid_argument);
        EXPECT_THROW(loop.call_soon(nullptr), std::invalid_argument);
        EXPECT_THROW(loop.call_later(1ms, empty), std::invalid_argument);
        EXPECT_THROW(loop.call_soon_threadsafe(empty), std::invalid_argument);
        EXPECT_THROW(loop.add_signal_handler(SIGUSR1, empty), std::invalid_argument);
        af::Task<void> t = af::async([] {});
        EXPECT_THROW(t.add_done_callback(nullptr), std::invalid_argument);
        af::await(t);
    });
}

TEST(Callback, AnEmptyExceptionHandlerRestoresTheDefault) {
    int handled = 0;
    af::Loop loop;
    loop.set_exception_handler([&](const af::ExceptionContext&) { ++handled; });
    loop.run_until_complete([&] {
        af::Loop::current().call_soon([] { throw std::runtime_error("boom"); });
        af::sleep(1ms);
    });
    EXPECT_EQ(handled, 1);
    loop.set_exception_handler(nullptr);
    testing::internal::CaptureStderr();
    loop.run_until_complete([&] {
        af::Loop::current().call_soon([] { throw std::runtime_error("boom again"); });
        af::sleep(1ms);
    });
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(handled, 1);
    EXPECT_NE(err.find("boom again"), std::string::npos) << err;
    loop.close();
}

TEST(Callback, DoneCallbacksOfTasksAndFuturesTakeMoveOnlyCallables) {
    std::vector<std::string> got;
    af::run([&] {
        af::Task<int> t = af::async([] { return 5; });
        auto tag = std::make_unique<std::string>("task");
        t.add_done_callback([tag = std::move(tag), &got](af::TaskRef r) {
            got.push_back(*tag + (r.done() ? " done" : " pending"));
        });
        af::Promise<int> p;
        af::Future<int> f = p.get_future();
        auto tag2 = std::make_unique<std::string>("future");
        f.add_done_callback([tag2 = std::move(tag2), &got] { got.push_back(*tag2); });
        p.set_value(1);
        EXPECT_EQ(af::await(t), 5);
        af::sleep(0s);
    });
    EXPECT_EQ(got, (std::vector<std::string>{"future", "task done"}));
}

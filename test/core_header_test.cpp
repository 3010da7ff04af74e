// asyncfiber/core.hpp and the thread bridge's parts compile without Boost.Asio: this file
// includes nothing else of the library, fails to compile if any of them brings Asio back (its
// config header is the first thing every Asio header includes), and checks that what core.hpp
// gives works together: promises, to_thread, timeouts, wait_for and a queue.
#include <asyncfiber/core.hpp>

#ifdef BOOST_ASIO_DETAIL_CONFIG_HPP
#error "asyncfiber/core.hpp brought in Boost.Asio (only use_await.hpp and its includers may)"
#endif

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <system_error>

namespace af = asyncfiber;
using namespace std::chrono_literals;

TEST(CoreHeader, PromiseSetFromAPoolThreadIsAwaited) {
    int v = af::run([] {
        af::Promise<int> p;
        af::Future<int> f = p.get_future();
        af::to_thread([&p] { p.set_value(41); });
        return af::await(f) + 1;
    });
    EXPECT_EQ(v, 42);
}

TEST(CoreHeader, AwaitCallbackTakesAStdErrorCodeFirst) {
    EXPECT_THROW(af::run([] {
                     return af::await_callback<int>([](af::Callback<int> cb) {
                         cb(std::make_error_code(std::errc::timed_out), 0);
                     });
                 }),
                 std::system_error);
}

TEST(CoreHeader, TimeoutsAndWaitForFromCore) {
    std::string what = af::run([] {
        af::Queue<int> q;
        try {
            af::timeout(10ms, [&q] { q.get(); });  // nothing is ever put
        } catch (const af::TimeoutError&) {
            q.put_nowait(7);
            int got = af::wait_for([&q] { return q.get(); }, 1s);
            return "timeout, then " + std::to_string(got);
        }
        return std::string("no timeout");
    });
    EXPECT_EQ(what, "timeout, then 7");
}

// af::use_await: Boost.Asio operations awaited by a task.
#include <asyncfiber/bridge.hpp>
#include <asyncfiber/gather.hpp>
#include <asyncfiber/wait.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace af = asyncfiber;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A connected pair of loopback sockets on the loop's io_context.
struct SocketPair {
    explicit SocketPair(asio::io_context& io) : a(io), b(io) {
        tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        a.connect(acc.local_endpoint());
        acc.accept(b);
    }
    tcp::socket a, b;
};

}  // namespace

// The other task yields rather than sleeping: the order then depends on the loop's iterations
// only (the timer's completion waits for the loop to look at I/O), not on a 1 ms sleep ending
// before a 20 ms timer on a machine busy enough to pause the process longer than that.
TEST(UseAwait, TimerSuspendsOnlyTheCallingTask) {
    std::vector<std::string> order;
    af::run([&] {
        auto other = af::async([&] {
            order.push_back("other start");
            af::sleep(0s);
            order.push_back("other end");
        });
        asio::steady_timer t(af::Loop::current().io_context(), 20ms);
        order.push_back("wait");
        t.async_wait(af::use_await);
        order.push_back("timer done");
        af::await(other);
    });
    std::vector<std::string> expected{"wait", "other start", "other end", "timer done"};
    EXPECT_EQ(order, expected);
}

TEST(UseAwait, ReadAndWriteReturnByteCounts) {
    af::run([] {
        SocketPair p(af::Loop::current().io_context());
        auto writer = af::async([&] {
            std::string msg = "hello, fiber";
            return asio::async_write(p.a, asio::buffer(msg), af::use_await);
        });
        char buf[12];
        std::size_t n = asio::async_read(p.b, asio::buffer(buf), af::use_await);
        EXPECT_EQ(n, 12u);
        EXPECT_EQ(std::string(buf, n), "hello, fiber");
        EXPECT_EQ(af::await(writer), 12u);
    });
}

TEST(UseAwait, ErrorThrowsSystemError) {
    af::run([] {
        SocketPair p(af::Loop::current().io_context());
        p.a.close();
        char buf[4];
        try {
            asio::async_read(p.b, asio::buffer(buf), af::use_await);
            FAIL() << "no exception";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), asio::error::eof);
        }
    });
}

TEST(UseAwait, ErrorCodeFormStoresAndClears) {
    af::run([] {
        SocketPair p(af::Loop::current().io_context());
        boost::system::error_code ec = asio::error::timed_out;  // must be cleared on success
        std::string msg = "ab";
        std::size_t n = asio::async_write(p.a, asio::buffer(msg), af::use_await[ec]);
        EXPECT_FALSE(ec);
        EXPECT_EQ(n, 2u);
        p.a.close();
        char buf[4];
        n = asio::async_read(p.b, asio::buffer(buf), af::use_await[ec]);
        EXPECT_EQ(ec, asio::error::eof);
        EXPECT_EQ(n, 2u);  // the partial count comes with the error
    });
}

TEST(UseAwait, PostWithoutErrorCode) {
    af::run([] {
        int ran = 0;
        asio::post(af::Loop::current().io_context(), af::use_await);
        ++ran;
        EXPECT_EQ(ran, 1);
    });
}

TEST(UseAwait, CancelWakesTaskPromptlyAndDropsLateCompletion) {
    af::run([] {
        asio::steady_timer timer(af::Loop::current().io_context(), 100ms);
        bool cancelled = false;
        auto t = af::async([&] {
            try {
                timer.async_wait(af::use_await);  // not bound: the timer runs on
            } catch (const af::CancelledError&) {
                cancelled = true;
                throw;
            }
        });
        af::sleep(1ms);
        auto start = af::Clock::now();
        t.cancel();
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_TRUE(cancelled);
        EXPECT_LT(af::Clock::now() - start, 50ms);
        // The operation is still pending; its handler must find nobody and be dropped.
        af::sleep(150ms);
    });
}

TEST(UseAwait, CancelsBoundObject) {
    af::run([] {
        SocketPair p(af::Loop::current().io_context());
        auto t = af::async([&] {
            char buf[8];
            asio::async_read(p.b, asio::buffer(buf), af::use_await.cancels(p.b));
        });
        af::sleep(1ms);
        t.cancel("stop");
        try {
            af::await(t);
            FAIL() << "no exception";
        } catch (const af::CancelledError& e) {
            EXPECT_EQ(e.message(), "stop");
        }
        // The socket's pending read was aborted, so a new read works at once.
        std::string msg = "xy";
        asio::async_write(p.a, asio::buffer(msg), af::use_await);
        char buf[2];
        EXPECT_EQ(asio::async_read(p.b, asio::buffer(buf), af::use_await), 2u);
        EXPECT_EQ(std::string(buf, 2), "xy");
    });
}

namespace {
// What the running loop reports to its exception handler goes to `reports`.
void record_reports(std::vector<std::string>& reports) {
    af::Loop::current().set_exception_handler(
        [&reports](const af::ExceptionContext& c) { reports.push_back(c.message); });
}

// A read of p.b with `token` under a timeout that expires; then p.a sends "reply" and the
// loop runs for a while (a read left behind takes it meanwhile).
void read_times_out_then_reply_comes(SocketPair& p, char (&buf)[16], af::use_await_t token) {
    EXPECT_THROW(af::timeout(5ms, [&] { return p.b.async_read_some(asio::buffer(buf), token); }),
                 af::TimeoutError);
    std::string reply = "reply";
    asio::async_write(p.a, asio::buffer(reply), af::use_await);
    af::sleep(20ms);
}
}  // namespace

// The report that led here: a read under af::timeout without .cancels(obj) keeps running
// after the timeout and takes the next reply, which the following read then misses. The
// loss cannot go unnoticed: the orphaned completion that carried data is reported to the
// loop's exception handler, naming the remedy.
TEST(UseAwait, OrphanedCompletionWithDataIsReported) {
    std::vector<std::string> reports;
    af::run([&] {
        record_reports(reports);
        SocketPair p(af::Loop::current().io_context());
        char buf[16];
        read_times_out_then_reply_comes(p, buf, af::use_await);
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_NE(reports[0].find("af::use_await"), std::string::npos) << reports[0];
        EXPECT_NE(reports[0].find(".cancels("), std::string::npos) << reports[0];
    });
}

// With .cancels(obj) the operation ends with its task: nothing is lost, nothing reported,
// and the next read gets the reply.
TEST(UseAwait, OperationCancelledWithItsTaskLosesNothing) {
    std::vector<std::string> reports;
    af::run([&] {
        record_reports(reports);
        SocketPair p(af::Loop::current().io_context());
        char buf[16];
        read_times_out_then_reply_comes(p, buf, af::use_await.cancels(p.b));
        std::size_t n = asio::async_read(p.b, asio::buffer(buf, 5), af::use_await);
        EXPECT_EQ(std::string(buf, n), "reply");
        EXPECT_TRUE(reports.empty());
    });
}

// An orphaned completion without data (a timer that fires after its task stopped waiting)
// loses nothing; debug mode reports it all the same, as it reports any operation left
// running by a task that stopped waiting.
TEST(UseAwait, OrphanedCompletionWithoutDataIsReportedInDebugModeOnly) {
    std::vector<std::string> reports;
    af::run([&] {
        record_reports(reports);
        asio::steady_timer quiet(af::Loop::current().io_context(), 10ms);
        EXPECT_THROW(af::timeout(1ms, [&] { quiet.async_wait(af::use_await); }), af::TimeoutError);
        af::sleep(30ms);
        EXPECT_TRUE(reports.empty());

        af::Loop::current().set_debug(true);
        asio::steady_timer loud(af::Loop::current().io_context(), 10ms);
        EXPECT_THROW(af::timeout(1ms, [&] { loud.async_wait(af::use_await); }), af::TimeoutError);
        af::sleep(30ms);
        af::Loop::current().set_debug(false);
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_NE(reports[0].find("af::use_await"), std::string::npos) << reports[0];
    });
}

TEST(UseAwait, PendingCancellationDoesNotStartTheOperation) {
    af::run([] {
        asio::steady_timer timer(af::Loop::current().io_context(), 1h);
        bool reached_after = false;
        auto t = af::async([&] {
            af::current_task().cancel();
            timer.async_wait(af::use_await);
            reached_after = true;
        });
        EXPECT_THROW(af::await(t), af::CancelledError);
        EXPECT_FALSE(reached_after);
        // Had the wait started, cancelling the timer would abort one operation.
        EXPECT_EQ(timer.cancel(), 0u);
    });
}

TEST(UseAwait, OutsideATaskThrowsRuntimeError) {
    asio::io_context io;
    asio::steady_timer t(io, 1ms);
    EXPECT_THROW(t.async_wait(af::use_await), af::RuntimeError);
}

TEST(UseAwait, HandlerOnForeignIoContextRunsOnLoopThread) {
    // An I/O object of another io_context, run by another thread: the completion still
    // wakes the task through the loop's thread.
    asio::io_context other;
    auto guard = asio::make_work_guard(other);
    std::thread th([&] { other.run(); });
    af::run([&] {
        asio::steady_timer t(other, 5ms);
        t.async_wait(af::use_await);
        boost::system::error_code ec;
        asio::steady_timer t2(other, 1ms);
        t2.async_wait(af::use_await[ec]);
        EXPECT_FALSE(ec);
    });
    guard.reset();
    th.join();
}

// The race behind a rare crash of the test above: the other io_context's thread posts the
// handler to the loop, then tells the loop's io_context that the operation's work is over.
// The loop may run the handler, end its task and close in between; its io_context must still
// be there for that last call (an ASan build reports the use after free; a plain build
// crashed now and then). Many short loops make the window come up.
TEST(UseAwait, ForeignCompletionAsTheLoopEndsTouchesNoDestroyedIoContext) {
    asio::io_context other;
    auto guard = asio::make_work_guard(other);
    std::thread th([&] { other.run(); });
    int completed = 0;
    for (int i = 0; i < 500; ++i) {
        af::run([&] {
            asio::steady_timer t(other, std::chrono::microseconds(i % 3));
            t.async_wait(af::use_await);
            ++completed;
        });
    }
    guard.reset();
    th.join();
    EXPECT_EQ(completed, 500);
}

TEST(UseAwait, ManyConcurrentTasks) {
    af::run([] {
        std::vector<af::Task<int>> tasks;
        for (int i = 0; i < 200; ++i)
            tasks.push_back(af::async([i] {
                asio::steady_timer t(af::Loop::current().io_context(),
                                     std::chrono::microseconds((i * 37) % 3000));
                t.async_wait(af::use_await);
                return i;
            }));
        auto results = af::gather(tasks);
        for (int i = 0; i < 200; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)], i);
    });
}

TEST(UseAwait, ResolverReturnsResults) {
    af::run([] {
        tcp::resolver r(af::Loop::current().io_context());
        auto results = r.async_resolve("127.0.0.1", "80", af::use_await);
        ASSERT_FALSE(results.empty());
        EXPECT_EQ(results.begin()->endpoint().port(), 80);
        EXPECT_TRUE(results.begin()->endpoint().address().is_loopback());
    });
}

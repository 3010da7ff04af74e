// The cooperative budget: a task whose operations keep completing at once (a stream that
// always has data, a queue that always has items, a lock nobody else wants) still lets the
// others run, and a cancellation landing at the yield this forces loses nothing. Counts and
// orders only: how many operations ran between two turns of another task.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include <gtest/gtest.h>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// Far above the budget (128 operations), far below the operations each test makes: a task
// that never yields between two of its operations fails, whatever the budget's exact size.
constexpr long kMostOpsBetweenTurns = 1000;

// Runs `op` n times in the calling task while another task counts its own turns and a timer
// callback (due at once) keeps rescheduling itself; returns the largest number of
// consecutive operations during which the other task or the timer did not run.
long longest_run_without_the_others(long n, const std::function<void(long)>& op) {
    long turns = 0, callbacks = 0;
    bool stop = false;
    auto other = af::async([&] {
        while (!stop) {
            ++turns;
            af::sleep(0s);
        }
    });
    af::Loop& loop = af::Loop::current();
    af::Handle next;
    std::function<void()> tick = [&] {
        ++callbacks;
        next = loop.call_later(0s, tick);
    };
    next = loop.call_later(0s, tick);
    af::sleep(0s);  // both have run once
    long longest = 0, run = 0, seen_turns = turns, seen_callbacks = callbacks;
    for (long i = 0; i < n; ++i) {
        op(i);
        if (turns == seen_turns || callbacks == seen_callbacks) {
            ++run;
        } else {
            run = 0;
            seen_turns = turns;
            seen_callbacks = callbacks;
        }
        longest = std::max(longest, run);
    }
    stop = true;
    af::await(other);
    next.cancel();
    return longest;
}

// An Asio operation that completes inside its initiation: with af::use_await, it never waits.
template <class Token>
auto complete_at_once(int v, Token&& token)
    -> decltype(boost::asio::async_initiate<Token, void(boost::system::error_code, int)>(
        std::declval<void (*)(
            af::detail::UseAwaitHandler<std::tuple<boost::system::error_code, int>>, int)>(),
        token, v)) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, int)>(
        [](auto handler, int value) { handler(boost::system::error_code(), value); }, token, v);
}

}  // namespace

TEST(Budget, ReaderOfAStreamThatAlwaysHasDataLetsOthersRun) {
    af::run([] {
        af::debug::FedStream s;
        af::StreamReader r = s.reader();
        std::string all;
        for (int i = 0; i < 20000; ++i) all += "line " + std::to_string(i) + "\n";
        s.feed_data(all);  // everything is buffered: no read ever has to wait
        long lines = 0;
        const long longest = longest_run_without_the_others(20000, [&](long i) {
            EXPECT_EQ(r.readline(), "line " + std::to_string(i) + "\n");
            ++lines;
        });
        EXPECT_EQ(lines, 20000);
        EXPECT_LE(longest, kMostOpsBetweenTurns);
    });
}

TEST(Budget, ReadExactlyAndReadOfBufferedDataLetOthersRun) {
    af::run([] {
        af::debug::FedStream s;
        af::StreamReader r = s.reader();
        s.feed_data(std::string(40000, 'x'));
        const long longest = longest_run_without_the_others(20000, [&](long i) {
            if (i % 2)
                EXPECT_EQ(r.readexactly(1), "x");
            else
                EXPECT_EQ(r.read(1), "x");
        });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
    });
}

TEST(Budget, WriterWhoseWritesTheSocketAcceptsAtOnceLetsOthersRun) {
    af::run([] {
        long received = 0;
        af::Server server = af::start_server(
            [&](af::StreamReader rd, af::StreamWriter w) {
                received += static_cast<long>(rd.read().size());
                w.close();
            },
            "127.0.0.1", 0);
        auto rw = af::open_connection("127.0.0.1", server.port());
        // 3 000 writes of 16 bytes: far less than the socket buffers hold, so every write
        // is taken at once and every drain returns at once.
        const long longest = longest_run_without_the_others(3000, [&](long) {
            rw.second.write(std::string(16, 'w'));
            rw.second.drain();
        });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
        rw.second.close();
        rw.second.wait_closed();
        server.close();
        server.wait_closed();
        EXPECT_EQ(received, 3000 * 16);
    });
}

TEST(Budget, DatagramsSentAndReceivedAtOnceLetOthersRun) {
    af::run([] {
        af::DatagramOptions a;
        a.local_host = "127.0.0.1";
        af::DatagramEndpoint receiver = af::create_datagram_endpoint(a);
        af::DatagramOptions b;
        b.remote_host = "127.0.0.1";
        b.remote_port = receiver.local_address().port;
        af::DatagramEndpoint sender = af::create_datagram_endpoint(b);
        // Rounds of 100 sends then 100 receives: the receiver's buffer (rmem_default, about
        // 200 KiB: some 270 small datagrams on loopback) holds a round, so no send and no
        // receive ever waits, and none is dropped. 1 200 operations in all.
        long sent = 0, received = 0;
        const long longest = longest_run_without_the_others(1200, [&](long i) {
            if (i % 200 < 100)
                sender.send(std::to_string(sent++));
            else
                EXPECT_EQ(receiver.recvfrom().data, std::to_string(received++));
        });
        EXPECT_EQ(received, 600);
        EXPECT_LE(longest, kMostOpsBetweenTurns / 4);
    });
}

TEST(Budget, QueueGetsAndPutsThatNeverWaitLetOthersRun) {
    af::run([] {
        af::Queue<long> q;
        long longest = longest_run_without_the_others(20000, [&](long i) { q.put(i); });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
        longest = longest_run_without_the_others(20000, [&](long i) { EXPECT_EQ(q.get(), i); });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
    });
}

TEST(Budget, UncontendedAcquisitionsLetOthersRun) {
    af::run([] {
        af::Lock lock;
        af::Semaphore sem(1);
        af::Event ev;
        ev.set();
        const long longest = longest_run_without_the_others(20000, [&](long i) {
            switch (i % 3) {
            case 0:
                lock.lock();
                lock.unlock();
                break;
            case 1:
                sem.acquire();
                sem.release();
                break;
            default:
                ev.wait();
            }
        });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
        EXPECT_FALSE(lock.locked());
        EXPECT_EQ(sem.value(), 1);
    });
}

TEST(Budget, UseAwaitOperationsThatCompleteAtOnceLetOthersRun) {
    af::run([] {
        const long longest = longest_run_without_the_others(20000, [&](long i) {
            EXPECT_EQ(complete_at_once(static_cast<int>(i), af::use_await), static_cast<int>(i));
        });
        EXPECT_LE(longest, kMostOpsBetweenTurns);
    });
}

// A cancellation can land at the yield a spent budget forces: it must take nothing with it.
TEST(Budget, CancelledAtTheBudgetYieldNoItemIsLost) {
    af::run([] {
        const long n = 100000;  // more than the consumer takes before it is cancelled
        for (long when = 1; when < 60; when += 7) {
            af::Queue<long> q;
            for (long i = 0; i < n; ++i) q.put_nowait(i);
            std::vector<long> got;
            auto consumer = af::async([&] {
                for (;;) got.push_back(q.get());  // never waits: only the budget yields
            });
            auto canceller = af::async([&] {
                for (long k = 0; k < when; ++k) af::sleep(0s);
                consumer.cancel();
            });
            EXPECT_THROW(af::await(consumer), af::CancelledError);
            af::await(canceller);
            ASSERT_LT(got.size(), static_cast<std::size_t>(n));  // cancelled at a budget yield
            for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<long>(i));
            EXPECT_EQ(got.size() + q.qsize(), static_cast<std::size_t>(n)) << when;
            EXPECT_EQ(q.get_nowait(), static_cast<long>(got.size()));
        }
    });
}

TEST(Budget, CancelledAtTheBudgetYieldNoByteIsLost) {
    af::run([] {
        for (long when = 1; when < 60; when += 7) {
            af::debug::FedStream s;
            af::StreamReader r = s.reader();
            std::string all;
            for (int i = 0; i < 100000; ++i) all += std::to_string(i) + "\n";
            s.feed_data(all);
            std::string read;
            auto reader = af::async([&] {
                for (;;) read += r.readline();
            });
            auto canceller = af::async([&] {
                for (long k = 0; k < when; ++k) af::sleep(0s);
                reader.cancel();
            });
            EXPECT_THROW(af::await(reader), af::CancelledError);
            af::await(canceller);
            ASSERT_LT(read.size(), all.size());  // cancelled at a budget yield
            EXPECT_EQ(read + r.read(static_cast<std::ptrdiff_t>(r.buffered())), all) << when;
        }
    });
}

TEST(Budget, CancelledAtTheBudgetYieldTheLockIsNotLeftHeld) {
    af::run([] {
        af::Lock lock;
        long held = 0;
        auto locker = af::async([&] {
            for (;;) {
                std::lock_guard<af::Lock> g(lock);
                ++held;
            }
        });
        for (int k = 0; k < 50; ++k) af::sleep(0s);
        locker.cancel();
        EXPECT_THROW(af::await(locker), af::CancelledError);
        EXPECT_GT(held, 0);
        EXPECT_FALSE(lock.locked());
    });
}

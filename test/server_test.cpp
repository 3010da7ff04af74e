// Servers: many connections, handler failures, descriptor exhaustion, closing; signals.
#include <asyncfiber/asyncfiber.hpp>

#include "support/process_probes.hpp"
#include "support/raw_sockets.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <fcntl.h>
#include <functional>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
void echo_lines(af::StreamReader r, af::StreamWriter w) {
    for (std::string line; !(line = r.readline()).empty();) {
        w.write(line);
        w.drain();
    }
}
double cpu_seconds() {
    rusage ru;
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
}  // namespace

TEST(Server, ThousandConcurrentConnections) {
    af::run([] {
        int served = 0;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                ++served;
                echo_lines(r, w);
            },
            "127.0.0.1", 0, af::ServerOptions{af::default_stream_limit, 1024, false});
        const int n = 1000;
        std::vector<af::Task<std::string>> clients;
        for (int i = 0; i < n; ++i)
            clients.push_back(af::async([&s, i] {
                auto rw = af::open_connection("127.0.0.1", s.port());
                std::string msg = "client " + std::to_string(i) + "\n";
                rw.second.write(msg);
                af::sleep(1ms);  // every connection is open at once
                std::string got = rw.first.readline();
                rw.second.close();
                return got == msg ? std::string("ok") : got;
            }));
        int ok = 0;
        for (auto& r : af::gather(std::move(clients))) ok += r == "ok";
        EXPECT_EQ(ok, n);
        s.close();
        s.wait_closed();
        EXPECT_EQ(served, n);
    });
}

TEST(Server, ThrowingHandlerIsLoggedAndTheServerGoesOn) {
    af::run([] {
        std::vector<std::string> reports;
        af::Loop::current().set_exception_handler(
            [&](const af::ExceptionContext& c) { reports.push_back(c.message); });
        af::Server s = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                std::string line = r.readline();
                if (line == "boom\n") throw std::runtime_error("handler failed");
                w.write(line);
            },
            "127.0.0.1", 0);
        auto a = af::open_connection("127.0.0.1", s.port());
        a.second.write("boom\n");
        EXPECT_EQ(a.first.read(-1), "");  // the failed handler's connection is closed
        auto b = af::open_connection("127.0.0.1", s.port());
        b.second.write("fine\n");
        EXPECT_EQ(b.first.readline(), "fine\n");
        s.close();
        s.wait_closed();
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_NE(reports[0].find("connection handler"), std::string::npos);
    });
}

TEST(Server, CloseStopsAcceptingAndWaitClosedWaitsForConnections) {
    af::run([] {
        af::Event release;
        std::vector<int> order;
        af::Server s = af::start_server(
            [&](af::StreamReader, af::StreamWriter) {
                release.wait();
                order.push_back(1);
            },
            "127.0.0.1", 0);
        auto c = af::open_connection("127.0.0.1", s.port());
        af::sleep(10ms);  // the connection task runs and waits
        EXPECT_TRUE(s.is_serving());
        s.close();
        EXPECT_FALSE(s.is_serving());
        EXPECT_THROW(af::open_connection("127.0.0.1", s.port()), std::system_error);
        auto closer = af::async([&] {
            s.wait_closed();
            order.push_back(2);
        });
        af::sleep(10ms);
        EXPECT_TRUE(order.empty());  // the connection task still runs
        release.set();
        af::await(closer);
        EXPECT_EQ(order, (std::vector<int>{1, 2}));
    });
}

TEST(Server, ServeForeverEndsOnCloseAndOnCancel) {
    af::run([] {
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0);
        auto forever = af::async([s]() mutable { s.serve_forever(); });
        af::sleep(5ms);
        s.close();
        af::await(forever);  // returns normally
        af::Server s2 = af::start_server(echo_lines, "127.0.0.1", 0);
        auto f2 = af::async([s2]() mutable { s2.serve_forever(); });
        af::sleep(5ms);
        f2.cancel();
        EXPECT_THROW(af::await(f2), af::CancelledError);
        EXPECT_FALSE(s2.is_serving());
    });
}

TEST(Server, WildcardListensOnBothFamilies) {
    af::run([] {
        af::Server s = af::start_server(echo_lines, "", 0);
        ASSERT_GE(s.addresses().size(), 1u);
        auto v4 = af::open_connection("127.0.0.1", s.port());
        v4.second.write("4\n");
        EXPECT_EQ(v4.first.readline(), "4\n");
        if (s.addresses().size() == 2) {
            auto v6 = af::open_connection("::1", s.port());
            v6.second.write("6\n");
            EXPECT_EQ(v6.first.readline(), "6\n");
        }
        s.close();
    });
}

TEST(Server, OutOfDescriptorsOnAcceptNeitherSpinsNorStops) {
    rlimit old;
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    af::run([&] {
        std::vector<std::string> reports;
        af::Loop::current().set_exception_handler(
            [&](const af::ExceptionContext& c) { reports.push_back(c.message); });
        af::Server s = af::start_server(echo_lines, "127.0.0.1", 0);
        auto c = af::open_connection("127.0.0.1", s.port());
        c.second.write("first\n");
        EXPECT_EQ(c.first.readline(), "first\n");
        // Use up every descriptor under a low limit, then connect: accept() gets EMFILE.
        rlimit low = old;
        low.rlim_cur = 256;
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
        std::vector<int> hog;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hog.push_back(fd);
        ASSERT_FALSE(hog.empty());
        ::close(hog.back());  // exactly one descriptor left: the client's socket takes it
        hog.pop_back();
        auto pending = af::async([&] { return af::open_connection("127.0.0.1", s.port()); });
        double cpu0 = cpu_seconds();
        af::sleep(300ms);
        double spent = cpu_seconds() - cpu0;
        EXPECT_LT(spent, 0.15) << "the server spins while out of descriptors";
        for (int fd : hog) ::close(fd);
        ::setrlimit(RLIMIT_NOFILE, &old);
        auto rw = af::await(pending);
        rw.second.write("after\n");
        EXPECT_EQ(rw.first.readline(), "after\n");  // served once descriptors are free
        EXPECT_EQ(reports.size(), 1u);              // reported once, not once per retry
        c.second.close();
        rw.second.close();
        s.close();
        s.wait_closed();
    });
    ::setrlimit(RLIMIT_NOFILE, &old);
}

// ---- closing connections: wait_closed, close_timeout, close_clients, abort_clients ----

namespace {
// Raw peers that connect and never read (a receive timeout bounds the reads at the end).
std::vector<int> silent_peers(unsigned short port, int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) {
        int fd = raw::connect_loopback(port);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        v.push_back(fd);
    }
    return v;
}
// Reads until the stream ends; returns errno of the end (0: an orderly end) and the bytes.
std::pair<int, long> drain_raw(int fd) {
    static char buf[1 << 16];
    long total = 0;
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            total += n;
            continue;
        }
        return {n < 0 ? errno : 0, total};
    }
}
}  // namespace

// A connection outlived its handler: the peers never read, each handler queues far more than
// the socket buffers hold and returns, and wait_closed() used to return at once with the ten
// descriptors (and their queued bytes) still held. Now it returns once every connection is
// gone: the close waits close_timeout for the peers, then resets them.
TEST(Server, WaitClosedReleasesTheDescriptorsOfPeersThatNeverRead) {
    af::run([] {
        af::ServerOptions o;
        o.close_timeout = 1s;  // the ten handlers take a while under sanitizers
        int handled = 0;
        const std::size_t bulk = 8u << 20;
        af::Server s = af::start_server(
            [&](af::StreamReader, af::StreamWriter w) {
                w.write(std::string(bulk, 'q'));  // no drain: the peer takes a fraction
                ++handled;
            },
            "127.0.0.1", 0, o);
        std::vector<int> peers = silent_peers(s.port(), 10);
        // The peers' ends and the listener are open; nothing is accepted yet.
        const std::size_t fds = probes::open_fds();
        while (handled < 10) af::sleep(1ms);
        EXPECT_EQ(probes::open_fds(), fds + 10) << "the close must give queued bytes a chance";
        s.close();
        const auto t0 = af::Clock::now();
        s.wait_closed();
        EXPECT_LT(af::Clock::now() - t0, 5s);
        EXPECT_EQ(probes::open_fds(), fds - 1);  // every server-side descriptor released
        for (int fd : peers) {
            std::pair<int, long> end = drain_raw(fd);
            EXPECT_EQ(end.first, ECONNRESET) << "cut-off data must not look like a whole reply";
            EXPECT_LT(end.second, static_cast<long>(bulk));
            ::close(fd);
        }
    });
}

// close_timeout = max(): no limit; abort_clients() is then the way to let go.
TEST(Server, CloseTimeoutMaxKeepsWaitingUntilAbortClients) {
    af::run([] {
        af::ServerOptions o;
        o.close_timeout = af::Clock::duration::max();
        int handled = 0;
        af::Server s = af::start_server(
            [&](af::StreamReader, af::StreamWriter w) {
                w.write(std::string(8u << 20, 'q'));
                ++handled;
            },
            "127.0.0.1", 0, o);
        std::vector<int> peers = silent_peers(s.port(), 3);
        while (handled < 3) af::sleep(1ms);
        s.close();
        const std::size_t fds = probes::open_fds();  // the peers' ends and the accepted ones
        auto waiter = af::async([s]() mutable { s.wait_closed(); });
        af::sleep(400ms);
        EXPECT_FALSE(waiter.done());
        EXPECT_EQ(probes::open_fds(), fds);
        s.abort_clients();
        af::await(waiter);
        EXPECT_EQ(probes::open_fds(), fds - 3);
        for (int fd : peers) {
            EXPECT_EQ(drain_raw(fd).first, ECONNRESET);
            ::close(fd);
        }
        o.close_timeout = -1ms;
        EXPECT_THROW(af::start_server([](af::StreamReader, af::StreamWriter) {}, "127.0.0.1", 0, o),
                     std::invalid_argument);
    });
}

// test_server.py TestServer2.test_wait_closed_basic
TEST(Server, WaitClosedBasic) {
    af::run([] {
        af::Server srv = af::start_server(
            [](af::StreamReader rd, af::StreamWriter wr) {
                try {
                    rd.read(-1);
                } catch (...) {
                    wr.close();
                    wr.wait_closed();
                    throw;
                }
                wr.close();
                wr.wait_closed();
            },
            "127.0.0.1", 0);
        // active count 0, not closed: blocks
        auto task1 = af::async([srv]() mutable { srv.wait_closed(); });
        af::sleep(0s);
        EXPECT_FALSE(task1.done());
        // active count != 0, not closed: blocks
        auto rw = af::open_connection("127.0.0.1", srv.port());
        auto task2 = af::async([srv]() mutable { srv.wait_closed(); });
        af::sleep(0s);
        EXPECT_FALSE(task1.done());
        EXPECT_FALSE(task2.done());
        srv.close();
        af::sleep(0s);
        // active count != 0, closed: blocks
        auto task3 = af::async([srv]() mutable { srv.wait_closed(); });
        af::sleep(0s);
        EXPECT_FALSE(task1.done());
        EXPECT_FALSE(task2.done());
        EXPECT_FALSE(task3.done());
        rw.second.close();
        rw.second.wait_closed();
        // active count 0, closed: unblocks
        af::await(task1);
        af::await(task2);
        af::await(task3);
        srv.wait_closed();  // returns at once
    });
}

namespace {
// The steps test_close_clients and test_abort_clients share: wait_closed() waits while a
// connection is open; after close() and `end_clients` it returns within two iterations.
void wait_closed_ends_after(af::Server srv, const std::function<void()>& end_clients) {
    auto task = af::async([srv]() mutable { srv.wait_closed(); });
    af::sleep(0s);
    EXPECT_FALSE(task.done());
    srv.close();
    end_clients();
    af::sleep(0s);
    af::sleep(0s);
    EXPECT_TRUE(task.done());
}
}  // namespace

// test_server.py TestServer2.test_close_clients
TEST(Server, CloseClients) {
    af::run([] {
        af::Server srv = af::start_server(
            [](af::StreamReader rd, af::StreamWriter wr) {
                rd.read(-1);  // EOF once close_clients() closed the connection
                wr.close();
                wr.wait_closed();
            },
            "127.0.0.1", 0);
        auto rw = af::open_connection("127.0.0.1", srv.port());
        wait_closed_ends_after(srv, [&] { srv.close_clients(); });
        EXPECT_EQ(rw.first.read(-1), "");  // the client sees an orderly end
        rw.second.close();
    });
}

// test_server.py TestServer2.test_abort_clients: the server's writer is stuck with data
// queued (the client reads nothing); abort_clients() ends the connection at once.
TEST(Server, AbortClients) {
    af::run([] {
        af::StreamWriter s_wr;
        af::Event have;
        af::Server srv = af::start_server(
            [&](af::StreamReader, af::StreamWriter wr) {
                s_wr = wr;
                have.set();
                wr.wait_closed();
            },
            "127.0.0.1", 0);
        auto c = af::open_connection("127.0.0.1", srv.port(), 4096);
        have.wait();
        for (int i = 0; i < 64 && s_wr.write_buffer_size() == 0; ++i)
            s_wr.write(std::string(1 << 20, 'a'));
        EXPECT_NE(s_wr.write_buffer_size(), 0u);
        wait_closed_ends_after(srv, [&] { srv.abort_clients(); });
        EXPECT_EQ(s_wr.write_buffer_size(), 0u);  // the queued data was dropped
        s_wr = af::StreamWriter();
        c.second.close();
    });
}

TEST(Signals, HandlerRunsOnTheLoopAndCanBeRemoved) {
    af::run([] {
        af::Loop& loop = af::Loop::current();
        int hits = 0;
        loop.add_signal_handler(SIGUSR1, [&] { ++hits; });
        ::raise(SIGUSR1);
        af::sleep(10ms);
        ::raise(SIGUSR1);
        af::sleep(10ms);
        EXPECT_EQ(hits, 2);
        EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
        EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
        EXPECT_THROW(loop.add_signal_handler(SIGKILL, [] {}), std::invalid_argument);
        EXPECT_THROW(loop.add_signal_handler(0, [] {}), std::invalid_argument);
    });
}

TEST(Signals, UserSigintHandlerReplacesCancellingMain) {
    int hits = 0;
    bool finished = af::run([&] {
        af::Loop::current().add_signal_handler(SIGINT, [&] { ++hits; });
        ::raise(SIGINT);
        af::sleep(20ms);  // main is not cancelled: the user's handler took SIGINT
        af::Loop::current().remove_signal_handler(SIGINT);
        return true;
    });
    EXPECT_TRUE(finished);
    EXPECT_EQ(hits, 1);
}

TEST(Signals, SigintStillCancelsMainWithoutAUserHandler) {
    af::RunOptions options;  // an exception, not the end of this test program
    options.throw_on_interrupt = true;
    EXPECT_THROW(af::run(options,
                         [] {
                             af::Loop::current().add_signal_handler(SIGUSR2, [] {});
                             ::raise(SIGINT);
                             af::sleep(5s);
                         }),
                 af::KeyboardInterrupt);
}

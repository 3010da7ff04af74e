// StreamReader / StreamWriter over loopback TCP and Unix sockets: the line protocol, partial
// reads, limits, EOF, half-close, resets, cancellation and timeouts in the middle of a read.
#include <asyncfiber/asyncfiber.hpp>

#include "support/raw_sockets.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <netinet/in.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// A server whose handler is given; returns the server and a connected client pair.
struct Link {
    af::Server server;
    af::StreamReader r;
    af::StreamWriter w;
};

Link link_with(af::ConnectionHandler h) {
    Link l;
    l.server = af::start_server(std::move(h), "127.0.0.1", 0);
    auto rw = af::open_connection("127.0.0.1", l.server.port());
    l.r = rw.first;
    l.w = rw.second;
    return l;
}

void echo_lines(af::StreamReader r, af::StreamWriter w) {
    for (;;) {
        std::string line = r.readline();
        if (line.empty()) break;
        w.write(line);
        w.drain();
    }
    w.close();
}

}  // namespace

TEST(Streams, LineEchoOverTcp) {
    af::run([] {
        Link l = link_with(echo_lines);
        for (int i = 0; i < 50; ++i) {
            l.w.write("line " + std::to_string(i) + "\n");
            l.w.drain();
            EXPECT_EQ(l.r.readline(), "line " + std::to_string(i) + "\n");
        }
        l.w.write_eof();
        EXPECT_EQ(l.r.readline(), "");  // server closes after our EOF
        EXPECT_TRUE(l.r.at_eof());
        l.w.close();
        l.w.wait_closed();
        EXPECT_TRUE(l.w.is_closing());
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, PartialReadsAndReadExactly) {
    af::run([] {
        af::Event go;
        Link l = link_with([&go](af::StreamReader, af::StreamWriter w) {
            w.write("hel");
            w.drain();
            go.wait();
            w.write("lo world");
        });
        EXPECT_EQ(l.r.read(100), "hel");  // what is there, not 100
        go.set();
        EXPECT_EQ(l.r.readexactly(5), "lo wo");
        EXPECT_EQ(l.r.read(-1), "rld");  // to EOF
        EXPECT_TRUE(l.r.at_eof());
        EXPECT_EQ(l.r.read(10), "");
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, ReadExactlyAtEofCarriesPartialData) {
    af::run([] {
        Link l = link_with([](af::StreamReader, af::StreamWriter w) { w.write("abc"); });
        try {
            l.r.readexactly(10);
            FAIL() << "no IncompleteReadError";
        } catch (const af::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), "abc");
            EXPECT_EQ(e.expected(), 10u);
        }
        EXPECT_TRUE(l.r.at_eof());
        l.server.close();
    });
}

TEST(Streams, ReaduntilLimitAndSeparators) {
    af::run([] {
        Link l = link_with([](af::StreamReader, af::StreamWriter w) {
            w.write("a--b--" + std::string(200, 'x') + "--tail");
        });
        l.r.set_limit(100);
        EXPECT_EQ(l.r.readuntil("--"), "a--");
        EXPECT_EQ(l.r.readuntil("--"), "b--");
        try {
            l.r.readuntil("--");
            FAIL() << "no LimitOverrunError";
        } catch (const af::LimitOverrunError& e) {
            EXPECT_GT(e.consumed(), 100u);
        }
        // The data stays buffered: a larger limit lets the same read succeed.
        l.r.set_limit(1000);
        EXPECT_EQ(l.r.readuntil("--"), std::string(200, 'x') + "--");
        try {
            l.r.readuntil("--");
            FAIL() << "no IncompleteReadError";
        } catch (const af::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), "tail");
        }
        EXPECT_THROW(l.r.readuntil(""), std::invalid_argument);
        l.server.close();
    });
}

TEST(Streams, ReadlineOverLimitDropsTheLine) {
    af::run([] {
        Link l = link_with([](af::StreamReader, af::StreamWriter w) {
            w.write(std::string(300, 'y') + "\nnext\n");
        });
        l.r.set_limit(64);
        EXPECT_THROW(l.r.readline(), af::LimitOverrunError);
        EXPECT_EQ(l.r.readline(), "next\n");
        l.server.close();
    });
}

TEST(Streams, HalfCloseKeepsTheOtherDirection) {
    af::run([] {
        Link l = link_with([](af::StreamReader r, af::StreamWriter w) {
            std::string all = r.read(-1);  // until the client's write_eof
            w.write("got " + std::to_string(all.size()));
            w.close();
        });
        l.w.write(std::string(100000, 'z'));
        ASSERT_TRUE(l.w.can_write_eof());
        l.w.write_eof();
        EXPECT_THROW(l.w.write("more"), af::RuntimeError);
        EXPECT_EQ(l.r.read(-1), "got 100000");
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, WriteAfterCloseIsAnError) {
    af::run([] {
        Link l = link_with([](af::StreamReader r, af::StreamWriter) { r.read(-1); });
        l.w.close();
        EXPECT_THROW(l.w.write("x"), af::RuntimeError);
        l.w.wait_closed();
        EXPECT_TRUE(l.r.at_eof() || l.r.read(1).empty());
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, ConnectionRefused) {
    af::run([] {
        // A port that was just free: bind, note it, close.
        af::Server s = af::start_server([](af::StreamReader, af::StreamWriter) {}, "127.0.0.1", 0);
        unsigned short port = s.port();
        s.close();
        s.wait_closed();
        try {
            af::open_connection("127.0.0.1", port);
            FAIL() << "connected to a closed port";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), ECONNREFUSED);
        }
    });
}

TEST(Streams, PeerResetMidReadIsASystemError) {
    af::run([] {
        af::Event got_some;
        int error = 0;
        std::string first;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter) {
                first = r.readexactly(3);
                got_some.set();
                try {
                    r.readexactly(10);  // the client resets before 10 more bytes arrive
                } catch (const std::system_error& e) {
                    error = e.code().value();
                }
            },
            "127.0.0.1", 0);
        int fd = raw::connect_loopback(s.port());
        ASSERT_EQ(::write(fd, "abcde", 5), 5);
        got_some.wait();
        raw::reset_close(fd);
        s.close();
        s.wait_closed();
        EXPECT_EQ(first, "abc");
        EXPECT_EQ(error, ECONNRESET);
    });
}

TEST(Streams, PeerResetMidWriteIsReportedByDrain) {
    af::run([] {
        af::Event reset;
        bool drain_threw = false;
        af::Server s = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                r.readexactly(2);
                reset.wait();
                try {
                    for (int i = 0; i < 64; ++i) {  // far more than the socket buffers hold
                        w.write(std::string(1 << 20, 'w'));
                        w.drain();
                    }
                } catch (const std::system_error& e) {
                    drain_threw = e.code().value() == EPIPE || e.code().value() == ECONNRESET;
                }
                w.write("dropped, not thrown");  // the connection is gone: write() drops
            },
            "127.0.0.1", 0);
        int fd = raw::connect_loopback(s.port());
        ASSERT_EQ(::write(fd, "go", 2), 2);
        af::sleep(20ms);
        raw::reset_close(fd);
        reset.set();
        s.close();
        s.wait_closed();
        EXPECT_TRUE(drain_threw);
    });
}

// asyncio's transport.abort(): the queued data is dropped at once, the peer sees a reset
// (not an orderly end that would pass the cut-off data for all there was), this side's
// reads get EOF, drain() reports the lost connection and later writes are dropped.
TEST(Streams, AbortDropsQueuedDataAndThePeerSeesAReset) {
    af::run([] {
        af::Event aborted;
        const std::size_t bulk = 8u << 20;
        std::size_t queued_before = 0, queued_after = 1;
        bool closing = false;
        std::string read_after = "unset";
        int drain_error = 0;
        int drainer_error = 0;
        bool closer_returned = false;
        Link l = link_with([&](af::StreamReader r, af::StreamWriter w) {
            auto reader = af::async([r]() mutable { return r.read(100); });  // waits
            w.write(std::string(bulk, 'a'));
            auto drainer = af::async([&, w]() mutable {  // waits: far above the high-water mark
                try {
                    w.drain();
                } catch (const std::system_error& e) {
                    drainer_error = e.code().value();
                }
            });
            auto closer = af::async([&, w]() mutable {
                w.wait_closed();
                closer_returned = true;
            });
            af::sleep(0s);
            queued_before = w.write_buffer_size();
            w.abort();
            queued_after = w.write_buffer_size();
            closing = w.is_closing();
            w.abort();  // idempotent
            read_after = af::await(reader);
            af::await(drainer);
            af::await(closer);
            w.write("dropped");
            try {
                w.drain();
            } catch (const std::system_error& e) {
                drain_error = e.code().value();
            }
            aborted.set();
        });
        aborted.wait();
        EXPECT_GT(queued_before, 0u);
        EXPECT_EQ(queued_after, 0u);
        EXPECT_TRUE(closing);
        EXPECT_EQ(read_after, "");  // the tasks waiting on the stream were let go
        EXPECT_EQ(drainer_error, ECONNRESET);
        EXPECT_TRUE(closer_returned);
        EXPECT_EQ(drain_error, ECONNRESET);
        std::size_t got = 0;
        try {
            for (std::string c; !(c = l.r.read(1 << 16)).empty();) got += c.size();
            ADD_FAILURE() << "an orderly end after " << got << " bytes instead of a reset";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), ECONNRESET);
        }
        EXPECT_LT(got, bulk);
        l.w.abort();
        EXPECT_THROW(af::StreamWriter().abort(), af::InvalidStateError);
        l.server.close();
        l.server.wait_closed();
    });
}

// A close that the peer does not let finish (it never reads) ends within the server's
// close_timeout: wait_closed() returns, the descriptor is released, the peer sees a reset.
TEST(Streams, CloseOfAServerConnectionEndsWithinCloseTimeout) {
    af::run([] {
        af::ServerOptions o;
        o.close_timeout = 200ms;
        af::Clock::duration closing_took{};
        std::size_t queued = 0;
        af::Server s = af::start_server(
            [&](af::StreamReader, af::StreamWriter w) {
                w.write(std::string(8u << 20, 'c'));
                w.close();
                queued = w.write_buffer_size();
                const auto t0 = af::Clock::now();
                w.wait_closed();
                closing_took = af::Clock::now() - t0;
            },
            "127.0.0.1", 0, o);
        auto rw = af::open_connection("127.0.0.1", s.port());
        s.close();
        s.wait_closed();
        EXPECT_GT(queued, 0u);
        EXPECT_GE(closing_took, 150ms);  // the peer was given the time
        EXPECT_LT(closing_took, 3s);
        EXPECT_THROW(rw.first.read(-1), std::system_error);  // the cut-off data, then a reset
        rw.second.close();
    });
}

// A client whose close the peer does not let finish, bounded the asyncio way: af::timeout
// around wait_closed(), then abort().
TEST(Streams, ClientCloseBoundedWithTimeoutAndAbort) {
    af::run([] {
        af::Event stop;
        af::Server s = af::start_server([&](af::StreamReader, af::StreamWriter) { stop.wait(); },
                                        "127.0.0.1", 0);
        auto rw = af::open_connection("127.0.0.1", s.port());
        rw.second.write(std::string(8u << 20, 'x'));  // the server never reads
        rw.second.close();
        EXPECT_THROW(af::timeout(100ms, [&] { rw.second.wait_closed(); }), af::TimeoutError);
        EXPECT_GT(rw.second.write_buffer_size(), 0u);
        rw.second.abort();
        rw.second.wait_closed();  // at once
        EXPECT_EQ(rw.second.write_buffer_size(), 0u);
        stop.set();
        s.close();
        s.wait_closed();
    });
}

namespace {
// A deadline on the calling task, built the way timeouts are: cancel it when the time is up.
af::Handle cancel_me_after(std::chrono::milliseconds d) {
    af::TaskRef me = af::current_task();
    return af::Loop::current().call_later(d, [me]() mutable { me.cancel("deadline"); });
}
}  // namespace

TEST(Streams, CancelledReadKeepsBufferedData) {
    af::run([] {
        af::Event more;
        Link l = link_with([&](af::StreamReader, af::StreamWriter w) {
            w.write("01234");
            w.drain();
            more.wait();
            w.write("56789");
            w.drain();
        });
        auto t0 = af::Clock::now();
        cancel_me_after(30ms);
        bool cancelled = false;
        try {
            l.r.readexactly(10);  // only 5 bytes will come before the deadline
        } catch (const af::CancelledError& e) {
            cancelled = true;
            EXPECT_EQ(e.message(), "deadline");
            af::current_task().uncancel();
        }
        EXPECT_TRUE(cancelled);
        EXPECT_LT(af::Clock::now() - t0, 2s);
        EXPECT_EQ(l.r.buffered(), 5u);  // the bytes that came before the deadline stay
        more.set();
        EXPECT_EQ(l.r.readexactly(10), "0123456789");
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, EveryReadIsCancellable) {
    af::run([] {
        af::Event done;
        Link l = link_with([&](af::StreamReader, af::StreamWriter w) {
            w.write("partial line without end");
            w.drain();
            done.wait();
        });
        auto expect_cancel = [&](const char* what, std::function<void()> op) {
            cancel_me_after(10ms);
            try {
                op();
                ADD_FAILURE() << what << " returned";
            } catch (const af::CancelledError&) {
                af::current_task().uncancel();
            }
        };
        l.r.readexactly(1);
        expect_cancel("readline", [&] { l.r.readline(); });
        expect_cancel("readuntil", [&] { l.r.readuntil("\n"); });
        expect_cancel("readexactly", [&] { l.r.readexactly(1000); });
        EXPECT_EQ(l.r.read(1000), "artial line without end");
        expect_cancel("read", [&] { l.r.read(10); });
        // Another task waiting on the same stream is refused, not corrupted.
        auto waiter = af::async([&] { return l.r.read(1); });
        af::sleep(5ms);
        EXPECT_THROW(l.r.read(1), af::RuntimeError);
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        done.set();
        EXPECT_EQ(l.r.read(-1), "");
        l.server.close();
        l.server.wait_closed();
    });
}

TEST(Streams, DrainAppliesBackPressureAndIsCancellable) {
    af::run([] {
        af::Event start_reading;
        std::size_t received = 0;
        Link l = link_with([&](af::StreamReader r, af::StreamWriter) {
            start_reading.wait();
            received = r.read(-1).size();
        });
        l.w.set_write_buffer_limits(64 * 1024);
        std::string chunk(256 * 1024, 'd');
        std::size_t sent = 0;
        // The peer does not read: the kernel buffers fill, then ours, then drain() waits.
        cancel_me_after(50ms);
        try {
            for (;;) {
                l.w.write(chunk);
                sent += chunk.size();
                l.w.drain();
            }
        } catch (const af::CancelledError&) {
            af::current_task().uncancel();
        }
        EXPECT_GT(l.w.write_buffer_size(), 64u * 1024);
        start_reading.set();
        l.w.drain();  // the peer reads now
        EXPECT_LE(l.w.write_buffer_size(), 16u * 1024);
        l.w.close();
        l.w.wait_closed();
        l.server.close();
        l.server.wait_closed();
        EXPECT_EQ(received, sent);
    });
}

TEST(Streams, UnixSocketsAndAddresses) {
    af::run([] {
        std::string path = "/tmp/asyncfiber-streams-" + std::to_string(::getpid()) + ".sock";
        af::Server s = af::start_unix_server(echo_lines, path);
        auto rw = af::open_unix_connection(path);
        rw.second.write("over unix\n");
        EXPECT_EQ(rw.first.readline(), "over unix\n");
        EXPECT_EQ(rw.second.peer_address().family, af::SocketAddress::Family::unix_domain);
        EXPECT_EQ(rw.second.peer_address().host, path);
        EXPECT_EQ(s.port(), 0);
        rw.second.close();
        s.close();
        s.wait_closed();
        EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the socket file is removed
        EXPECT_THROW(af::open_unix_connection(path), std::system_error);
    });
}

TEST(Streams, Ipv6AndHostNames) {
    af::run([] {
        af::Server s = af::start_server(echo_lines, "::1", 0);
        auto rw = af::open_connection("::1", s.port());
        rw.second.write("six\n");
        EXPECT_EQ(rw.first.readline(), "six\n");
        EXPECT_EQ(rw.second.peer_address().family, af::SocketAddress::Family::ipv6);
        EXPECT_EQ(rw.second.peer_address().to_string(), "[::1]:" + std::to_string(s.port()));
        rw.second.close();
        // A name goes through the asynchronous resolver.
        af::Server s4 = af::start_server(echo_lines, "127.0.0.1", 0);
        auto named = af::open_connection("localhost", s4.port());
        named.second.write("named\n");
        EXPECT_EQ(named.first.readline(), "named\n");
        EXPECT_EQ(named.second.local_address().family, af::SocketAddress::Family::ipv4);
        named.second.close();
        EXPECT_THROW(af::open_connection("no-such-host.invalid", 80), std::runtime_error);
        s.close();
        s4.close();
        s.wait_closed();
        s4.wait_closed();
    });
}

TEST(Streams, OutsideATaskIsAClearError) {
    EXPECT_THROW(af::open_connection("127.0.0.1", 1), af::RuntimeError);
    af::StreamReader empty;
    EXPECT_THROW(empty.read(1), af::InvalidStateError);
}

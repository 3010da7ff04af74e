// DatagramEndpoint over loopback UDP (IPv4 and IPv6) and Unix datagram sockets: echo without
// loss, truncation, empty datagrams, ICMP port unreachable, cancellation and timeouts at every
// wait with nothing lost, two tasks waiting at once, closing under a waiting task, options,
// and misuse.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// A server endpoint on 127.0.0.1 (a free port) and a client connected to it.
struct UdpPair {
    af::DatagramEndpoint server;
    af::DatagramEndpoint client;
};

af::DatagramEndpoint udp_server(const std::string& host = "127.0.0.1") {
    af::DatagramOptions o;
    o.local_host = host;
    return af::create_datagram_endpoint(o);
}

af::DatagramEndpoint udp_client_of(const af::DatagramEndpoint& server) {
    af::DatagramOptions o;
    o.remote_host = server.local_address().host;
    o.remote_port = server.local_address().port;
    return af::create_datagram_endpoint(o);
}

UdpPair udp_pair() {
    UdpPair p;
    p.server = udp_server();
    p.client = udp_client_of(p.server);
    return p;
}

// A path for a Unix socket, unique per test process.
std::string temp_path(const std::string& name) {
    return "/tmp/af-dgram-" + std::to_string(::getpid()) + "-" + name;
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

// The system error code of what fn throws (0 if it throws none).
template <class F>
int error_of(F fn) {
    try {
        fn();
    } catch (const std::system_error& e) {
        return e.code().value();
    }
    return 0;
}

double cpu_seconds() {
    rusage ru;
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// recvfrom, failing the test rather than hanging it when nothing comes.
af::Datagram recv_within(af::DatagramEndpoint& ep, std::size_t max = 65536) {
    return af::timeout(5s, [&] { return ep.recvfrom(max); });
}

// Lets the loop poll I/O (the kernel has delivered loopback datagrams by the time sendto
// returns; the loop sees them when it next looks).
void let_io_run() { af::sleep(5ms); }

}  // namespace

TEST(Datagram, SendAndReceiveBothWays) {
    af::run([] {
        UdpPair p = udp_pair();
        EXPECT_EQ(p.server.local_address().family, af::SocketAddress::Family::ipv4);
        EXPECT_EQ(p.server.local_address().host, "127.0.0.1");
        EXPECT_NE(p.server.local_address().port, 0);
        EXPECT_EQ(p.client.remote_address().port, p.server.local_address().port);
        EXPECT_EQ(p.server.remote_address().family, af::SocketAddress::Family::none);

        p.client.send("hello");
        af::Datagram d = recv_within(p.server);
        EXPECT_EQ(d.data, "hello");
        EXPECT_FALSE(d.truncated);
        EXPECT_EQ(d.from.host, "127.0.0.1");
        EXPECT_EQ(d.from.port, p.client.local_address().port);

        p.server.sendto("world", d.from);
        d = recv_within(p.client);
        EXPECT_EQ(d.data, "world");
        EXPECT_EQ(d.from.port, p.server.local_address().port);

        // sendto on a connected endpoint: its remote only (asyncio raises ValueError; CPython's
        // test_selector_events.py test_sendto_connected_addr).
        p.client.sendto("again", p.client.remote_address());
        EXPECT_EQ(recv_within(p.server).data, "again");
        af::SocketAddress other = p.client.remote_address();
        other.port = static_cast<unsigned short>(other.port + 1);
        EXPECT_THROW(p.client.sendto("x", other), std::invalid_argument);
    });
}

namespace {

// Mirrors CPython's test_events.py _test_create_datagram_endpoint (test_create_datagram_endpoint
// and test_create_datagram_endpoint_ipv6): a server answering b'resp:' + data, a client
// connected to its address; the client sends b'xxx', the server gets 3 bytes, the client 8;
// the client's local address is known; closing it ends it.
void mirror_create_datagram_endpoint(const std::string& local_host) {
    af::DatagramEndpoint server = udp_server(local_host);
    auto serve = af::async([&] {
        af::Datagram d = server.recvfrom();
        server.sendto("resp:" + d.data, d.from);
        return d.data.size();
    });
    af::DatagramOptions o;
    o.remote_host = server.local_address().host;
    o.remote_port = server.local_address().port;
    af::DatagramEndpoint client = af::create_datagram_endpoint(o);
    client.send("xxx");
    EXPECT_EQ(af::wait_for(serve, 5s), 3u);
    af::Datagram got = recv_within(client);
    EXPECT_EQ(got.data.size(), 8u);
    EXPECT_EQ(got.data, "resp:xxx");
    EXPECT_NE(client.local_address().family, af::SocketAddress::Family::none);
    client.close();
    EXPECT_TRUE(client.is_closing());
    server.close();
}

}  // namespace

TEST(Datagram, CreateDatagramEndpointMirrorsCPython) {
    af::run([] { mirror_create_datagram_endpoint("127.0.0.1"); });
}

TEST(Datagram, CreateDatagramEndpointIpv6MirrorsCPython) {
    af::run([] {
        try {
            udp_server("::1");
        } catch (const std::system_error& e) {
            GTEST_SKIP() << "no IPv6 loopback on this machine: " << e.what();
        }
        mirror_create_datagram_endpoint("::1");
    });
}

TEST(Datagram, RecvfromIntoCallersBuffer) {
    af::run([] {
        UdpPair p = udp_pair();
        char buf[32];
        // At once (the datagram is there) and after waiting (it comes later).
        p.client.send("abc");
        let_io_run();
        af::DatagramInfo i = p.server.recvfrom_into(buf, sizeof buf);
        EXPECT_EQ(std::string(buf, i.size), "abc");
        EXPECT_FALSE(i.truncated);
        EXPECT_EQ(i.from.port, p.client.local_address().port);

        auto later = af::async([&] {
            af::sleep(10ms);
            p.client.send("defgh");
        });
        i = p.server.recvfrom_into(buf, sizeof buf);
        EXPECT_EQ(std::string(buf, i.size), "defgh");
        af::await(later);
        EXPECT_THROW(p.server.recvfrom_into(nullptr, 10), std::invalid_argument);
    });
}

// The proof: 100 000 datagrams echoed over loopback, none lost. Each client waits for
// the echo of its datagram before sending the next (flow control: UDP may drop what overflows
// a socket buffer, so the test must not flood), and every echo is compared.
TEST(Datagram, LoopbackEchoOf100000DatagramsNoneLost) {
    af::run([] {
        af::DatagramEndpoint server = udp_server();
        auto echo = af::async([&] {
            for (;;) {
                af::Datagram d = recv_within(server);
                server.sendto(d.data, d.from);
            }
        });
        const int clients = 20, rounds = 5000;
        long ok = 0;
        std::vector<af::Task<void>> tasks;
        for (int c = 0; c < clients; ++c) {
            tasks.push_back(af::async([&, c] {
                af::DatagramEndpoint ep = udp_client_of(server);
                for (int k = 0; k < rounds; ++k) {
                    const std::string msg = std::to_string(c) + ":" + std::to_string(k) +
                                            std::string(static_cast<std::size_t>(k % 64), 'x');
                    ep.send(msg);
                    af::Datagram d = ep.recvfrom();
                    ASSERT_EQ(d.data, msg);
                    ASSERT_FALSE(d.truncated);
                    ++ok;
                }
            }));
        }
        af::wait_for(af::async([&] { af::gather(std::move(tasks)); }), 60s);
        EXPECT_EQ(ok, static_cast<long>(clients) * rounds);
        echo.cancel();
    });
}

TEST(Datagram, TruncatedDatagramsAreReported) {
    af::run([] {
        UdpPair p = udp_pair();
        const std::string big(1000, 'b');
        // Received at once.
        p.client.send(big);
        p.client.send("next");
        let_io_run();
        af::Datagram d = p.server.recvfrom(10);
        EXPECT_EQ(d.data, big.substr(0, 10));
        EXPECT_TRUE(d.truncated);
        // The rest was discarded with it, not delivered as another datagram.
        d = p.server.recvfrom(10);
        EXPECT_EQ(d.data, "next");
        EXPECT_FALSE(d.truncated);
        // Exactly the size asked for is not truncated.
        p.client.send("0123456789");
        let_io_run();
        d = p.server.recvfrom(10);
        EXPECT_EQ(d.data, "0123456789");
        EXPECT_FALSE(d.truncated);

        // Received by the pending operation while the task waits.
        auto later = af::async([&] {
            af::sleep(10ms);
            p.client.send(big);
        });
        d = p.server.recvfrom(7);
        EXPECT_EQ(d.data, big.substr(0, 7));
        EXPECT_TRUE(d.truncated);
        af::await(later);

        // Into the caller's buffer.
        char buf[4];
        p.client.send("truncated");
        af::DatagramInfo i = p.server.recvfrom_into(buf, sizeof buf);
        EXPECT_EQ(std::string(buf, i.size), "trun");
        EXPECT_TRUE(i.truncated);
        // max 0: the datagram is taken, nothing of it returned.
        p.client.send("gone");
        d = p.server.recvfrom(0);
        EXPECT_EQ(d.data, "");
        EXPECT_TRUE(d.truncated);
    });
}

TEST(Datagram, EmptyDatagramsAreSentAndReceived) {
    af::run([] {
        UdpPair p = udp_pair();
        p.client.send("");
        let_io_run();
        af::Datagram d = recv_within(p.server);
        EXPECT_EQ(d.data, "");
        EXPECT_FALSE(d.truncated);
        EXPECT_EQ(d.from.port, p.client.local_address().port);
        // While waiting, and back with sendto.
        auto later = af::async([&] {
            af::sleep(10ms);
            p.server.sendto(std::string(), p.client.local_address());
        });
        d = recv_within(p.client);
        EXPECT_EQ(d.data, "");
        EXPECT_FALSE(d.truncated);
        af::await(later);
        char c;
        p.client.send("", 0);
        af::DatagramInfo i = p.server.recvfrom_into(&c, 0);
        EXPECT_EQ(i.size, 0u);
        EXPECT_FALSE(i.truncated);
    });
}

// asyncio reports ICMP port unreachable on a connected endpoint as ConnectionRefusedError.
TEST(Datagram, PortUnreachableThrowsConnectionRefused) {
    af::run([] {
        af::DatagramEndpoint gone = udp_server();
        af::DatagramEndpoint client = udp_client_of(gone);
        gone.close();  // nobody listens on that port any more
        // The ICMP error arrives while recvfrom waits.
        auto waiting = af::async([&] { return error_of([&] { client.recvfrom(); }); });
        af::sleep(1ms);
        client.send("anyone?");
        EXPECT_EQ(af::wait_for(waiting, 10s), ECONNREFUSED);
        // The error arrives before recvfrom is called.
        client.send("anyone?");
        let_io_run();
        int err = error_of([&] { af::timeout(10s, [&] { client.recvfrom(); }); });
        EXPECT_EQ(err, ECONNREFUSED);
        EXPECT_EQ(std::error_code(err, std::system_category()), std::errc::connection_refused);
        // Or the next send, whichever comes first.
        client.send("anyone?");
        let_io_run();
        EXPECT_EQ(error_of([&] { client.send("again"); }), ECONNREFUSED);
        // The endpoint stays usable: a server back on the port gets the next datagram.
        af::DatagramOptions o;
        o.local_host = "127.0.0.1";
        o.local_port = client.remote_address().port;
        af::DatagramEndpoint back = af::create_datagram_endpoint(o);
        client.send("hello again");
        EXPECT_EQ(af::timeout(10s, [&] { return back.recvfrom(); }).data, "hello again");
    });
}

// A cancelled recvfrom takes nothing: the datagram sent afterwards goes to the next recvfrom.
TEST(Datagram, CancelledRecvfromLosesNothing) {
    af::run([] {
        UdpPair p = udp_pair();
        auto waiter = af::async([&] { return p.server.recvfrom(); });
        af::sleep(1ms);  // waiting, with Asio's receive outstanding
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        p.client.send("first");
        EXPECT_EQ(recv_within(p.server).data, "first");
    });
}

// The hard case: the datagram reaches the kernel, and the waiter is cancelled, before the loop
// looks at the socket. Asio's outstanding receive then takes it with nobody waiting: it must be
// kept for the next recvfrom (a use_await-style receive would drop it).
TEST(Datagram, DatagramTakenForACancelledWaiterIsKept) {
    af::run([] {
        UdpPair p = udp_pair();
        auto waiter = af::async([&] { return p.server.recvfrom(); });
        af::sleep(1ms);
        p.client.send("kept");  // in the server's kernel queue now
        waiter.cancel();        // before the loop polls I/O again
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        let_io_run();  // the outstanding receive completes, with nobody waiting
        p.client.send("second");
        EXPECT_EQ(recv_within(p.server).data, "kept");
        EXPECT_EQ(recv_within(p.server).data, "second");
    });
}

// The waiter is woken for a datagram and cancelled before it runs: the datagram goes to the
// next receiver (here a later recvfrom; without the hand-over it would wait forever).
TEST(Datagram, WokenThenCancelledWaiterHandsTheDatagramOn) {
    af::run([] {
        UdpPair p = udp_pair();
        auto waiter = af::async([&] { return p.server.recvfrom(); });
        af::sleep(1ms);
        p.client.send("handed on");
        // An Asio handler posted now runs in the same I/O poll as the receive's completion,
        // which wakes the waiter; this task, ready before it, runs first and cancels it.
        bool polled = false;
        boost::asio::post(af::Loop::current().io_context(), [&] { polled = true; });
        while (!polled) af::sleep(0ms);
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        EXPECT_EQ(recv_within(p.server).data, "handed on");
    });
}

TEST(Datagram, TimeoutOnRecvfromThenNothingLost) {
    af::run([] {
        UdpPair p = udp_pair();
        auto t0 = af::Clock::now();
        EXPECT_THROW(af::timeout(50ms, [&] { p.server.recvfrom(); }), af::TimeoutError);
        EXPECT_GE(af::Clock::now() - t0, 45ms);
        EXPECT_THROW(af::wait_for(af::async([&] { return p.server.recvfrom(); }), 20ms),
                     af::TimeoutError);
        p.client.send("after the timeouts");
        EXPECT_EQ(recv_within(p.server).data, "after the timeouts");
    });
}

// Many receives, each under a random short timeout, against a sender: every datagram arrives
// once, in order, whichever waits were cut short.
TEST(Datagram, CancellationStormLosesNothing) {
    af::run([] {
        UdpPair p = udp_pair();
        const int n = 2000;
        auto sender = af::async([&] {
            std::mt19937 rng(7);
            for (int i = 0; i < n; ++i) {
                p.client.send(std::to_string(i));
                if (rng() % 4 == 0) af::sleep(std::chrono::microseconds(rng() % 300));
                if (i % 8 == 7) af::sleep(0ms);
            }
        });
        std::mt19937 rng(11);
        int next = 0, timeouts = 0;
        char buf[16];
        const auto t0 = af::Clock::now();
        while (next < n) {
            ASSERT_LT(af::Clock::now() - t0, 30s) << "stuck at datagram " << next;
            try {
                auto d = std::chrono::microseconds(rng() % 200);
                if (rng() % 2) {
                    EXPECT_EQ(af::timeout(d, [&] { return p.server.recvfrom(); }).data,
                              std::to_string(next));
                } else {
                    af::DatagramInfo i =
                        af::timeout(d, [&] { return p.server.recvfrom_into(buf, sizeof buf); });
                    EXPECT_EQ(std::string(buf, i.size), std::to_string(next));
                }
                ++next;
            } catch (const af::TimeoutError&) {
                ++timeouts;
            }
        }
        af::await(sender);
        EXPECT_GT(timeouts, 0);  // the storm did cut waits short
        EXPECT_THROW(af::timeout(20ms, [&] { p.server.recvfrom(); }), af::TimeoutError);
    });
}

// Several receivers are served in turn, one datagram each.
TEST(Datagram, WaitingReceiversAreServedInTurn) {
    af::run([] {
        UdpPair p = udp_pair();
        std::vector<af::Task<std::string>> rs;
        for (int i = 0; i < 3; ++i)
            rs.push_back(af::async([&] { return p.server.recvfrom().data; }));
        af::sleep(1ms);
        for (const char* m : {"a", "b", "c"}) p.client.send(m);
        std::vector<std::string> got =
            af::wait_for(af::async([&] { return af::gather(std::move(rs)); }), 5s);
        EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
    });
}

// A send and a recvfrom waiting at once in two tasks. A connected Unix datagram socket makes
// the send wait: the kernel holds only a few datagrams for a peer that does not read.
TEST(Datagram, SendAndRecvfromWaitInTwoTasksAtOnce) {
    af::run([] {
        const std::string a_path = temp_path("two-a"), b_path = temp_path("two-b");
        af::DatagramEndpoint b = af::create_unix_datagram_endpoint(b_path);
        af::DatagramEndpoint a = af::create_unix_datagram_endpoint(a_path, b_path);
        const int n = 2000;  // more than the peer holds (net.unix.max_dgram_qlen, the send buffer)
        int sent = 0;
        auto sender = af::async([&] {
            for (; sent < n; ++sent) a.send("m" + std::to_string(sent));
        });
        auto receiver = af::async([&] { return a.recvfrom().data; });
        af::sleep(20ms);
        EXPECT_FALSE(sender.done());  // waiting in send: the peer's queue is full
        EXPECT_LT(sent, n);
        EXPECT_FALSE(receiver.done());  // waiting in recvfrom at the same time
        b.sendto("to a", a.local_address());
        EXPECT_EQ(af::wait_for(receiver, 5s), "to a");
        for (int i = 0; i < n; ++i) ASSERT_EQ(recv_within(b).data, "m" + std::to_string(i));
        af::wait_for(sender, 5s);
    });
}

TEST(Datagram, CancelledSendSendsNothing) {
    af::run([] {
        const std::string a_path = temp_path("cs-a"), b_path = temp_path("cs-b");
        af::DatagramEndpoint b = af::create_unix_datagram_endpoint(b_path);
        af::DatagramEndpoint a = af::create_unix_datagram_endpoint(a_path, b_path);
        int queued = 0;
        // Fill the peer's queue, then one more send waits; a timeout ends it.
        for (;;) {
            try {
                af::timeout(20ms, [&] { a.send("q" + std::to_string(queued)); });
                ++queued;
            } catch (const af::TimeoutError&) {
                break;
            }
        }
        EXPECT_GT(queued, 0);
        for (int i = 0; i < queued; ++i) EXPECT_EQ(recv_within(b).data, "q" + std::to_string(i));
        // The timed-out datagram was not sent: the next one is the next to arrive.
        a.send("after");
        EXPECT_EQ(recv_within(b).data, "after");
    });
}

// An unconnected Unix socket sending to a peer whose queue is full is reported writable all
// the time (the kernel looks at the peer's queue only for a connected socket): the send must
// wait without spinning the loop, go on when the peer reads, and end on close.
TEST(Datagram, SendtoAFullUnixPeerWaitsWithoutSpinning) {
    af::run([] {
        const std::string a_path = temp_path("spin-a"), b_path = temp_path("spin-b");
        af::DatagramEndpoint b = af::create_unix_datagram_endpoint(b_path);
        af::DatagramEndpoint a = af::create_unix_datagram_endpoint(a_path);  // not connected
        const af::SocketAddress to = b.local_address();
        const int n = 100;
        int sent = 0;
        auto sender = af::async([&] {
            for (; sent < n; ++sent) a.sendto("d" + std::to_string(sent), to);
        });
        af::sleep(20ms);
        ASSERT_FALSE(sender.done());  // the peer's queue is full
        const double cpu0 = cpu_seconds();
        af::sleep(300ms);
        EXPECT_LT(cpu_seconds() - cpu0, 0.03) << "a waiting send spins";  // backing off: ~1 ms
        for (int i = 0; i < n; ++i) ASSERT_EQ(recv_within(b).data, "d" + std::to_string(i));
        af::wait_for(sender, 5s);
        // Waiting again, then closed.
        auto more = af::async([&] {
            return error_of([&] {
                for (;;) a.sendto("more", to);
            });
        });
        af::sleep(20ms);
        ASSERT_FALSE(more.done());
        a.close();
        EXPECT_EQ(af::wait_for(more, 5s), EBADF);
    });
}

TEST(Datagram, ClosingWakesWaitingTasks) {
    af::run([] {
        // A receiver.
        UdpPair p = udp_pair();
        auto r = af::async([&] { return error_of([&] { p.server.recvfrom(); }); });
        af::sleep(1ms);
        p.server.close();
        EXPECT_EQ(af::wait_for(r, 5s), EBADF);
        EXPECT_TRUE(p.server.is_closing());
        // A sender waiting for room.
        const std::string a_path = temp_path("close-a"), b_path = temp_path("close-b");
        af::DatagramEndpoint b = af::create_unix_datagram_endpoint(b_path);
        af::DatagramEndpoint a = af::create_unix_datagram_endpoint(a_path, b_path);
        auto s = af::async([&] {
            return error_of([&] {
                for (;;) a.send("fill");
            });
        });
        af::sleep(20ms);
        EXPECT_FALSE(s.done());
        a.close();
        EXPECT_EQ(af::wait_for(s, 5s), EBADF);
        // The endpoint destroyed (moved over) while a task waits on it.
        UdpPair q = udp_pair();
        auto r2 = af::async([&] { return error_of([&] { q.server.recvfrom(); }); });
        af::sleep(1ms);
        q.server = af::DatagramEndpoint();
        EXPECT_EQ(af::wait_for(r2, 5s), EBADF);
    });
}

// An endpoint kept past af::run: the loop closed it, and nothing of the dead loop is touched.
TEST(Datagram, EndpointOutlivesItsLoop) {
    af::DatagramEndpoint ep = af::run([] { return udp_server(); });
    EXPECT_TRUE(ep.is_closing());
    EXPECT_EQ(ep.local_address().family, af::SocketAddress::Family::none);
    ep.close();
    EXPECT_THROW(ep.recvfrom(), af::RuntimeError);  // no running loop
    af::run([&] { EXPECT_EQ(error_of([&] { ep.recvfrom(); }), EBADF); });
}

// Destroyed on another thread while its loop runs: the loop's thread closes it.
TEST(Datagram, DestroyedOnAnotherThreadIsClosedByItsLoop) {
    af::run([] {
        std::unique_ptr<af::DatagramEndpoint> ep(new af::DatagramEndpoint(udp_server()));
        af::DatagramEndpoint& ref = *ep;
        auto waiter = af::async([&ref] { return error_of([&ref] { ref.recvfrom(); }); });
        af::sleep(1ms);
        std::thread th([&] { ep.reset(); });
        th.join();
        EXPECT_EQ(af::wait_for(waiter, 5s), EBADF);
    });
}

TEST(Datagram, MisuseGivesClearErrors) {
    af::run([] {
        // send on an endpoint that is not connected.
        af::DatagramEndpoint s = udp_server();
        EXPECT_EQ(error_of([&] { s.send("x"); }), EDESTADDRREQ);
        // A remote port without a host.
        af::DatagramOptions bad;
        bad.remote_port = 9;
        EXPECT_THROW(af::create_datagram_endpoint(bad), std::invalid_argument);
        // A host that does not resolve.
        af::DatagramOptions unknown;
        unknown.remote_host = "no-such-host.invalid";
        unknown.remote_port = 9;
        EXPECT_THROW(af::timeout(30s, [&] { af::create_datagram_endpoint(unknown); }),
                     boost::system::system_error);
        // A port already taken (no reuse_port).
        af::DatagramOptions taken;
        taken.local_host = "127.0.0.1";
        taken.local_port = s.local_address().port;
        EXPECT_EQ(error_of([&] { af::create_datagram_endpoint(taken); }), EADDRINUSE);
        // sendto a Unix path from a UDP endpoint, an empty host.
        af::SocketAddress unix_addr;
        unix_addr.family = af::SocketAddress::Family::unix_domain;
        unix_addr.host = "/tmp/x";
        EXPECT_THROW(s.sendto("x", unix_addr), std::invalid_argument);
        EXPECT_THROW(s.sendto("x", af::SocketAddress()), std::invalid_argument);
        // Too long for a datagram.
        EXPECT_EQ(error_of([&] { s.sendto(std::string(70000, 'x'), s.local_address()); }),
                  EMSGSIZE);
        // Use after close.
        s.close();
        s.close();  // idempotent
        EXPECT_EQ(error_of([&] { s.sendto("x", unix_addr); }), EBADF);
        EXPECT_EQ(error_of([&] { s.recvfrom(); }), EBADF);
        EXPECT_EQ(s.local_address().family, af::SocketAddress::Family::none);
        // A moved-from endpoint.
        af::DatagramEndpoint t = udp_server();
        af::DatagramEndpoint u = std::move(t);
        EXPECT_FALSE(static_cast<bool>(t));
        EXPECT_THROW(t.recvfrom(), af::InvalidStateError);
        // From another thread (running its own loop, or none).
        std::string other_loop, no_loop;
        std::thread th([&] {
            try {
                af::run([&] { u.sendto("x", u.local_address()); });
            } catch (const af::RuntimeError& e) {
                other_loop = e.what();
            }
            try {
                u.close();
            } catch (const af::RuntimeError& e) {
                no_loop = e.what();
            }
        });
        th.join();
        EXPECT_NE(other_loop.find("another thread"), std::string::npos) << other_loop;
        EXPECT_NE(no_loop.find("another thread"), std::string::npos) << no_loop;
        // Outside a task.
        EXPECT_FALSE(u.is_closing());
    });
    EXPECT_THROW(af::create_datagram_endpoint(af::DatagramOptions()), af::RuntimeError);
}

TEST(Datagram, OutOfDescriptorsGivesEmfile) {
    rlimit old;
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    af::run([&] {
        rlimit low = old;
        low.rlim_cur = 256;
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
        std::vector<af::DatagramEndpoint> eps;
        int err = 0;
        for (int i = 0; i < 1000 && err == 0; ++i)
            err = error_of([&] { eps.push_back(udp_server()); });
        ::setrlimit(RLIMIT_NOFILE, &old);
        EXPECT_EQ(err, EMFILE);
        ASSERT_GT(eps.size(), 1u);
        // The endpoints made before work on.
        eps.front().sendto("still here", eps.back().local_address());
        EXPECT_EQ(recv_within(eps.back()).data, "still here");
    });
    ::setrlimit(RLIMIT_NOFILE, &old);
}

TEST(Datagram, Ipv6Loopback) {
    af::run([] {
        af::DatagramEndpoint server;
        try {
            server = udp_server("::1");
        } catch (const std::system_error& e) {
            GTEST_SKIP() << "no IPv6 loopback on this machine: " << e.what();
        }
        EXPECT_EQ(server.local_address().family, af::SocketAddress::Family::ipv6);
        EXPECT_EQ(server.local_address().host, "::1");
        af::DatagramOptions o;
        o.remote_host = "::1";  // without brackets
        o.remote_port = server.local_address().port;
        af::DatagramEndpoint client = af::create_datagram_endpoint(o);
        client.send("over IPv6");
        af::Datagram d = recv_within(server);
        EXPECT_EQ(d.data, "over IPv6");
        EXPECT_EQ(d.from.family, af::SocketAddress::Family::ipv6);
        EXPECT_EQ(d.from.host, "::1");
        EXPECT_EQ(d.from.to_string(), "[::1]:" + std::to_string(client.local_address().port));
        server.sendto("back", d.from);
        EXPECT_EQ(recv_within(client).data, "back");
        // An unconnected IPv6 endpoint sends to a literal host and port.
        af::DatagramEndpoint third = udp_server("::1");
        af::SocketAddress to;
        to.host = "::1";
        to.port = server.local_address().port;
        third.sendto("literal", to);
        EXPECT_EQ(recv_within(server).data, "literal");
    });
}

TEST(Datagram, UnixDatagramRoundTrip) {
    af::run([] {
        const std::string s_path = temp_path("srv"), c_path = temp_path("cli");
        // A stale socket file at the path (left by a process that ended) is replaced.
        int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::snprintf(un.sun_path, sizeof un.sun_path, "%s", s_path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
        ::close(fd);
        ASSERT_TRUE(file_exists(s_path));
        af::DatagramEndpoint server = af::create_unix_datagram_endpoint(s_path);
        EXPECT_TRUE(file_exists(s_path));
        EXPECT_EQ(server.local_address().family, af::SocketAddress::Family::unix_domain);
        EXPECT_EQ(server.local_address().host, s_path);

        af::DatagramEndpoint client = af::create_unix_datagram_endpoint(c_path, s_path);
        client.send("ping");
        af::Datagram d = recv_within(server);
        EXPECT_EQ(d.data, "ping");
        EXPECT_EQ(d.from.family, af::SocketAddress::Family::unix_domain);
        EXPECT_EQ(d.from.host, c_path);
        server.sendto("pong", d.from);
        EXPECT_EQ(recv_within(client).data, "pong");

        // Empty and truncated, at once and while waiting.
        client.send("");
        EXPECT_EQ(recv_within(server).data, "");
        client.send("abcdef");
        let_io_run();
        d = recv_within(server, 3);
        EXPECT_EQ(d.data, "abc");
        EXPECT_TRUE(d.truncated);
        auto later = af::async([&] {
            af::sleep(10ms);
            client.send("uvwxyz");
        });
        d = recv_within(server, 2);
        EXPECT_EQ(d.data, "uv");
        EXPECT_TRUE(d.truncated);
        af::await(later);

        // Longer than 64 KiB, whole.
        const std::string big(100000, 'z');
        client.send(big);
        d = recv_within(server, 200000);
        EXPECT_EQ(d.data.size(), big.size());
        EXPECT_FALSE(d.truncated);

        // A cancelled waiter leaves the datagram in the kernel.
        auto waiter = af::async([&] { return server.recvfrom(); });
        af::sleep(1ms);
        client.send("kept");
        waiter.cancel();
        EXPECT_THROW(af::await(waiter), af::CancelledError);
        let_io_run();
        EXPECT_EQ(recv_within(server).data, "kept");

        // An unbound sender can send but not be answered.
        af::DatagramEndpoint anon = af::create_unix_datagram_endpoint("", s_path);
        anon.send("anonymous");
        d = recv_within(server);
        EXPECT_EQ(d.data, "anonymous");
        EXPECT_EQ(d.from.host, "");

        // Connecting to nobody.
        EXPECT_EQ(error_of([&] { af::create_unix_datagram_endpoint("", temp_path("nobody")); }),
                  ENOENT);
        EXPECT_EQ(error_of([&] { af::create_unix_datagram_endpoint(std::string(200, 'p')); }),
                  ENAMETOOLONG);
        server.close();
        EXPECT_FALSE(file_exists(s_path));
        // The peer is gone: the send is refused.
        EXPECT_EQ(error_of([&] { client.send("to nobody"); }), ECONNREFUSED);
    });
}

TEST(Datagram, BroadcastOption) {
    af::run([] {
        af::DatagramOptions o;
        o.local_host = "0.0.0.0";
        af::DatagramEndpoint receiver = af::create_datagram_endpoint(o);
        af::SocketAddress bcast;
        bcast.family = af::SocketAddress::Family::ipv4;
        bcast.host = "255.255.255.255";
        bcast.port = receiver.local_address().port;
        af::DatagramEndpoint plain = af::create_datagram_endpoint(o);
        // Without SO_BROADCAST the kernel refuses a broadcast address.
        EXPECT_EQ(error_of([&] { plain.sendto("x", bcast); }), EACCES);
        o.allow_broadcast = true;
        af::DatagramEndpoint caster = af::create_datagram_endpoint(o);
        int err = error_of([&] { caster.sendto("to all", bcast); });
        if (err == ENETUNREACH) GTEST_SKIP() << "no route for broadcasts on this machine";
        EXPECT_EQ(err, 0);
    });
}

TEST(Datagram, ReusePortLetsTwoEndpointsShareAPort) {
    af::run([] {
        af::DatagramOptions o;
        o.local_host = "127.0.0.1";
        o.reuse_port = true;
        af::DatagramEndpoint first = af::create_datagram_endpoint(o);
        o.local_port = first.local_address().port;
        af::DatagramEndpoint second = af::create_datagram_endpoint(o);
        EXPECT_EQ(second.local_address().port, first.local_address().port);
        // Without the option on the newcomer the port is taken.
        af::DatagramOptions plain = o;
        plain.reuse_port = false;
        EXPECT_EQ(error_of([&] { af::create_datagram_endpoint(plain); }), EADDRINUSE);
        // The kernel spreads senders over both; every datagram arrives at one of them.
        const int senders = 32;
        for (int i = 0; i < senders; ++i) udp_client_of(first).send("s" + std::to_string(i));
        int got = 0, at_first = 0;
        auto drain = [&](af::DatagramEndpoint& ep, int* count) {
            try {
                for (;;) {
                    af::timeout(50ms, [&] { ep.recvfrom(); });
                    ++got;
                    if (count) ++*count;
                }
            } catch (const af::TimeoutError&) {
            }
        };
        drain(first, &at_first);
        drain(second, nullptr);
        EXPECT_EQ(got, senders);
        EXPECT_GT(at_first, 0);
        EXPECT_LT(at_first, senders);
    });
}

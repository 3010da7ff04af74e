// An unchanged callback-style Boost.Asio component and an await-style task sharing one loop.
//
// Ticker and EchoServer below are ordinary Asio code, written as they would be without
// asyncfiber: handlers, shared_from_this, no tasks. They run on the loop's io_context, so
// their handlers run on the loop's thread between task steps. The client is a task that
// uses the same io_context through af::use_await, and its connection is served by the
// callback-style server in the same thread.
#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace af = asyncfiber;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---- the callback-style component (no asyncfiber in here) ----

class Ticker {
public:
    Ticker(asio::io_context& io, std::chrono::milliseconds period) : timer_(io), period_(period) {}
    void start() { arm(); }
    void stop() { timer_.cancel(); }
    int ticks() const { return ticks_; }

private:
    void arm() {
        timer_.expires_after(period_);
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            ++ticks_;
            arm();
        });
    }
    asio::steady_timer timer_;
    std::chrono::milliseconds period_;
    int ticks_ = 0;
};

class EchoSession : public std::enable_shared_from_this<EchoSession> {
public:
    explicit EchoSession(tcp::socket s) : socket_(std::move(s)) {}
    void start() { read(); }

private:
    void read() {
        auto self = shared_from_this();
        socket_.async_read_some(asio::buffer(buf_),
                                [self](const boost::system::error_code& ec, std::size_t n) {
                                    if (!ec) self->write(n);
                                });
    }
    void write(std::size_t n) {
        auto self = shared_from_this();
        asio::async_write(socket_, asio::buffer(buf_, n),
                          [self](const boost::system::error_code& ec, std::size_t) {
                              if (!ec) self->read();
                          });
    }
    tcp::socket socket_;
    std::array<char, 1024> buf_;
};

class EchoServer {
public:
    explicit EchoServer(asio::io_context& io)
        : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}
    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    void start() {
        acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
            if (ec) return;
            std::make_shared<EchoSession>(std::move(s))->start();
            start();
        });
    }
    void stop() { acceptor_.close(); }

private:
    tcp::acceptor acceptor_;
};

// ---- the await-style task ----

int main() {
    return af::run([] {
        asio::io_context& io = af::Loop::current().io_context();
        Ticker ticker(io, std::chrono::milliseconds(5));
        EchoServer server(io);
        ticker.start();
        server.start();

        tcp::socket sock(io);
        sock.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), server.port()),
                           af::use_await);
        for (std::string line : {"one", "two", "three"}) {
            asio::async_write(sock, asio::buffer(line), af::use_await);
            std::string back(line.size(), '\0');
            asio::async_read(sock, asio::buffer(&back[0], back.size()), af::use_await);
            std::printf("echoed: %s (ticks so far: %d)\n", back.c_str(), ticker.ticks());
            af::sleep(std::chrono::milliseconds(12));  // the ticker keeps ticking meanwhile
        }

        // Cancelling a task blocked in a read: it wakes at once; cancels(sock) aborts the read.
        auto reader = af::async([&] {
            char c;
            asio::async_read(sock, asio::buffer(&c, 1), af::use_await.cancels(sock));
        });
        af::sleep(std::chrono::milliseconds(2));
        reader.cancel();
        try {
            af::await(reader);
        } catch (const af::CancelledError&) {
            std::printf("blocked read cancelled\n");
        }

        ticker.stop();
        server.stop();
        std::printf("ticker ticked %d times beside the task\n", ticker.ticks());
        return ticker.ticks() > 0 ? 0 : 1;
    });
}

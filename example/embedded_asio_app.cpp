// A callback-only Boost.Asio program that moves one handler chain to a task, keeping its own
// io_context and its own io.run() (docs/embedding.md).
//
// The program: a line-echo server (acceptor and sessions, callback style) and a client that
// connects, sends three lines and reads each reply. The client exists twice: as it was
// written (CallbackClient: a chain of handlers, each starting the next) and as it reads once
// moved to a task (task_client: the same steps, top to bottom, with af::use_await). Nothing
// else changes: the server stays as it is, and main still owns and runs the io_context; the
// af::Loop over it only adds the task. Both clients print the same lines.
#include <asyncfiber/asyncfiber.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <istream>
#include <memory>
#include <string>
#include <vector>

namespace af = asyncfiber;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// ---- the server: callback style, unchanged ----

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(tcp::socket s) : socket_(std::move(s)) {}
    void start() { read(); }

private:
    void read() {
        auto self = shared_from_this();
        asio::async_read_until(
            socket_, in_, '\n', [self](boost::system::error_code ec, std::size_t) {
                if (ec) return;  // the client closed
                std::istream is(&self->in_);
                std::string line;
                std::getline(is, line);
                self->out_ = "echo: " + line + "\n";
                asio::async_write(self->socket_, asio::buffer(self->out_),
                                  [self](boost::system::error_code ec2, std::size_t) {
                                      if (!ec2) self->read();
                                  });
            });
    }
    tcp::socket socket_;
    asio::streambuf in_;
    std::string out_;
};

class Server {
public:
    explicit Server(asio::io_context& io)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept();
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    void close() { acceptor_.close(); }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;  // closed
            std::make_shared<Session>(std::move(s))->start();
            accept();
        });
    }
    tcp::acceptor acceptor_;
};

const std::vector<std::string> kLines = {"alpha", "beta", "gamma"};

// ---- the client before: a chain of handlers ----

class CallbackClient : public std::enable_shared_from_this<CallbackClient> {
public:
    CallbackClient(asio::io_context& io, unsigned short port, std::function<void()> done)
        : socket_(io), port_(port), done_(std::move(done)) {}
    void start() {
        auto self = shared_from_this();
        socket_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                              [self](boost::system::error_code ec) {
                                  if (ec) return self->fail(ec);
                                  self->send_next();
                              });
    }

private:
    void send_next() {
        if (next_ == kLines.size()) {
            socket_.close();
            done_();
            return;
        }
        out_ = kLines[next_] + "\n";
        auto self = shared_from_this();
        asio::async_write(
            socket_, asio::buffer(out_), [self](boost::system::error_code ec, std::size_t) {
                if (ec) return self->fail(ec);
                asio::async_read_until(self->socket_, self->in_, '\n',
                                       [self](boost::system::error_code ec2, std::size_t) {
                                           if (ec2) return self->fail(ec2);
                                           std::istream is(&self->in_);
                                           std::string reply;
                                           std::getline(is, reply);
                                           std::printf("callbacks: %s\n", reply.c_str());
                                           ++self->next_;
                                           self->send_next();
                                       });
            });
    }
    void fail(boost::system::error_code ec) {
        std::printf("callbacks: failed: %s\n", ec.message().c_str());
        done_();
    }
    tcp::socket socket_;
    unsigned short port_;
    std::function<void()> done_;
    std::size_t next_ = 0;
    std::string out_;
    asio::streambuf in_;
};

// ---- the client after: the same chain as a task ----

void task_client(asio::io_context& io, unsigned short port) {
    tcp::socket socket(io);
    try {
        socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             af::use_await.cancels(socket));
        asio::streambuf in;
        for (const std::string& line : kLines) {
            const std::string out = line + "\n";
            asio::async_write(socket, asio::buffer(out), af::use_await.cancels(socket));
            asio::async_read_until(socket, in, '\n', af::use_await.cancels(socket));
            std::istream is(&in);
            std::string reply;
            std::getline(is, reply);
            std::printf("task:      %s\n", reply.c_str());
        }
    } catch (const boost::system::system_error& e) {  // errors arrive as exceptions
        std::printf("task:      failed: %s\n", e.what());
    }
}

}  // namespace

int main() {
    asio::io_context io;  // the program's own, as before
    Server server(io);
    const unsigned short port = server.port();
    int clients_left = 2;
    auto client_done = [&] {
        if (--clients_left == 0) server.close();  // then io.run() runs out of work
    };

    // Before: the callback chain, started from main.
    std::make_shared<CallbackClient>(io, port, client_done)->start();

    // After: a loop over the same io_context; the task is queued and runs when io.run() does,
    // between the server's handlers, on this thread.
    af::Loop loop(io);
    loop.spawn([&] {
        task_client(io, port);
        client_done();
    });

    io.run();  // returns when both clients are done and the server is closed
    loop.close();
    return 0;
}

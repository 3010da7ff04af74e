// A small HTTP/1.1 fetch. Without arguments it starts a local server and fetches from it;
// with `host port path` it fetches from there (plain HTTP only).
#include <asyncfiber/asyncfiber.hpp>

#include <iostream>
#include <stdexcept>

namespace af = asyncfiber;

namespace {

// A minimal HTTP/1.1 server: answers every request with a fixed body, keep-alive aside.
void serve_http(af::StreamReader reader, af::StreamWriter writer) {
    std::string request_line = reader.readline();
    for (std::string h; (h = reader.readline()) != "\r\n" && !h.empty();) {
    }
    std::string body = "hello from asyncfiber, you asked for " +
                       request_line.substr(0, request_line.find("\r\n")) + "\n";
    writer.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    writer.drain();
    writer.close();
}

// GET path from host:port; returns {status line, body}.
std::pair<std::string, std::string> fetch(const std::string& host, unsigned short port,
                                          const std::string& path) {
    auto rw = af::open_connection(host, port);
    rw.second.write("GET " + path + " HTTP/1.1\r\nHost: " + host +
                    "\r\nConnection: close\r\nUser-Agent: asyncfiber\r\n\r\n");
    rw.second.drain();
    std::string status = rw.first.readline();
    long length = -1;
    bool chunked = false;
    for (std::string h; (h = rw.first.readline()) != "\r\n";) {
        if (h.empty()) throw std::runtime_error("connection closed inside the headers");
        std::string lower;
        for (char c : h) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower.compare(0, 15, "content-length:") == 0) length = std::stol(h.substr(15));
        if (lower.find("transfer-encoding: chunked") == 0) chunked = true;
    }
    std::string body;
    if (chunked) {
        for (;;) {
            long n = std::stol(rw.first.readline(), nullptr, 16);
            if (n == 0) break;
            body += rw.first.readexactly(static_cast<std::size_t>(n));
            rw.first.readexactly(2);  // CRLF after each chunk
        }
    } else if (length >= 0) {
        body = rw.first.readexactly(static_cast<std::size_t>(length));
    } else {
        body = rw.first.read(-1);
    }
    rw.second.close();
    return {status, body};
}

}  // namespace

int main(int argc, char** argv) {
    try {
        af::run([&] {
            if (argc >= 4) {
                auto r = fetch(argv[1], static_cast<unsigned short>(std::stoi(argv[2])), argv[3]);
                std::cout << r.first << r.second;
                return;
            }
            af::Server server = af::start_server(serve_http, "127.0.0.1", 0);
            auto r = fetch("127.0.0.1", server.port(), "/index.html");
            std::cout << r.first << r.second;
            server.close();
            server.wait_closed();
        });
    } catch (const std::exception& e) {
        std::cerr << "http_fetch: " << e.what() << "\n";
        return 1;
    }
}

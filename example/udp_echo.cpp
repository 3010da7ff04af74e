// UDP echo, as in asyncio's "UDP Echo Server" and "UDP Echo Client" examples.
//   udp_echo                       a server and a client in one program (the default)
//   udp_echo server [port]         an echo server on 127.0.0.1 (default port 9999), until Ctrl-C
//   udp_echo client [port] [msg]   sends msg, prints the echo (gives up after 2 s)
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

// Answers every datagram with its own bytes, until the task is cancelled.
void serve(af::DatagramEndpoint& endpoint) {
    for (;;) {
        af::Datagram d = endpoint.recvfrom();
        std::cout << "Received '" << d.data << "' from " << d.from.to_string() << "\n";
        std::cout << "Send '" << d.data << "' to " << d.from.to_string() << "\n";
        endpoint.sendto(d.data, d.from);
    }
}

// Sends one message to 127.0.0.1:port and returns the echo; no echo within 2 s (UDP may lose a
// datagram, or nobody listens) throws af::TimeoutError.
std::string ask(unsigned short port, const std::string& message) {
    af::DatagramOptions o;
    o.remote_host = "127.0.0.1";
    o.remote_port = port;
    af::DatagramEndpoint endpoint = af::create_datagram_endpoint(o);
    std::cout << "Send: '" << message << "'\n";
    endpoint.send(message);
    std::string echo = af::timeout(2s, [&] { return endpoint.recvfrom().data; });
    std::cout << "Received: '" << echo << "'\n";
    return echo;
}

af::DatagramEndpoint server_endpoint(unsigned short port) {
    af::DatagramOptions o;
    o.local_host = "127.0.0.1";
    o.local_port = port;
    return af::create_datagram_endpoint(o);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "both";
    const unsigned short port = argc > 2 ? static_cast<unsigned short>(std::stoi(argv[2])) : 9999;
    try {
        if (mode == "server") {
            af::run([port] {
                af::DatagramEndpoint endpoint = server_endpoint(port);
                std::cout << "Starting UDP server on " << endpoint.local_address().to_string()
                          << "\n";
                serve(endpoint);
            });
        } else if (mode == "client") {
            af::run(ask, port, argc > 3 ? argv[3] : "Hello World!");
        } else if (mode == "both") {
            af::run([] {
                af::DatagramEndpoint endpoint = server_endpoint(0);  // a free port
                auto server = af::async(serve, std::ref(endpoint));
                for (const char* m : {"Hello World!", "", "one more"})
                    if (ask(endpoint.local_address().port, m) != m) throw af::Error("wrong echo");
                server.cancel();
            });
        } else {
            std::cerr << "usage: udp_echo [server [port] | client [port] [message]]\n";
            return 2;
        }
    } catch (const af::CancelledError&) {  // Ctrl-C
        std::cout << "Interrupted\n";
    } catch (const std::exception& e) {
        std::cerr << "udp_echo: " << e.what() << "\n";
        return 1;
    }
}

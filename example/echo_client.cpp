// TCP echo client, as in asyncio's streams documentation. Start example/echo_server first.
#include <asyncfiber/asyncfiber.hpp>

#include <iostream>

namespace af = asyncfiber;

int main(int argc, char** argv) {
    std::string message = argc > 1 ? argv[1] : "Hello World!";
    unsigned short port = argc > 2 ? static_cast<unsigned short>(std::stoi(argv[2])) : 8888;
    try {
        af::run([&] {
            auto rw = af::open_connection("127.0.0.1", port);
            std::cout << "Send: " << message << "\n";
            rw.second.write(message);
            rw.second.drain();
            std::string data = rw.first.read(100);
            std::cout << "Received: " << data << "\n";
            std::cout << "Close the connection\n";
            rw.second.close();
            rw.second.wait_closed();
        });
    } catch (const std::exception& e) {
        std::cerr << "echo_client: " << e.what() << "\n";
        return 1;
    }
}

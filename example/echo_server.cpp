// TCP echo server, as in asyncio's streams documentation: reads one message, echoes it back,
// closes. Run it, then example/echo_client. Stops on Ctrl-C.
#include <asyncfiber/asyncfiber.hpp>

#include <iostream>

namespace af = asyncfiber;

namespace {

void handle_echo(af::StreamReader reader, af::StreamWriter writer) {
    std::string data = reader.read(100);
    std::cout << "Received " << data << " from " << writer.peer_address().to_string() << "\n";
    std::cout << "Send: " << data << "\n";
    writer.write(data);
    writer.drain();
    std::cout << "Close the connection\n";
    writer.close();
    writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::stoi(argv[1])) : 8888;
    // Ctrl-C cancels the server's task; once run() has cleaned up, it throws
    // KeyboardInterrupt (asked for here) instead of ending the process as an interrupted
    // program, so that the program can say goodbye.
    af::RunOptions options;
    options.throw_on_interrupt = true;
    try {
        af::run(options, [port] {
            af::Server server = af::start_server(handle_echo, "127.0.0.1", port);
            for (const auto& a : server.addresses())
                std::cout << "Serving on " << a.to_string() << "\n";
            server.serve_forever();
        });
    } catch (const af::KeyboardInterrupt&) {
        std::cout << "Interrupted\n";
    }
}

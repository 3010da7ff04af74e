// A program that SIGINT interrupts, run in a child process by cancel_test (Sigint.*): it
// prints "ready" once af::run's main task waits, and the test then sends SIGINT.
//   interrupted_program          the README's first program's shape: af::run(main)
//   interrupted_program throw    af::run with RunOptions::throw_on_interrupt, catching
//                                af::KeyboardInterrupt (exit status 3)
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
struct AtExit {
    ~AtExit() { std::cout << "static destructor" << std::endl; }
} at_exit;

void main_task() {
    // Cancelled and finished by run()'s clean-up.
    af::async([] {
        try {
            af::sleep(100s);
        } catch (const af::CancelledError&) {
            af::sleep(1ms);  // a clean-up that suspends
            std::cout << "helper cleaned up" << std::endl;
            throw;
        }
    });
    std::cout << "ready" << std::endl;
    try {
        af::sleep(100s);
    } catch (const af::CancelledError& e) {
        std::cout << "main cancelled: " << e.what() << std::endl;
        throw;
    }
}
}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "throw") {
        af::RunOptions options;
        options.throw_on_interrupt = true;
        try {
            af::run(options, main_task);
        } catch (const af::KeyboardInterrupt& e) {
            std::cout << "caught: " << e.what() << std::endl;
            return 3;
        }
        return 0;
    }
    af::run(main_task);
    std::cout << "run returned" << std::endl;
    return 0;
}

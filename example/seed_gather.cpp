// The asyncio tutorial's second program (seeds/seed_gather.py), line for line.
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <iostream>

namespace af = asyncfiber;

namespace {

void my_coroutine(int x, int whichone) {
    std::cout << "Running coroutine... " << whichone << std::endl;
    af::sleep(std::chrono::seconds(x));
    std::cout << "Coroutine complete. " << whichone << std::endl;
}

void main_task() {
    af::gather([] { my_coroutine(1, 1); }, [] { my_coroutine(2, 2); }, [] { my_coroutine(3, 3); });
    std::cout << "all complete." << std::endl;
}

}  // namespace

int main() { af::run(main_task); }

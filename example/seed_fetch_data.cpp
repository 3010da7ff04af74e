// The asyncio tutorial's first program (seeds/seed_fetch_data.py), line for line.
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

std::string fetch_data() {
    // Perform an asynchronous operation (e.g. fetch data from a network or database)
    af::sleep(2s);  // Wait for 2 seconds
    return "Data fetched";
}

void main_task() {
    // Start the asynchronous operation
    std::string result = fetch_data();
    std::cout << result << std::endl;
}

}  // namespace

int main() { af::run(main_task); }

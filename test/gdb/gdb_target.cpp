// The program test/gdb/check_gdb_script.sh debugs: two tasks suspended in af::sleep (one
// named), then main stops itself with SIGTRAP so that gdb looks at them.
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <csignal>

namespace af = asyncfiber;

namespace {
void napping_in_a_named_task() { af::sleep(std::chrono::seconds(30)); }
}  // namespace

int main() {
    af::run([] {
        auto named = af::async(af::TaskOptions{"sleeper", 0}, [] { napping_in_a_named_task(); });
        auto unnamed = af::async([] { af::sleep(std::chrono::seconds(30)); });
        af::sleep(std::chrono::milliseconds(1));  // both are now suspended in sleep
        std::raise(SIGTRAP);
        named.cancel();
        unnamed.cancel();
        af::gather_settled(named, unnamed);
    });
}

// The program test/gdb/check_gdb_script.sh debugs: two tasks suspended in af::sleep (one
// named), a gather of tasks awaiting tasks (root gathers mid and other; mid awaits leaf),
// then main stops itself with SIGTRAP so that gdb looks at them (live, and in a core file).
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
        af::Event never;
        auto leaf = af::async(af::TaskOptions{"leaf", 0}, [&never] { never.wait(); });
        auto mid = af::async(af::TaskOptions{"mid", 0}, [leaf]() mutable { af::await(leaf); });
        auto other = af::async(af::TaskOptions{"other", 0}, [&never] { never.wait(); });
        auto root = af::async(af::TaskOptions{"root", 0},
                              [mid, other]() mutable { af::gather(mid, other); });
        af::sleep(std::chrono::milliseconds(1));  // every task is now suspended
        std::raise(SIGTRAP);
        named.cancel();
        unnamed.cancel();
        root.cancel();  // cancels mid and other, and mid's cancel goes on to leaf
        af::gather_settled(named, unnamed, root, mid, other, leaf);
    });
}

// An application built with -fsanitize=address (or thread) and linked against the ordinary
// asyncfiber library, built without sanitizers: the library must find the sanitizer runtime
// by itself and announce every fiber switch, so that the application's run shows zero
// reports. ctest runs it with halt_on_error=1; any report fails it (test/CMakeLists.txt).
//
// What it does is what goes wrong when switches are not announced:
// - exceptions thrown and caught on task stacks, some of them suspended inside the catch
//   block, then large stack buffers over the frames the exception unwound (ASan left their
//   redzones poisoned: the false "stack-buffer-overflow after an exception is caught on a
//   fiber stack" of Debian's Boost.Context);
// - deep stacks with buffers in every frame, suspended at the bottom;
// - many switches among many tasks, stacks reused by task after task;
// - under TSan, tasks that hand values to one another through the loop, a pool thread and a
//   second loop on another thread.
#include <asyncfiber/asyncfiber.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "sanitized_app: FAILED: %s\n", what);
        ++failures;
    }
}

// Keeps the compiler from dropping a buffer it sees no use of.
void use(volatile char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 64) p[i] = static_cast<char>(p[i] + 1);
}

__attribute__((noinline)) void throw_from_depth(int depth) {
    char frame[256];
    std::memset(frame, depth, sizeof frame);
    use(frame, sizeof frame);
    if (depth == 0) throw std::runtime_error("deep");
    throw_from_depth(depth - 1);
    use(frame, sizeof frame);
}

// The frames the exception unwound lie below this one: a large buffer here covers them.
__attribute__((noinline)) std::size_t big_frame_after_catch() {
    char big[16 * 1024];
    std::memset(big, 7, sizeof big);
    use(big, sizeof big);
    return static_cast<std::size_t>(big[128]);  // 7, plus one from use()
}

void exceptions_across_switches(int round) {
    for (int i = 0; i < 20; ++i) {
        try {
            throw_from_depth(16 + round % 8);
        } catch (const std::runtime_error& e) {
            af::sleep(std::chrono::seconds(0));  // suspended inside the catch block
            check(std::string(e.what()) == "deep", "the exception survives a switch in its catch");
            try {
                throw;  // this task's own exception, whatever the others threw meanwhile
            } catch (const std::runtime_error& again) {
                check(&again == &e, "throw; rethrows the task's own exception");
            }
        }
        check(big_frame_after_catch() == 8, "a stack buffer over the unwound frames is usable");
        af::sleep(std::chrono::seconds(0));
    }
}

__attribute__((noinline)) int deep_then_suspend(int depth, af::Event& ev) {
    char frame[512];
    std::memset(frame, depth & 0x7f, sizeof frame);
    use(frame, sizeof frame);
    if (depth == 0) {
        ev.wait();
        return frame[0];
    }
    return deep_then_suspend(depth - 1, ev) + (frame[1] ? 1 : 0);
}

void run_single_loop() {
    af::run([] {
        // Tasks that throw and catch across switches, interleaved.
        std::vector<af::Task<void>> throwers;
        for (int t = 0; t < 16; ++t)
            throwers.push_back(af::async([t] { exceptions_across_switches(t); }));
        af::gather(std::move(throwers));

        // Deep stacks (about 100 KiB of frames each) suspended at the bottom.
        af::Event ev;
        std::vector<af::Task<int>> deep;
        for (int t = 0; t < 8; ++t)
            deep.push_back(af::async(af::TaskOptions{"deep", 256 * 1024},
                                     [&ev] { return deep_then_suspend(180, ev); }));
        af::sleep(std::chrono::milliseconds(1));
        ev.set();
        for (int v : af::gather(std::move(deep))) check(v == 180, "deep recursion returns");

        // Many switches: 200 tasks yielding 500 times each, then short tasks reusing stacks.
        std::atomic<long> steps{0};
        std::vector<af::Task<void>> yielders;
        for (int t = 0; t < 200; ++t)
            yielders.push_back(af::async([&steps] {
                for (int i = 0; i < 500; ++i) {
                    steps.fetch_add(1, std::memory_order_relaxed);
                    af::sleep(std::chrono::seconds(0));
                }
            }));
        af::gather(std::move(yielders));
        check(steps.load() == 200 * 500, "every switch happened");
        for (int round = 0; round < 50; ++round) {
            auto t = af::async([round] {
                try {
                    throw_from_depth(round % 10);
                } catch (const std::exception&) {
                }
                return big_frame_after_catch();
            });
            check(af::await(t) == 8, "short tasks on reused stacks");
        }

        // Across threads: a pool thread's result, and a task failing with an exception that
        // another task catches.
        int from_thread = af::to_thread([] { return 41; });
        check(from_thread == 41, "to_thread");
        auto failing = af::async([]() -> int { throw std::logic_error("failed task"); });
        try {
            af::await(failing);
            check(false, "the failure reaches its awaiter");
        } catch (const std::logic_error& e) {
            check(std::string(e.what()) == "failed task", "the failure's message");
        }
    });
}

// A second loop on another thread, fed from this one through call_soon_threadsafe. The other
// loop ends only once the posting call has returned here (an io_context must not be destroyed
// while another thread is still inside its post()).
void run_two_loops() {
    std::atomic<af::Loop*> other{nullptr};
    std::atomic<int> got{0};
    std::atomic<bool> posted{false};
    std::thread th([&] {
        af::Loop loop;
        other.store(&loop);
        loop.run_until_complete([&] {
            while (got.load() == 0 || !posted.load()) af::sleep(std::chrono::milliseconds(1));
        });
        loop.close();
    });
    while (!other.load()) std::this_thread::yield();
    af::run([&] {
        for (int i = 0; i < 100; ++i) af::sleep(std::chrono::seconds(0));
        other.load()->call_soon_threadsafe([&] { got.store(1); });
        posted.store(true);
    });
    th.join();
    check(got.load() == 1, "the other loop got the callback");
}

}  // namespace

int main() {
    run_single_loop();
    run_two_loops();
    if (failures) return 1;
    std::printf("sanitized_app: all checks passed\n");
    return 0;
}

// libFuzzer target: the input bytes are a random schedule of spawn / sleep / cancel / await /
// gather / Event operations, consumed by the tasks as they run. Invariants checked:
// - every task ends (a lost wake-up hangs the run, which libFuzzer reports as a timeout);
// - gather_settled sees every task done, each with a value or cancelled;
// - nothing leaks: no live task after the run, no stack in use, every callable destroyed.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

namespace af = asyncfiber;

namespace {

#define FUZZ_CHECK(cond)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                        \
        }                                                                        \
    } while (0)

constexpr std::size_t kMaxTasks = 48;
long g_bodies = 0;  // callables alive (each holds a Counted)

struct Counted {
    Counted() { ++g_bodies; }
    Counted(const Counted&) { ++g_bodies; }
    ~Counted() { --g_bodies; }
};

struct Fuzz {
    Fuzz(const std::uint8_t* d, std::size_t n) : data(d), size(n) {}

    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;
    std::vector<af::Task<int>> tasks;
    af::Event events[4];

    bool more() const { return pos < size; }
    std::uint8_t next() { return pos < size ? data[pos++] : 0; }

    void spawn() {
        if (tasks.size() >= kMaxTasks) return;
        std::size_t self = tasks.size();
        Counted c;
        tasks.push_back(af::async([this, self, c] { return worker(self); }));
    }

    // Awaiting only tasks spawned later than oneself keeps the wait-for graph acyclic.
    std::size_t later_than(std::size_t self, std::uint8_t b) const {
        std::size_t n = tasks.size();
        if (self + 1 >= n) return n;
        return self + 1 + b % (n - self - 1);
    }

    int worker(std::size_t self) {
        for (int steps = 0; steps < 16 && more(); ++steps) {
            std::uint8_t op = next();
            std::uint8_t arg = next();
            switch (op % 8) {
            case 0: af::sleep(std::chrono::seconds(0)); break;
            case 1: af::sleep(std::chrono::microseconds(arg % 64)); break;
            case 2: events[arg % 4].wait(); break;
            case 3: events[arg % 4].set(); break;
            case 4: spawn(); break;
            case 5:
                if (!tasks.empty()) af::TaskRef(tasks[arg % tasks.size()]).cancel("fuzz");
                break;
            case 6: {
                std::size_t j = later_than(self, arg);
                if (j < tasks.size()) {
                    af::Task<int> t = tasks[j];
                    try {
                        af::await(t);
                    } catch (const af::CancelledError&) {
                        // `t` or this task was cancelled: carry on either way (other
                        // operations let a cancellation end the task).
                    }
                }
                break;
            }
            case 7: {
                std::size_t j = later_than(self, arg), k = later_than(self, next());
                if (j < tasks.size() && k < tasks.size() && j != k) {
                    auto r = af::gather_settled(tasks[j], tasks[k]);
                    (void)r;
                }
                break;
            }
            // Extension point: queue and lock operations (put/get, acquire/release) go here
            // once the primitives exist; widen `op % 8` accordingly.
            }
        }
        return static_cast<int>(self);
    }

    void main_task() {
        spawn();
        while (more() && tasks.size() < kMaxTasks) {
            std::uint8_t b = next();
            if (b % 4 == 0) spawn();
            else if (b % 4 == 1) af::sleep(std::chrono::seconds(0));
            else break;
        }
        // Let the schedule play out, then release every waiter and collect everyone.
        for (int i = 0; i < 8; ++i) af::sleep(std::chrono::seconds(0));
        for (auto& e : events) e.set();
        std::size_t n = 0;
        while (n != tasks.size()) {  // tasks spawned while we wait are collected too
            n = tasks.size();
            std::vector<af::Task<int>> batch(tasks.begin(), tasks.end());
            for (auto& o : af::gather_settled(std::move(batch))) FUZZ_CHECK(o.ok() || o.cancelled());
        }
        for (auto& t : tasks) FUZZ_CHECK(t.done());
        FUZZ_CHECK(af::debug::live_task_count() == 1);  // main only
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    {
        Fuzz f(data, size);
        af::run([&f] { f.main_task(); });
    }
    FUZZ_CHECK(g_bodies == 0);
    FUZZ_CHECK(af::debug::stack_pool_stats().live == 0);
    return 0;
}

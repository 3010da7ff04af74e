// An application built without -fstack-clash-protection (this file is: test/CMakeLists.txt):
// a frame larger than the guard page below a task's stack moves the stack pointer past the
// guard without touching it, into a neighbouring stack or beyond. The library checks the
// stack pointer on entry to every call that may suspend, so the overflow is reported (task
// name, stack size, remedy) at the next such call at the latest, even one that then does not
// suspend, instead of silently corrupting a neighbour.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kStack = 64 * 1024;

// A frame of the stack's size plus four pages: its top is inside the stack, the rest below
// the guard page. Only its top byte is written (as a function that fills a buffer from the
// end would); then a library call that completes at once.
template <class Call>
__attribute__((noinline)) void big_frame_then(Call call) {
    volatile char big[kStack + 16 * 1024];
    // The array's address escapes: the compiler must lay the whole frame out (clang would
    // keep only the byte used).
    asm volatile("" : : "r"(big) : "memory");
    big[sizeof big - 1] = 1;
    call();
    (void)big[sizeof big - 1];
}

template <class Call>
void overflow_then(Call call) {
    af::run([&] {
        // Neighbours, so that the frame lands in a mapped stack below, as it would in a busy
        // program, rather than at the end of the slab.
        std::vector<af::Task<void>> others;
        for (int i = 0; i < 4; ++i)
            others.push_back(
                af::async(af::TaskOptions{"neighbour", kStack}, [] { af::sleep(1h); }));
        af::sleep(0s);
        auto t = af::async(af::TaskOptions{"big-frame", kStack}, [&] { big_frame_then(call); });
        af::await(t);
        for (auto& o : others) o.cancel();
    });
}

const char* const kReport =
    "stack overflow in task 'big-frame' \\(id [0-9]+\\): the stack pointer went below the "
    "stack's limit.*Its stack is 65536 bytes \\(64 KiB\\)\\. Give the task a larger stack";

}  // namespace

TEST(StackCheckDeathTest, BigFrameThenAnEventThatIsSetIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(overflow_then([] {
                     static af::Event ev;
                     ev.set();
                     ev.wait();  // set: returns at once, no suspension
                 }),
                 kReport);
}

TEST(StackCheckDeathTest, BigFrameThenAnUncontendedLockIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(overflow_then([] {
                     static af::Lock lock;
                     lock.lock();  // free: taken at once
                     lock.unlock();
                 }),
                 kReport);
}

TEST(StackCheckDeathTest, BigFrameThenAQueueGetThatNeedNotWaitIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(overflow_then([] {
                     af::Queue<int> q;
                     q.put_nowait(1);
                     q.get();  // an item is there: no wait
                 }),
                 kReport);
}

// Without the big frame, the same calls pass: the check does not fire on a healthy stack.
TEST(StackCheck, SameCallsOnAHealthyStackPass) {
    af::run([] {
        auto t = af::async(af::TaskOptions{"small-frame", kStack}, [] {
            af::Event ev;
            ev.set();
            ev.wait();
            af::Lock lock;
            lock.lock();
            lock.unlock();
            af::Queue<int> q;
            q.put_nowait(1);
            return q.get();
        });
        EXPECT_EQ(af::await(t), 1);
    });
}

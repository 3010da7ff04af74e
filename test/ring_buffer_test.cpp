// detail::RingBuffer (the FIFO storage of af::Queue and af::Channel) and the heap of
// af::PriorityQueue, checked against std::deque and std::priority_queue over random sequences
// of operations; element lifetimes counted, so a leak, a double destruction or a lost element
// shows; a constructor that throws leaves the buffer as it was.
#include <asyncfiber/channel.hpp>
#include <asyncfiber/queue.hpp>
#include <asyncfiber/loop.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;

namespace {

// Counts live objects; optionally throws from its copy constructor.
struct Tracked {
    static int alive;
    static bool throw_on_copy;
    int value;
    explicit Tracked(int v) : value(v) { ++alive; }
    Tracked(const Tracked& o) : value(o.value) {
        if (throw_on_copy) throw std::runtime_error("copy");
        ++alive;
    }
    // Not noexcept: growing must copy (move_if_noexcept), so a throwing copy mid-way is seen.
    Tracked(Tracked&& o) : value(o.value) { ++alive; }
    Tracked& operator=(const Tracked&) = default;
    ~Tracked() { --alive; }
};
int Tracked::alive = 0;
bool Tracked::throw_on_copy = false;

struct alignas(64) OverAligned {
    int value;
};

}  // namespace

TEST(RingBuffer, MatchesADequeOverRandomPushesAndPops) {
    std::mt19937 rng(12345);
    {
        af::detail::RingBuffer<Tracked> ring;
        std::deque<int> model;
        for (int step = 0; step < 200000; ++step) {
            const int op = static_cast<int>(rng() % 10);
            if (op < 5 || model.empty()) {
                ring.push_back(Tracked(step));
                model.push_back(step);
            } else if (op < 8) {
                ASSERT_EQ(ring.pop_front().value, model.front());
                model.pop_front();
            } else {
                ASSERT_EQ(ring.pop_back().value, model.back());
                model.pop_back();
            }
            ASSERT_EQ(ring.size(), model.size());
            if (!model.empty()) {
                ASSERT_EQ(ring.front().value, model.front());
                ASSERT_EQ(ring.back().value, model.back());
            }
            ASSERT_EQ(Tracked::alive, static_cast<int>(model.size()));
        }
        ring.clear();
        EXPECT_TRUE(ring.empty());
        EXPECT_EQ(Tracked::alive, 0);
        ring.push_back(Tracked(7));  // usable after clear(), from the start of the array
        EXPECT_EQ(ring.pop_front().value, 7);
    }
    EXPECT_EQ(Tracked::alive, 0);
}

TEST(RingBuffer, GrowingAcrossTheWrapKeepsTheOrder) {
    af::detail::RingBuffer<int> ring;
    // Move the head off the start so that the next growth copies a wrapped range.
    for (int i = 0; i < 8; ++i) ring.push_back(i);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ring.pop_front(), i);
    for (int i = 8; i < 100; ++i) ring.push_back(i);
    for (int i = 5; i < 100; ++i) EXPECT_EQ(ring.pop_front(), i);
    EXPECT_TRUE(ring.empty());
}

TEST(RingBuffer, AThrowingCopyWhileGrowingLeavesTheBufferAsItWas) {
    {
        af::detail::RingBuffer<Tracked> ring;
        for (int i = 0; i < 8; ++i) ring.push_back(Tracked(i));  // full: the next push grows
        Tracked::throw_on_copy = true;
        EXPECT_THROW(ring.push_back(Tracked(8)), std::runtime_error);
        Tracked::throw_on_copy = false;
        ASSERT_EQ(ring.size(), 8u);
        EXPECT_EQ(Tracked::alive, 8);
        for (int i = 0; i < 8; ++i) EXPECT_EQ(ring.pop_front().value, i);
        const Tracked one(1);
        Tracked::throw_on_copy = true;  // the element's own copy throws: nothing is added
        EXPECT_THROW(ring.push_back(one), std::runtime_error);
        Tracked::throw_on_copy = false;
        EXPECT_TRUE(ring.empty());
    }
    EXPECT_EQ(Tracked::alive, 0);
}

TEST(RingBuffer, MoveOnlyAndOverAlignedElements) {
    af::detail::RingBuffer<std::unique_ptr<int>> owners;
    for (int i = 0; i < 20; ++i) owners.push_back(std::unique_ptr<int>(new int(i)));
    af::detail::RingBuffer<std::unique_ptr<int>> moved(std::move(owners));
    EXPECT_TRUE(owners.empty());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(*moved.pop_front(), i);

    af::detail::RingBuffer<OverAligned> aligned;
    for (int i = 0; i < 100; ++i) {
        aligned.push_back(OverAligned{i});
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&aligned.back()) % 64, 0u);
    }
    for (int i = 0; i < 100; ++i) EXPECT_EQ(aligned.pop_front().value, i);
}

// The heap against std::priority_queue: the same sequence of puts and gets takes out the same
// values, under the default order and under a reversed one.
TEST(PriorityQueue, MatchesStdPriorityQueueOverRandomPutsAndGets) {
    af::run([] {
        std::mt19937 rng(777);
        af::PriorityQueue<int> mine;
        std::priority_queue<int, std::vector<int>, std::greater<int>> model;
        af::PriorityQueue<int, std::greater<int>> mine_max;
        std::priority_queue<int> model_max;
        for (int step = 0; step < 100000; ++step) {
            if (rng() % 3 != 0 || model.empty()) {
                const int v = static_cast<int>(rng() % 1000);  // many equal keys
                mine.put_nowait(v);
                model.push(v);
                mine_max.put_nowait(v);
                model_max.push(v);
            } else {
                ASSERT_EQ(mine.get_nowait(), model.top());
                model.pop();
                ASSERT_EQ(mine_max.get_nowait(), model_max.top());
                model_max.pop();
            }
            ASSERT_EQ(mine.qsize(), model.size());
        }
        while (!model.empty()) {
            ASSERT_EQ(mine.get_nowait(), model.top());
            model.pop();
        }
        EXPECT_TRUE(mine.empty());
    });
}

// Queue and Channel keep every element once: nothing leaked or destroyed twice through
// growth, wrap-around, shutdown(immediate) and destruction with items left.
TEST(Queue, ElementsAreDestroyedExactlyOnce) {
    af::run([] {
        {
            af::Queue<Tracked> q;
            for (int i = 0; i < 50; ++i) q.put_nowait(Tracked(i));
            for (int i = 0; i < 30; ++i) EXPECT_EQ(q.get_nowait().value, i);
            for (int i = 50; i < 120; ++i) q.put_nowait(Tracked(i));
            for (int i = 30; i < 60; ++i) EXPECT_EQ(q.get_nowait().value, i);
            EXPECT_EQ(Tracked::alive, 60);
            q.shutdown(true);
            EXPECT_EQ(Tracked::alive, 0);
            af::Queue<Tracked> left;
            for (int i = 0; i < 10; ++i) left.put_nowait(Tracked(i));
        }
        EXPECT_EQ(Tracked::alive, 0);
        {
            af::Channel<Tracked> ch(16);
            for (int round = 0; round < 10; ++round) {
                for (int i = 0; i < 16; ++i) ch.put_nowait(Tracked(round * 100 + i));
                for (int i = 0; i < 16; ++i) EXPECT_EQ(ch.get_nowait().value, round * 100 + i);
            }
            for (int i = 0; i < 5; ++i) ch.put_nowait(Tracked(i));
            EXPECT_EQ(Tracked::alive, 5);
            ch.shutdown(true);
            EXPECT_EQ(Tracked::alive, 0);
            EXPECT_THROW(ch.get_nowait(), af::QueueShutDown);
        }
        EXPECT_EQ(Tracked::alive, 0);
    });
}

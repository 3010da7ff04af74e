// af::Channel: a bounded queue between tasks of any loop and plain threads. Ordering,
// shutdown, misuse, and no item lost or duplicated under a storm of cancellations.
#include <asyncfiber/channel.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/task.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

TEST(Channel, FifoAndTheNowaitForms) {
    af::Channel<std::unique_ptr<int>> ch(2);
    EXPECT_EQ(ch.capacity(), 2u);
    EXPECT_THROW(ch.get_nowait(), af::QueueEmpty);
    ch.put_nowait(std::unique_ptr<int>(new int(1)));
    ch.put_nowait(std::unique_ptr<int>(new int(2)));
    EXPECT_EQ(ch.qsize(), 2u);
    EXPECT_THROW(ch.put_nowait(std::unique_ptr<int>(new int(3))), af::QueueFull);
    EXPECT_EQ(*ch.get_nowait(), 1);
    EXPECT_EQ(*ch.get(), 2);  // a plain thread: does not block when an item is there
    EXPECT_EQ(ch.qsize(), 0u);
}

TEST(Channel, CapacityZeroIsRejected) { EXPECT_THROW(af::Channel<int>(0), std::invalid_argument); }

TEST(Channel, PlainThreadBlocksUntilATaskPuts) {
    af::Channel<int> ch(1);
    std::vector<int> got;
    std::thread consumer([&] {
        for (int i = 0; i < 3; ++i) got.push_back(ch.get());
    });
    af::run([&] {
        for (int i = 0; i < 3; ++i) ch.put(i);  // waits for the thread when full
    });
    consumer.join();
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

TEST(Channel, TaskWaitsForAPlainThreadWithoutBlockingItsLoop) {
    af::Channel<int> ch(1);
    int ticks = 0;
    int got = 0;
    std::thread producer;
    af::run([&] {
        auto ticker = af::async([&] {
            for (;;) {
                af::sleep(1ms);
                ++ticks;
            }
        });
        producer = std::thread([&] {
            std::this_thread::sleep_for(50ms);
            ch.put(7);
        });
        got = ch.get();
        ticker.cancel();
    });
    producer.join();
    EXPECT_EQ(got, 7);
    EXPECT_GT(ticks, 5);  // the loop went on while its task waited
}

TEST(Channel, PingPongBetweenTwoLoops) {
    af::Channel<int> ping(1), pong(1);
    const int rounds = 2000;
    int last = -1;
    std::thread other([&] {
        af::run([&] {
            for (int i = 0; i < rounds; ++i) pong.put(ping.get() + 1);
        });
    });
    af::run([&] {
        for (int i = 0; i < rounds; ++i) {
            ping.put(i);
            last = pong.get();
            ASSERT_EQ(last, i + 1);
        }
    });
    other.join();
    EXPECT_EQ(last, rounds);
}

TEST(Channel, ShutdownReturnsWhatIsLeftThenThrowsAndWakesWaiters) {
    af::Channel<int> ch(3);
    std::atomic<int> shut_down_errors{0};
    std::thread blocked_getter([&] {
        EXPECT_EQ(ch.get(), 1);
        try {
            ch.get();
        } catch (const af::QueueShutDown&) {
            ++shut_down_errors;
        }
    });
    af::run([&] {
        ch.put(1);
        af::sleep(20ms);
        auto waiting = af::async([&] {
            try {
                ch.get();
            } catch (const af::QueueShutDown&) {
                ++shut_down_errors;
            }
        });
        af::sleep(20ms);
        ch.shutdown();
        af::await(waiting);
    });
    blocked_getter.join();
    EXPECT_EQ(shut_down_errors.load(), 2);
    EXPECT_THROW(ch.put(1), af::QueueShutDown);
    EXPECT_THROW(ch.put_nowait(1), af::QueueShutDown);
    EXPECT_THROW(ch.get_nowait(), af::QueueShutDown);

    af::Channel<int> full(1);
    full.put(1);
    full.shutdown();
    EXPECT_EQ(full.get(), 1);  // not immediate: the item is still handed out
    EXPECT_THROW(full.get(), af::QueueShutDown);

    af::Channel<int> dropped(2);
    dropped.put(1);
    dropped.shutdown(true);
    EXPECT_EQ(dropped.qsize(), 0u);
    EXPECT_THROW(dropped.get(), af::QueueShutDown);
}

TEST(Channel, ShutdownWakesABlockedPutter) {
    af::Channel<int> ch(1);
    ch.put(1);
    std::atomic<bool> threw{false};
    std::thread putter([&] {
        try {
            ch.put(2);
        } catch (const af::QueueShutDown&) {
            threw = true;
        }
    });
    std::this_thread::sleep_for(20ms);
    ch.shutdown();
    putter.join();
    EXPECT_TRUE(threw.load());
}

TEST(Channel, CancelledGetTakesNothingAndCancelledPutPutsNothing) {
    af::run([] {
        af::Channel<int> ch(1);
        auto getter = af::async([&] { return ch.get(); });
        af::sleep(0ms);
        getter.cancel();
        EXPECT_THROW(af::await(getter), af::CancelledError);
        ch.put_nowait(5);
        EXPECT_EQ(ch.get_nowait(), 5);

        ch.put_nowait(1);
        auto putter = af::async([&] { ch.put(2); });
        af::sleep(0ms);
        putter.cancel();
        EXPECT_THROW(af::await(putter), af::CancelledError);
        EXPECT_EQ(ch.get_nowait(), 1);
        EXPECT_THROW(ch.get_nowait(), af::QueueEmpty);
    });
}

// The getter told of an item and cancelled before it ran passes the word on: the item goes
// to the next getter, nobody waits forever.
TEST(Channel, NotifiedGetterCancelledBeforeItRunsPassesTheItemOn) {
    af::run([] {
        af::Channel<int> ch(1);
        auto first = af::async([&] { return ch.get(); });
        auto second = af::async([&] { return ch.get(); });
        af::sleep(0ms);
        ch.put_nowait(9);  // tells `first`
        first.cancel();    // before it runs
        EXPECT_THROW(af::await(first), af::CancelledError);
        EXPECT_EQ(af::await(second), 9);
    });
}

TEST(Channel, NotifiedPutterCancelledBeforeItRunsPassesTheSlotOn) {
    af::run([] {
        af::Channel<int> ch(1);
        ch.put_nowait(0);
        auto first = af::async([&] { ch.put(1); });
        auto second = af::async([&] { ch.put(2); });
        af::sleep(0ms);
        EXPECT_EQ(ch.get_nowait(), 0);  // tells `first` of the slot
        first.cancel();
        EXPECT_THROW(af::await(first), af::CancelledError);
        af::await(second);
        EXPECT_EQ(ch.get_nowait(), 2);
    });
}

TEST(Channel, BlockingCallOnALoopThreadOutsideATaskIsRefused) {
    af::Channel<int> ch(1);
    af::run([&] {
        bool refused = false;
        af::Loop::current().call_soon([&] {
            try {
                ch.get();
            } catch (const af::RuntimeError&) {
                refused = true;
            }
        });
        af::sleep(1ms);
        EXPECT_TRUE(refused);
    });
}

// Two loops (each on its thread) and plain threads put and get; on each loop a task cancels
// the loop's producers and consumers at random moments, while other threads complete their
// waits. Every item whose put returned is received exactly once; an item whose put was
// cancelled is never received.
TEST(Channel, CancellationStormAcrossTwoLoopsAndThreadsLosesNothing) {
    const int per_producer = 2000;
    const int loop_producers = 3, loop_consumers = 3, thread_producers = 2, thread_consumers = 2;
    const int producers = 2 * loop_producers + thread_producers;
    const int total = producers * per_producer;
    af::Channel<int> ch(4);
    std::unique_ptr<std::atomic<int>[]> sent(new std::atomic<int>[total]);
    std::unique_ptr<std::atomic<int>[]> received(new std::atomic<int>[total]);
    for (int i = 0; i < total; ++i) {
        sent[i] = 0;
        received[i] = 0;
    }
    std::atomic<int> producers_left{producers};
    std::atomic<int> cancelled_ops{0};
    auto producer_done = [&] {
        if (--producers_left == 0) ch.shutdown();
    };
    auto consume = [&](bool in_task) {
        for (;;) {
            try {
                ++received[ch.get()];
            } catch (const af::CancelledError&) {
                ++cancelled_ops;
                (void)in_task;
            } catch (const af::QueueShutDown&) {
                return;
            }
        }
    };
    auto loop_main = [&](int loop_index) {
        std::vector<af::TaskRef> victims;
        std::vector<af::Task<void>> workers;
        for (int p = 0; p < loop_producers; ++p) {
            const int base = (loop_index * loop_producers + p) * per_producer;
            workers.push_back(af::async([&, base] {
                for (int id = base; id < base + per_producer; ++id) {
                    try {
                        ch.put(id);
                        sent[id] = 1;
                    } catch (const af::CancelledError&) {
                        ++cancelled_ops;
                    }
                }
                producer_done();
            }));
        }
        for (int c = 0; c < loop_consumers; ++c)
            workers.push_back(af::async([&] { consume(true); }));
        for (auto& w : workers) victims.push_back(w);
        auto canceller = af::async([&, loop_index] {
            std::minstd_rand rng(static_cast<unsigned>(loop_index + 1));
            for (;;) {
                if (rng() % 2)
                    af::sleep(std::chrono::microseconds(rng() % 200));
                else
                    af::sleep(0ms);
                victims[rng() % victims.size()].cancel();
            }
        });
        for (auto& w : workers) af::await(w);
        canceller.cancel();
    };
    std::vector<std::thread> threads;
    for (int l = 0; l < 2; ++l) threads.emplace_back([&, l] { af::run(loop_main, l); });
    for (int p = 0; p < thread_producers; ++p)
        threads.emplace_back([&, p] {
            const int base = (2 * loop_producers + p) * per_producer;
            for (int id = base; id < base + per_producer; ++id) {
                ch.put(id);
                sent[id] = 1;
            }
            producer_done();
        });
    for (int c = 0; c < thread_consumers; ++c) threads.emplace_back([&] { consume(false); });
    for (auto& t : threads) t.join();

    int sent_count = 0, received_count = 0;
    for (int i = 0; i < total; ++i) {
        ASSERT_EQ(received[i].load(), sent[i].load()) << "item " << i;
        sent_count += sent[i];
        received_count += received[i];
    }
    EXPECT_EQ(sent_count, received_count);
    EXPECT_GE(sent_count, thread_producers * per_producer);
    EXPECT_GT(cancelled_ops.load(), 0);  // the storm did land
    EXPECT_EQ(ch.qsize(), 0u);
}

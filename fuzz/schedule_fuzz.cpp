// libFuzzer target: the input bytes are a random schedule of spawn / sleep / cancel / await /
// gather / Event / Queue / Lock / Semaphore operations, consumed by the tasks as they run;
// cancellations hit tasks wherever they are, blocked in a full queue's put(), an empty
// queue's get(), waiting for the lock or holding it. Invariants checked:
// - every task ends (a lost wake-up hangs the run, which libFuzzer reports as a timeout);
// - no lost wake-up: once nothing can move, no getter waits on a non-empty queue, no putter
//   on a queue with room, no task for a free lock or a free semaphore unit;
// - every item put is got exactly once or is still in the queue at the end;
// - the lock is never held by two tasks, the semaphore never by more than its units, and
//   both are free at the end;
// - gather_settled sees every task done, each with a value or cancelled;
// - nothing leaks: no live task after the run, no stack in use, every callable destroyed.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include "fuzz_check.hpp"
#include "fuzz_target.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace af = asyncfiber;

namespace {

constexpr std::size_t kMaxTasks = 48;
long g_bodies = 0;  // callables alive (each holds a Counted)

struct Counted {
    Counted() { ++g_bodies; }
    Counted(const Counted&) { ++g_bodies; }
    ~Counted() { --g_bodies; }
};

// Counts the tasks inside a blocking call while they are in it (however they leave it).
struct Inside {
    explicit Inside(int& n) : n_(n) { ++n_; }
    ~Inside() { --n_; }
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;

private:
    int& n_;
};

constexpr int kSemUnits = 2;

struct Fuzz {
    Fuzz(const std::uint8_t* d, std::size_t n) : data(d), size(n) {}

    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;
    std::vector<af::Task<int>> tasks;
    af::Event events[4];
    af::Queue<int> small_queue{1}, big_queue{3};  // bounded: put() waits when full
    af::Queue<int>* queues[2] = {&small_queue, &big_queue};
    int in_put[2] = {0, 0};
    int in_get[2] = {0, 0};
    int next_item = 0;
    std::map<int, int> put_ok;  // item -> queue it was put into
    std::map<int, int> got;     // item -> times it was got
    af::Lock lock;
    int lock_holder = -1;
    int lock_waiting = 0;
    af::Semaphore sem{kSemUnits};
    int sem_holders = 0;
    int sem_waiting = 0;
    long steps = 0;  // operations started or finished: progress, for settle()

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
        for (int n = 0; n < 16 && more(); ++n) {
            std::uint8_t op = next();
            std::uint8_t arg = next();
            ++steps;
            struct Step {
                long& s;
                ~Step() { ++s; }
            } step_done{steps};
            switch (op % 14) {
            case 0:
                af::sleep(std::chrono::seconds(0));
                break;
            case 1:
                af::sleep(std::chrono::microseconds(arg % 64));
                break;
            case 2:
                events[arg % 4].wait();
                break;
            case 3:
                events[arg % 4].set();
                break;
            case 4:
                spawn();
                break;
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
            case 8: {  // put, waiting while the queue is full
                int q = arg % 2, item = ++next_item;
                {
                    Inside in(in_put[q]);
                    queues[q]->put(item);
                }
                put_ok[item] = q;
                break;
            }
            case 9: {  // get, waiting while the queue is empty
                int q = arg % 2, item;
                {
                    Inside in(in_get[q]);
                    item = queues[q]->get();
                }
                got_item(q, item);
                break;
            }
            case 10: {
                int q = arg % 2, item = ++next_item;
                bool was_full = queues[q]->full();
                try {
                    queues[q]->put_nowait(item);
                    FUZZ_CHECK(!was_full);
                    put_ok[item] = q;
                } catch (const af::QueueFull&) {
                    FUZZ_CHECK(was_full);
                }
                break;
            }
            case 11: {
                int q = arg % 2;
                bool was_empty = queues[q]->empty();
                try {
                    got_item(q, queues[q]->get_nowait());
                    FUZZ_CHECK(!was_empty);
                } catch (const af::QueueEmpty&) {
                    FUZZ_CHECK(was_empty);
                }
                break;
            }
            case 12:
            case 13: {  // the lock, held across a suspension (where a cancel may land)
                std::unique_ptr<Inside> waiting(new Inside(lock_waiting));
                std::lock_guard<af::Lock> guard(lock);
                waiting.reset();
                struct Holding {
                    Fuzz* f;
                    int self;
                    Holding(Fuzz* fz, int s) : f(fz), self(s) {
                        FUZZ_CHECK(f->lock_holder == -1);
                        f->lock_holder = s;
                    }
                    ~Holding() {
                        FUZZ_CHECK(f->lock_holder == self);
                        f->lock_holder = -1;
                    }
                } holding(this, static_cast<int>(self));
                FUZZ_CHECK(lock.locked());
                if (op % 14 == 12)
                    af::sleep(std::chrono::seconds(0));
                else
                    af::sleep(std::chrono::microseconds(arg % 32));
                break;
            }
            }
            if (op % 16 == 15) {  // a semaphore unit held across a yield
                {
                    Inside waiting(sem_waiting);
                    sem.acquire();
                }
                ++sem_holders;
                FUZZ_CHECK(sem_holders <= kSemUnits);
                try {
                    af::sleep(std::chrono::seconds(0));
                } catch (const af::CancelledError&) {
                    --sem_holders;
                    sem.release();
                    throw;
                }
                --sem_holders;
                sem.release();
            }
        }
        return static_cast<int>(self);
    }

    void got_item(int q, int item) {
        auto it = put_ok.find(item);
        FUZZ_CHECK(it != put_ok.end() && it->second == q);  // got only what was put, there
        FUZZ_CHECK(++got[item] == 1);                       // and only once
    }

    // Lets the schedule run until nothing moves any more (timed sleeps included).
    void settle() {
        for (int round = 0;; ++round) {
            FUZZ_CHECK(round < 100000);
            long before = steps;
            af::sleep(std::chrono::seconds(0));
            af::sleep(std::chrono::microseconds(100));
            if (steps == before) return;
        }
    }

    // Once nothing moves, a task still waiting must have a reason to.
    void check_no_lost_wakeup() {
        for (int q = 0; q < 2; ++q) {
            if (in_get[q] > 0) FUZZ_CHECK(queues[q]->empty());
            if (in_put[q] > 0) FUZZ_CHECK(queues[q]->full());
        }
        if (lock_waiting > 0) FUZZ_CHECK(lock.locked());
        if (sem_waiting > 0) FUZZ_CHECK(sem.value() == 0);
    }

    void main_task() {
        spawn();
        while (more() && tasks.size() < kMaxTasks) {
            std::uint8_t b = next();
            if (b % 4 == 0)
                spawn();
            else if (b % 4 == 1)
                af::sleep(std::chrono::seconds(0));
            else
                break;
        }
        // Let the schedule play out, release the event waiters, and check that whoever still
        // waits (in a queue, for the lock) does so for a reason; then cancel them.
        for (int i = 0; i < 8; ++i) af::sleep(std::chrono::seconds(0));
        settle();
        check_no_lost_wakeup();
        for (auto& e : events) e.set();
        settle();
        check_no_lost_wakeup();
        for (;;) {  // a task that swallows a cancellation (in await) may block again
            bool all_done = true;
            for (std::size_t i = 0; i < tasks.size(); ++i) {
                if (!tasks[i].done()) {
                    all_done = false;
                    af::TaskRef(tasks[i]).cancel("fuzz: end");
                }
            }
            if (all_done) break;
            af::sleep(std::chrono::microseconds(50));
        }
        std::vector<af::Task<int>> batch(tasks.begin(), tasks.end());
        for (auto& o : af::gather_settled(std::move(batch))) FUZZ_CHECK(o.ok() || o.cancelled());
        for (auto& t : tasks) FUZZ_CHECK(t.done());
        FUZZ_CHECK(af::debug::live_task_count() == 1);  // main only

        // Every item put was got exactly once or is still queued.
        for (int q = 0; q < 2; ++q) {
            FUZZ_CHECK(in_get[q] == 0 && in_put[q] == 0);
            while (!queues[q]->empty()) got_item(q, queues[q]->get_nowait());
        }
        for (const auto& p : put_ok) FUZZ_CHECK(got.count(p.first) == 1);
        FUZZ_CHECK(got.size() == put_ok.size());
        FUZZ_CHECK(!lock.locked() && lock_holder == -1 && lock_waiting == 0);
        FUZZ_CHECK(sem.value() == kSemUnits && sem_holders == 0 && sem_waiting == 0);
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

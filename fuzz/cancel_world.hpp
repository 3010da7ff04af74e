// The interpreter of the cancellation fuzzer's programs (fuzz/cancel_program.hpp): one
// World holds one of every primitive, a task per script, and the books (cancel_ledger.hpp)
// that say what must come out again. fuzz/cancel_fuzz.cpp runs it on libFuzzer's inputs;
// test/cancel_replay_test.cpp runs it on every saved input. Its invariants are listed in
// fuzz/cancel_fuzz.cpp's header comment and in docs/debugging.md.
//
// Environment:
//   CANCEL_FUZZ_AVOID=name,...  leaves out the paths of defects already known, so that a
//       long run looks for new ones: wait_for_fn, to_thread_cancel, condition_relock,
//       semaphore_fifo, as_completed_dup, asio_orphan (or `all`). Unset: everything is on.
//   CANCEL_FUZZ_TRACE=1  prints the program, then every operation as it starts and ends.
#pragma once

#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "../test/support/process_probes.hpp"
#include "cancel_ledger.hpp"
#include "cancel_program.hpp"
#include "fuzz_check.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cancel_fuzz {

namespace af = asyncfiber;
using Us = std::chrono::microseconds;

/// Paths of known defects to leave out (CANCEL_FUZZ_AVOID); all false by default.
struct Avoid {
    bool wait_for_fn = false;       // wait_for(fn, d) drops a value fn produced
    bool to_thread_cancel = false;  // a cancelled to_thread leaves fn running on the frame
    bool condition_relock = false;  // Condition loses a notification while re-acquiring
    bool semaphore_fifo = false;    // Semaphore lets a newcomer get ahead of a woken waiter
    bool as_completed_dup = false;  // as_completed with a duplicate, or resumed after break
    bool asio_orphan = false;       // a use_await read left running swallows later bytes

    static Avoid from_env() {
        Avoid a;
        const char* env = std::getenv("CANCEL_FUZZ_AVOID");
        if (!env) return a;
        std::string s = std::string(",") + env + ",";
        auto has = [&](const char* name) {
            return s.find(std::string(",") + name + ",") != std::string::npos ||
                   s.find(",all,") != std::string::npos;
        };
        a.wait_for_fn = has("wait_for_fn");
        a.to_thread_cancel = has("to_thread_cancel");
        a.condition_relock = has("condition_relock");
        a.semaphore_fifo = has("semaphore_fifo");
        a.as_completed_dup = has("as_completed_dup");
        a.asio_orphan = has("asio_orphan");
        return a;
    }
};

/// Callables alive (each body and worker holds one): all must be destroyed after a run.
inline long& live_callables() {
    static long n = 0;
    return n;
}
struct Counted {
    Counted() { ++live_callables(); }
    Counted(const Counted&) { ++live_callables(); }
    Counted& operator=(const Counted&) = default;
    ~Counted() { --live_callables(); }
};

/// The three queue kinds behind one interface.
class AnyQueue {
public:
    virtual ~AnyQueue() = default;
    virtual void put(int item) = 0;
    virtual int get() = 0;
    virtual void put_nowait(int item) = 0;
    virtual int get_nowait() = 0;
    virtual void task_done() = 0;
    virtual void join() = 0;
    virtual void shutdown(bool immediate) = 0;
    virtual bool empty() const = 0;
    virtual bool full() const = 0;
    virtual bool is_shutdown() const = 0;
};

template <class Q>
class QueueOf : public AnyQueue {
public:
    explicit QueueOf(int maxsize) : q_(maxsize) {}
    void put(int item) override { q_.put(item); }
    int get() override { return q_.get(); }
    void put_nowait(int item) override { q_.put_nowait(item); }
    int get_nowait() override { return q_.get_nowait(); }
    void task_done() override { q_.task_done(); }
    void join() override { q_.join(); }
    void shutdown(bool immediate) override { q_.shutdown(immediate); }
    bool empty() const override { return q_.empty(); }
    bool full() const override { return q_.full(); }
    bool is_shutdown() const override { return q_.is_shutdown(); }

private:
    Q q_;
};

/// One af::to_thread call, shared by the waiting task and the pool function.
struct ThreadCall {
    enum : int { queued, running, finished, dropped };
    std::atomic<int> state{queued};
    /// The call is in flight (World::threads_in_flight_) until both its task has seen it end
    /// and its function has returned or is known never to run.
    std::atomic<int> holds{2};
};

class World {
public:
    World(const Program& p, const Avoid& a)
        : program_(p),
          avoid_(a),
          items_({ItemLedger::Order::fifo, ItemLedger::Order::smallest, ItemLedger::Order::lifo}),
          sem_(p.sem_units),
          bsem_(p.sem_units),
          barrier_(static_cast<std::size_t>(p.barrier_parties)),
          trace_(std::getenv("CANCEL_FUZZ_TRACE") != nullptr) {
        queues_[0].reset(new QueueOf<af::Queue<int>>(p.queue_size));
        queues_[1].reset(new QueueOf<af::PriorityQueue<int>>(p.queue_size));
        queues_[2].reset(new QueueOf<af::LifoQueue<int>>(p.queue_size));
        sem_turns_.set_checked(!a.semaphore_fifo);
        bsem_turns_.set_checked(!a.semaphore_fifo);
        if (trace_) print(p, std::cerr);
    }

    /// The main task: sets the world up, starts a task per script, lets everything run
    /// until nothing moves, checks that whoever still waits has a reason to, then ends
    /// everything and balances the books.
    void main_task() {
        af::set_executor_size(af::Loop::current(), static_cast<std::size_t>(program_.pool_threads));
        // Counts the reports of af::use_await operations that completed with a result after
        // their task had left (a loss the library must not keep silent); others as usual.
        af::Loop::current().set_exception_handler([this](const af::ExceptionContext& c) {
            if (c.message.find("af::use_await") != std::string::npos && !c.exception) {
                ++orphans_reported_;
                return;
            }
            std::string what;
            if (c.exception) {
                try {
                    std::rethrow_exception(c.exception);
                } catch (const std::exception& e) {
                    what = e.what();
                } catch (...) {
                }
            }
            std::fprintf(stderr, "loop exception handler: %s %s\n", c.message.c_str(),
                         what.c_str());
        });
        if (program_.uses(Kind::stream_write) || program_.uses(Kind::stream_read)) open_tcp();
        if (program_.uses(Kind::fed_feed) || program_.uses(Kind::fed_read))
            fed_.reset(new af::debug::FedStream());
        if (program_.uses(Kind::asio_write) || program_.uses(Kind::asio_read)) open_asio();
        for (std::size_t i = 0; i < program_.scripts.size(); ++i) spawn_worker(i);

        settle();
        check_no_stranded_waiter();
        // The waits that nothing else ends: events never set. Then let it all play out again.
        closing_ = true;
        for (int e = 0; e < 2; ++e) set_event(e);
        settle();
        check_no_stranded_waiter();
        end_every_task();
        balance_the_books();
        FUZZ_CHECK(af::debug::live_task_count() == 1);  // main only
    }

    /// After af::run returned (the loop closed, its pool joined).
    void after_run() {
        for (const auto& c : thread_calls_) {
            int s = c->state.load();
            FUZZ_CHECK(s == ThreadCall::finished || s == ThreadCall::dropped);
        }
        FUZZ_CHECK(af::debug::stack_pool_stats().live == 0);
    }

private:
    static constexpr std::size_t kMaxWorkers = 32;
    static constexpr std::size_t kMaxValueTasks = 96;

    // ---- waiting, progress, deadlines ----------------------------------------------------

    /// A wait in progress and what would make it end: once nothing moves, no registered wait
    /// may find its reason to end already there (a lost wake-up strands its task).
    struct Waiting {
        Waiting(World& w, const char* what, std::function<bool()> ready)
            : w_(w), it_(w.waits_.insert(w.waits_.end(), Entry{what, std::move(ready)})) {}
        ~Waiting() {
            w_.waits_.erase(it_);
            ++w_.steps_;
        }
        Waiting(const Waiting&) = delete;
        Waiting& operator=(const Waiting&) = delete;

        struct Entry {
            const char* what;
            std::function<bool()> ready;
        };

    private:
        World& w_;
        std::list<Entry>::iterator it_;
    };

    void note_deadline(af::Clock::time_point t) {
        if (t > last_deadline_) last_deadline_ = t;
    }

    /// Lets the schedule run until nothing moves: no operation starts or ends, no pool
    /// function runs, and every deadline set so far has passed.
    void settle() {
        int quiet = 0;
        for (int round = 0; quiet < 2; ++round) {
            FUZZ_CHECK(round < 200000);
            long before = steps_;
            af::sleep(Us(0));
            af::sleep(Us(100));
            if (steps_ == before && threads_in_flight_.load() == 0 &&
                af::Clock::now() > last_deadline_ + std::chrono::milliseconds(2))
                ++quiet;
            else
                quiet = 0;
        }
    }

    void check_no_stranded_waiter() {
        for (const auto& w : waits_) {
            const bool stranded = w.ready();
            if (stranded) std::fprintf(stderr, "stranded: a task waits in %s\n", w.what);
            FUZZ_CHECK(!stranded);
        }
    }

    // ---- tasks -----------------------------------------------------------------------------

    void spawn_worker(std::size_t script) {
        if (workers_.size() >= kMaxWorkers) return;
        std::size_t id = workers_.size();
        Counted c;
        workers_.push_back(af::async([this, script, id, c] { worker(script, id); }));
    }

    void worker(std::size_t script, std::size_t id) {
        const Script& s = program_.scripts[script];
        for (const Op& op : s.ops) {
            if (!s.resilient) {
                step(op, id);
                continue;
            }
            try {
                step(op, id);
            } catch (const af::CancelledError&) {
                af::current_task().uncancel();  // taken back: go on with the next operation
            }
        }
    }

    void step(const Op& op, std::size_t id) {
        ++steps_;
        struct Done {
            World& w;
            const Op& op;
            std::size_t id;
            bool returned;
            ~Done() {
                ++w.steps_;
                if (w.trace_)
                    std::fprintf(stderr, "  [%zu] %s %s\n", id, returned ? "done" : "unwound",
                                 describe(op).c_str());
            }
        } done{*this, op, id, false};
        if (trace_) std::fprintf(stderr, "  [%zu] start %s\n", id, describe(op).c_str());
        perform(op, id);
        done.returned = true;
    }

    /// A task whose value is an item: registered so that its value, if nobody took it, is
    /// found at the end ("still retrievable").
    struct ValueTask {
        af::Task<int> task;
        bool consumed = false;
    };

    bool can_spawn_value(std::size_t n = 1) const { return values_.size() + n <= kMaxValueTasks; }

    std::size_t register_value(af::Task<int> t) {
        values_.push_back(ValueTask{std::move(t), false});
        return values_.size() - 1;
    }

    /// op's body as a callable that may run in another task; `started` (if any) is called
    /// first (see Deadline::starter()).
    std::function<int()> body_fn(const Op& op, std::function<void()> started = {}) {
        Counted c;
        return [this, op, c, started] {
            if (started) started();
            return body(op);
        };
    }

    std::size_t spawn_value(const Op& op, std::function<void()> started = {}) {
        return register_value(af::async(body_fn(op, std::move(started))));
    }

    /// The value of value task i was handed to the code that asked for it.
    int consume(std::size_t i, int r) {
        FUZZ_CHECK(!values_[i].consumed);
        values_[i].consumed = true;
        return r;
    }

    void deliver(int r) {
        if (r >= 0) items_.delivered(r);
    }

    // ---- operations --------------------------------------------------------------------------

    void perform(const Op& op, std::size_t id) {
        switch (op.kind) {
        case Kind::yield:
            af::sleep(Us(0));
            break;
        case Kind::cancel_task: {
            std::size_t j = op.arg % (workers_.size() + 1);
            if (j == workers_.size() || j == id)
                af::current_task().cancel("fuzz: self");
            else
                workers_[j].cancel("fuzz");
            break;
        }
        case Kind::cancel_soon: {
            af::TaskRef t = workers_[op.arg % workers_.size()];
            af::Loop::current().call_soon([t]() mutable { t.cancel("fuzz: from a callback"); });
            break;
        }
        case Kind::cancel_value_task:
            if (!values_.empty()) values_[op.arg % values_.size()].task.cancel("fuzz: value task");
            break;
        case Kind::spawn:
            if (!closing_) spawn_worker(op.arg % program_.scripts.size());
            break;
        case Kind::put_nowait: {
            std::size_t q = op.arg % 3;
            int item = items_.fresh();
            bool was_full = queues_[q]->full();
            try {
                queues_[q]->put_nowait(item);
                FUZZ_CHECK(!was_full);
                items_.put(q, item);
                ++unfinished_[q];
            } catch (const af::QueueFull&) {
                FUZZ_CHECK(was_full && !queues_[q]->is_shutdown());
            } catch (const af::QueueShutDown&) {
                FUZZ_CHECK(queues_[q]->is_shutdown());
            }
            break;
        }
        case Kind::get_nowait: {
            std::size_t q = op.arg % 3;
            bool was_empty = queues_[q]->empty();
            try {
                int item = queues_[q]->get_nowait();
                FUZZ_CHECK(!was_empty);
                items_.popped(q, item);
                items_.delivered(item);
                queues_[q]->task_done();
                --unfinished_[q];
            } catch (const af::QueueEmpty&) {
                FUZZ_CHECK(was_empty && !queues_[q]->is_shutdown());
            } catch (const af::QueueShutDown&) {
                FUZZ_CHECK(was_empty && queues_[q]->is_shutdown());
            }
            break;
        }
        case Kind::queue_shutdown: {
            std::size_t q = op.arg % 3;
            const bool immediate = (op.arg & 0x80) != 0;
            if (immediate) unfinished_[q] -= static_cast<long>(items_.dropped_all(q));
            queues_[q]->shutdown(immediate);
            if (immediate) FUZZ_CHECK(queues_[q]->empty());
            break;
        }
        case Kind::event_set:
            set_event(op.arg % 2);
            break;
        case Kind::event_clear:
            events_[op.arg % 2].clear();
            break;
        case Kind::barrier_reset:
            if (op.arg & 1)
                barrier_.abort();
            else
                barrier_.reset();
            break;
        case Kind::fed_feed: {
            std::string chunk = fed_bytes_.next(1 + op.arg % 32, (op.arg & 0x40) != 0);
            fed_->feed_data(chunk);
            fed_bytes_.sent(chunk);
            break;
        }
        case Kind::asio_write: {
            std::string chunk = asio_bytes_.next(1 + op.arg % 24);
            if (chunk.empty()) break;
            std::size_t n = boost::asio::write(*asio_a_, boost::asio::buffer(chunk));
            FUZZ_CHECK(n == chunk.size());
            asio_bytes_.sent(chunk);
            break;
        }
        default:
            deliver(call(op));  // the blocking operations, through op.via
        }
    }

    /// Runs op's body through its Via; returns the item it produced (or -1), which the
    /// caller delivers before it can suspend again.
    int call(const Op& op) {
        const Us d = duration_of(op.dur);
        switch (op.via) {
        case Via::direct:
            return body(op);
        case Via::timeout:
            return timed(op, d);
        case Via::timeout_zero:
            return timed(op, Us(0));
        case Via::wait_for_fn: {
            if (avoid_.wait_for_fn) return timed(op, d);
            Deadline dl(*this, d);
            try {
                return af::wait_for(body_fn(op, dl.starter()), d);
            } catch (const af::TimeoutError&) {
                dl.check_passed();
                return -1;
            }
        }
        case Via::wait_for_task: {
            if (!can_spawn_value()) return body(op);
            Deadline dl(*this, d);
            std::size_t i = spawn_value(op, dl.starter());
            af::Task<int> t = values_[i].task;
            try {
                return consume(i, af::wait_for(t, d));
            } catch (const af::TimeoutError&) {
                dl.check_passed();
                return -1;
            }
        }
        case Via::shield: {
            if (!can_spawn_value()) return body(op);
            std::size_t i = spawn_value(op);
            af::Task<int> s = af::shield(values_[i].task);
            return consume(i, af::await(s));
        }
        case Via::awaited_task: {
            if (!can_spawn_value()) return body(op);
            std::size_t i = spawn_value(op);
            af::Task<int> t = values_[i].task;
            return consume(i, af::await(t));
        }
        case Via::nested: {
            Deadline outer(*this, d);
            try {
                return af::timeout(d, [&] {
                    outer.starter()();
                    return timed(op, nested_inner_duration(op.arg));  // its own expiry only
                });
            } catch (const af::TimeoutError&) {
                outer.check_passed();
                return -1;
            }
        }
        }
        return -1;
    }

    /// A deadline being set by a scope: its TimeoutError must not come before now + d, and
    /// once the scope's code has started (starter()), the scope's own deadline is known not
    /// to be later than then + d: past it (with 1 ms to spare), a scope still waiting counts
    /// as stranded.
    class Deadline {
    public:
        Deadline(World& w, Us d)
            : w_(w),
              d_(d),
              earliest_(af::Clock::now() + d),
              latest_(std::make_shared<af::Clock::time_point>(af::Clock::time_point::max())),
              waiting_(w, "a scope past its deadline", [this] {
                  if (*latest_ == af::Clock::time_point::max()) return false;
                  const auto late = af::Clock::now() - *latest_;
                  if (late <= std::chrono::milliseconds(1)) return false;
                  std::fprintf(
                      stderr, "a deadline of %lld us passed %lld us ago\n",
                      static_cast<long long>(d_.count()),
                      static_cast<long long>(std::chrono::duration_cast<Us>(late).count()));
                  return true;
              }) {
            w.note_deadline(earliest_);
        }
        /// To call where the scope's code starts; it may run in another task, after this
        /// object is gone.
        std::function<void()> starter() const {
            std::shared_ptr<af::Clock::time_point> latest = latest_;
            World* w = &w_;
            Us d = d_;
            return [latest, w, d] {
                *latest = af::Clock::now() + d;
                w->note_deadline(*latest);
            };
        }
        void check_passed() const { FUZZ_CHECK(af::Clock::now() >= earliest_); }

    private:
        World& w_;
        Us d_;
        af::Clock::time_point earliest_;
        std::shared_ptr<af::Clock::time_point> latest_;
        Waiting waiting_;
    };

    int timed(const Op& op, Us d) {
        Deadline dl(*this, d);
        try {
            return af::timeout(d, body_fn(op, dl.starter()));
        } catch (const af::TimeoutError&) {
            dl.check_passed();
            return -1;
        }
    }

    /// Yields or sleeps while holding something (arg bits 4..5 yields, or bit 6: a timed
    /// sleep of dur).
    void hold(const Op& op) {
        if (op.arg & 0x40) {
            note_deadline(af::Clock::now() + duration_of(op.dur));
            af::sleep(duration_of(op.dur));
        } else {
            for (int k = (op.arg >> 4) % 4; k > 0; --k) af::sleep(Us(0));
        }
    }

    /// The blocking part of an operation: what a cancellation or a deadline interrupts.
    int body(const Op& op) {
        switch (op.kind) {
        case Kind::sleep:
            note_deadline(af::Clock::now() + duration_of(op.dur));
            af::sleep(duration_of(op.dur));
            return -1;
        case Kind::put:
            return put_body(op.arg % 3);
        case Kind::get:
            return get_body(op.arg % 3);
        case Kind::join_queue: {
            std::size_t q = op.arg % 3;
            Waiting w(*this, "Queue::join", [this, q] { return unfinished_[q] == 0; });
            queues_[q]->join();
            return -1;
        }
        case Kind::lock:
            return lock_body(op);
        case Kind::semaphore:
            return semaphore_body(op, sem_, sem_turns_, sem_holders_, "Semaphore");
        case Kind::bounded_semaphore:
            return semaphore_body(op, bsem_, bsem_turns_, bsem_holders_, "BoundedSemaphore");
        case Kind::cond_wait:
            return cond_wait_body();
        case Kind::cond_notify:
            return cond_notify_body(op);
        case Kind::event_wait: {
            int e = op.arg % 2;
            long gen = event_gen_[e];
            Waiting w(*this, "Event::wait", [this, e, gen] { return event_gen_[e] > gen; });
            events_[e].wait();
            return -1;
        }
        case Kind::barrier_wait:
            return barrier_body();
        case Kind::to_thread:
            return to_thread_body(op);
        case Kind::stream_write:
            return tcp_write_body(op);
        case Kind::stream_read:
            return read_body(op, tcp_reader_, tcp_bytes_, nullptr);
        case Kind::fed_read:
            return read_body(op, fed_->reader(), fed_bytes_, "FedStream read");
        case Kind::asio_timer:
            return asio_timer_body(op);
        case Kind::asio_read:
            return asio_read_body(op);
        case Kind::gather_gets:
            return gather_body(op);
        case Kind::as_completed_gets:
            return as_completed_body(op);
        case Kind::wait_gets:
            return wait_body(op);
        case Kind::task_group:
            return task_group_body(op);
        default:
            break;  // not blocking: done in perform()
        }
        af::sleep(Us(0));
        return -1;
    }

    int put_body(std::size_t q) {
        int item = items_.fresh();
        try {
            Waiting w(*this, "Queue::put",
                      [this, q] { return !queues_[q]->full() || queues_[q]->is_shutdown(); });
            queues_[q]->put(item);
        } catch (const af::QueueShutDown&) {
            FUZZ_CHECK(queues_[q]->is_shutdown());
            return -1;
        }
        items_.put(q, item);
        ++unfinished_[q];
        return -1;
    }

    int get_body(std::size_t q) {
        int item;
        try {
            Waiting w(*this, "Queue::get",
                      [this, q] { return !queues_[q]->empty() || queues_[q]->is_shutdown(); });
            item = queues_[q]->get();
        } catch (const af::QueueShutDown&) {
            FUZZ_CHECK(queues_[q]->is_shutdown() && queues_[q]->empty());
            return -1;
        }
        items_.popped(q, item);
        queues_[q]->task_done();
        --unfinished_[q];
        return item;
    }

    /// One first-come, first-served attempt to acquire (see Turnstile): the ticket is taken
    /// before `acquire()` and given back if it ends without the resource (it threw, or, for a
    /// try_ form, returned false).
    template <class Acquire>
    bool acquire_in_turn(Turnstile& turns, const char* what, std::function<bool()> ready,
                         Acquire acquire) {
        long ticket = turns.enter();
        bool got;
        try {
            Waiting w(*this, what, std::move(ready));
            got = acquire();
        } catch (...) {
            turns.left(ticket);
            throw;
        }
        if (got)
            turns.acquired(ticket);
        else
            turns.left(ticket);
        return got;
    }

    /// arg bit 7: try_lock() (never waits) instead of lock().
    int lock_body(const Op& op) {
        const bool try_only = (op.arg & 0x80) != 0;
        if (!acquire_in_turn(
                lock_turns_, "Lock::lock", [this] { return !lock_.locked(); },
                [this, try_only] {
                    if (try_only) return lock_.try_lock();
                    lock_.lock();
                    return true;
                }))
            return -1;
        struct Held {
            World& w;
            long token;
            Held(World& wd, long t) : w(wd), token(t) {
                FUZZ_CHECK(w.lock_holder_ == 0);  // never two holders
                FUZZ_CHECK(w.lock_.locked());
                w.lock_holder_ = token;
            }
            ~Held() {
                FUZZ_CHECK(w.lock_holder_ == token);
                w.lock_holder_ = 0;
                w.lock_.unlock();
            }
        } held(*this, ++lock_holds_);
        hold(op);
        return -1;
    }

    template <class Sem>
    /// arg bit 7: try_acquire() (never waits) instead of acquire().
    int semaphore_body(const Op& op, Sem& sem, Turnstile& turns, int& holders, const char* what) {
        const bool try_only = (op.arg & 0x80) != 0;
        if (!acquire_in_turn(
                turns, what, [&sem] { return sem.value() > 0; },
                [&sem, try_only] {
                    if (try_only) return sem.try_acquire();
                    sem.acquire();
                    return true;
                }))
            return -1;
        struct Held {
            Sem& sem;
            int& holders;
            int units;
            Held(Sem& s, int& h, int u) : sem(s), holders(h), units(u) {
                FUZZ_CHECK(++holders <= units);  // never more holders than units
            }
            ~Held() {
                --holders;
                try {
                    sem.release();
                } catch (...) {
                    FUZZ_CHECK(!"a release of a held unit failed");
                }
            }
        } held(sem, holders, program_.sem_units);
        hold(op);
        return -1;
    }

    /// Tracks the condition's lock: held by at most one, and held whenever wait() returns or
    /// throws.
    struct CondHeld {
        World& w;
        explicit CondHeld(World& wd) : w(wd) { w.cond_lock_taken(); }
        ~CondHeld() { --w.cond_holders_; }
    };
    void cond_lock_taken() {
        FUZZ_CHECK(cond_.locked());
        FUZZ_CHECK(++cond_holders_ == 1);
    }

    std::unique_lock<af::Condition> take_cond_lock() {
        std::unique_lock<af::Condition> guard(cond_, std::defer_lock);
        Waiting w(*this, "the Condition's lock", [this] { return !cond_.locked(); });
        guard.lock();
        return guard;
    }

    int cond_wait_body() {
        std::unique_lock<af::Condition> guard = take_cond_lock();
        CondHeld held(*this);
        while (tokens_ == 0) {
            --cond_holders_;
            try {
                Waiting w(*this, "Condition::wait",
                          [this] { return tokens_ > 0 && !avoid_.condition_relock; });
                cond_.wait();
            } catch (...) {
                cond_lock_taken();
                throw;
            }
            cond_lock_taken();
        }
        --tokens_;
        return -1;
    }

    int cond_notify_body(const Op& op) {
        std::unique_lock<af::Condition> guard = take_cond_lock();
        CondHeld held(*this);
        ++tokens_;
        if (op.arg & 1)
            cond_.notify_all();
        else
            cond_.notify(1);
        // arg bit 1: go on holding the lock (a yield, then hold()) while the notified waiters
        // queue up for it, where a cancellation or their deadline then lands in re-acquiring.
        if (op.arg & 2) {
            af::sleep(Us(0));
            hold(op);
        }
        return -1;
    }

    void set_event(int e) {
        if (!events_[e].is_set()) ++event_gen_[e];
        events_[e].set();
    }

    int barrier_body() {
        ++in_barrier_;
        struct Leave {
            int& n;
            ~Leave() { --n; }
        } leave{in_barrier_};
        Waiting w(*this, "Barrier::wait", [this] {
            return barrier_.broken() || in_barrier_ >= program_.barrier_parties ||
                   static_cast<int>(barrier_.n_waiting()) != in_barrier_;
        });
        try {
            // An index may repeat within a round once a waiter has left it (cancelled), as in
            // asyncio, whose index is the count of waiters at arrival.
            FUZZ_CHECK(barrier_.wait() < static_cast<std::size_t>(program_.barrier_parties));
        } catch (const af::BrokenBarrierError&) {
        }
        return -1;
    }

    /// A function on the pool makes a fresh item and writes it into a box that the calling
    /// frame owns (captured by reference, as code ported from threads does): it must have
    /// finished before the frame unwinds, or never start.
    int to_thread_body(const Op& op) {
        auto call = std::make_shared<ThreadCall>();
        thread_calls_.push_back(call);
        const int item = items_.fresh();
        const Us spin(op.arg % 64);
        std::unique_ptr<int> box(new int(-1));
        int& slot = *box;
        ++threads_in_flight_;
        auto release = [this, call] {
            if (--call->holds == 0) --threads_in_flight_;
        };
        const bool tolerate_late_run = avoid_.to_thread_cancel;
        auto fn = [call, item, spin, tolerate_late_run, release](int* frame_slot) {
            int expected = ThreadCall::queued;
            if (!call->state.compare_exchange_strong(expected, ThreadCall::running)) {
                // Its task was cancelled while the call was queued, and left: it must not run.
                if (!tolerate_late_run)
                    std::fprintf(
                        stderr,
                        "to_thread: a function runs after its call was cancelled and left\n");
                FUZZ_CHECK(tolerate_late_run);
                return item;
            }
            auto until = std::chrono::steady_clock::now() + spin;
            while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
            if (frame_slot) *frame_slot = item;
            call->state = ThreadCall::finished;
            release();
            return item;
        };
        try {
            int v = avoid_.to_thread_cancel ? af::to_thread([fn] { return fn(nullptr); })
                                            : af::to_thread([fn, &slot] { return fn(&slot); });
            release();
            FUZZ_CHECK(v == item);
            FUZZ_CHECK(call->state.load() == ThreadCall::finished);
            if (!avoid_.to_thread_cancel) FUZZ_CHECK(slot == item);
            items_.produced(item);
            return item;
        } catch (const af::CancelledError&) {
            release();
            int expected = ThreadCall::queued;
            if (call->state.compare_exchange_strong(expected, ThreadCall::dropped)) {
                release();  // cancelled while queued (or before): it never runs
            } else if (!avoid_.to_thread_cancel) {  // it ran: the task waited for it
                const int state = call->state.load();
                if (state != ThreadCall::finished)
                    std::fprintf(
                        stderr,
                        "to_thread: the call was cancelled and left while its function runs\n");
                FUZZ_CHECK(state == ThreadCall::finished);
            }
            throw;
        }
    }

    void open_tcp() {
        af::Event ready;
        af::ServerOptions options;
        options.limit = 4 * kMaxStreamBytes;  // readline() never overruns
        tcp_server_ = af::start_server(
            [this, &ready](af::StreamReader r, af::StreamWriter w) {
                tcp_reader_ = r;
                tcp_server_writer_ = w;
                ready.set();
                tcp_end_.wait();
            },
            "127.0.0.1", 0, options);
        auto rw = af::open_connection("127.0.0.1", tcp_server_.port());
        tcp_writer_ = rw.second;
        tcp_client_reader_ = rw.first;
        tcp_writer_.set_write_buffer_limits(4096);
        ready.wait();
    }

    static constexpr std::size_t kMaxStreamBytes = 256 * 1024;

    int tcp_write_body(const Op& op) {
        std::size_t n = (op.arg & 0x80) ? 1024u * (1 + op.arg % 64) : 1u + op.arg % 64;
        if (tcp_bytes_.sent_size() + n > kMaxStreamBytes) n = 1;
        std::string chunk = tcp_bytes_.next(n, (op.arg & 0x40) != 0);
        tcp_writer_.write(chunk);  // never suspends
        tcp_bytes_.sent(chunk);
        tcp_writer_.drain();
        return -1;
    }

    /// read(n), readexactly(n), readline() or readuntil() on a stream whose bytes are in
    /// `bytes`. A second task trying to read while one waits gets RuntimeError and takes
    /// nothing. `what`: the stream's data comes only from this program (FedStream), so a wait
    /// for what is already buffered is a lost wake-up.
    int read_body(const Op& op, af::StreamReader r, ByteLedger& bytes, const char* what) {
        static const char kSep[] = "yz";  // once in every cycle of ByteLedger::next()
        std::size_t n = 1 + (op.arg / 4) % 32;
        int how = op.arg % 4;
        std::string got;
        try {
            std::unique_ptr<Waiting> w;
            if (what)
                w.reset(new Waiting(*this, what, [r, &bytes, n, how] {
                    FUZZ_CHECK(r.buffered() == bytes.unreceived());
                    if (how == 0) return r.buffered() > 0;
                    if (how == 1) return r.buffered() >= n;
                    return bytes.pending().find(how == 2 ? "\n" : kSep) != std::string::npos;
                }));
            switch (how) {
            case 0:
                got = r.read(static_cast<std::ptrdiff_t>(n));
                break;
            case 1:
                got = r.readexactly(n);
                break;
            case 2:
                got = r.readline();
                break;
            default:
                got = r.readuntil(kSep);
                break;
            }
        } catch (const af::RuntimeError&) {
            return -1;  // another task is reading
        }
        FUZZ_CHECK(!got.empty());  // no EOF before the end
        bytes.received(got);
        return -1;
    }

    static constexpr std::size_t kMaxAsioRead = 16;

    void open_asio() {
        auto& io = af::Loop::current().io_context();
        asio_a_.reset(new boost::asio::local::stream_protocol::socket(io));
        asio_b_.reset(new boost::asio::local::stream_protocol::socket(io));
        boost::asio::local::connect_pair(*asio_a_, *asio_b_);
    }

    int asio_timer_body(const Op& op) {
        boost::asio::steady_timer t(af::Loop::current().io_context(), duration_of(op.dur));
        note_deadline(af::Clock::now() + duration_of(op.dur));
        if (op.arg & 1)
            t.async_wait(af::use_await.cancels(t));
        else
            t.async_wait(af::use_await);
        return -1;
    }

    /// async_read_some on the socket pair's reading end. With .cancels(socket) the buffer is
    /// in the frame: a cancelled operation is aborted and must never write into it later.
    /// Without, the buffer is the world's (as the documentation asks).
    int asio_read_body(const Op& op) {
        const std::size_t max = 1 + op.arg % kMaxAsioRead;
        char frame_buf[kMaxAsioRead];
        const bool cancels = (op.arg & 0x80) || avoid_.asio_orphan;
        asio_buffers_.emplace_back(new char[kMaxAsioRead]);
        char* buf = cancels ? frame_buf : asio_buffers_.back().get();
        std::size_t n;
        try {
            if (cancels)
                n = asio_b_->async_read_some(boost::asio::buffer(buf, max),
                                             af::use_await.cancels(*asio_b_));
            else
                n = asio_b_->async_read_some(boost::asio::buffer(buf, max), af::use_await);
        } catch (const af::CancelledError&) {
            asio_bytes_.cancelled_read(max);
            throw;
        } catch (const boost::system::system_error& e) {
            // Another task's .cancels(socket) aborted every operation of the socket.
            FUZZ_CHECK(e.code() == boost::asio::error::operation_aborted);
            return -1;
        }
        FUZZ_CHECK(n > 0 && n <= max);
        asio_bytes_.received(std::string(buf, n));
        return -1;
    }

    /// Items from 2..3 tasks that each get from a queue (arg picks the first queue).
    std::vector<std::size_t> spawn_getters(const Op& op, std::size_t k) {
        std::vector<std::size_t> idx;
        if (!can_spawn_value(k)) return idx;
        for (std::size_t i = 0; i < k; ++i) {
            Op get{Kind::get, Via::direct, op.dur, static_cast<std::uint8_t>(op.arg / 2 + i)};
            idx.push_back(spawn_value(get));
        }
        return idx;
    }

    /// All tasks done: what a wait for all of them waits for.
    std::function<bool()> all_done(const std::vector<std::size_t>& idx) {
        return [this, idx] {
            for (std::size_t i : idx)
                if (!values_[i].task.done()) return false;
            return true;
        };
    }

    int gather_body(const Op& op) {
        std::vector<std::size_t> idx = spawn_getters(op, 2 + op.arg % 2);
        if (idx.empty()) return -1;
        std::vector<af::Task<int>> ts;
        for (std::size_t i : idx) ts.push_back(values_[i].task);
        std::vector<int> vals;
        {
            Waiting w(*this, "gather", all_done(idx));
            vals = af::gather(ts);
        }
        FUZZ_CHECK(vals.size() == idx.size());
        for (std::size_t k = 0; k < idx.size(); ++k) deliver(consume(idx[k], vals[k]));
        return -1;
    }

    /// The task with value-task index i was yielded: take its value if nobody has.
    void take_yielded(std::size_t i) {
        ValueTask& v = values_[i];
        FUZZ_CHECK(v.task.done());
        if (v.consumed || v.task.cancelled()) return;
        deliver(consume(i, v.task.result()));
    }

    int as_completed_body(const Op& op) {
        std::vector<std::size_t> idx = spawn_getters(op, 2 + op.arg % 2);
        if (idx.empty()) return -1;
        std::vector<af::Task<int>> ts;
        for (std::size_t i : idx) ts.push_back(values_[i].task);
        const std::size_t distinct = ts.size();
        if ((op.arg & 4) && !avoid_.as_completed_dup) ts.insert(ts.begin(), ts[0]);  // {a, a, b...}
        const bool break_once = (op.arg & 8) && !avoid_.as_completed_dup;
        std::set<std::uint64_t> yielded;
        auto index_of = [&](const af::Task<int>& t) {
            for (std::size_t i : idx)
                if (values_[i].task == t) return i;
            FUZZ_CHECK(!"as_completed yielded a task it was not given");
            return idx[0];
        };
        bool waiting = false;
        Waiting w(*this, "as_completed", [&] {
            if (!waiting) return false;
            for (std::size_t i : idx)
                if (values_[i].task.done() && !yielded.count(values_[i].task.id())) return true;
            return false;
        });
        // arg bit 4: with a timeout (TimeoutError past it; the tasks go on, their values
        // stay in them).
        std::unique_ptr<Deadline> dl;
        if (op.arg & 16) dl.reset(new Deadline(*this, duration_of(op.dur)));
        auto ac = dl ? af::as_completed(ts, duration_of(op.dur)) : af::as_completed(ts);
        if (dl) dl->starter()();
        try {
            for (int pass = 0; pass < (break_once ? 2 : 1); ++pass) {
                for (auto it = ac.begin(); it != ac.end(); ++it) {
                    waiting = true;
                    af::Task<int> t = *it;
                    waiting = false;
                    if (yielded.count(t.id()))
                        std::fprintf(stderr, "as_completed yielded a task twice\n");
                    FUZZ_CHECK(yielded.insert(t.id()).second);
                    take_yielded(index_of(t));
                    if (break_once && pass == 0) break;  // and resume: the next loop goes on
                }
            }
        } catch (const af::TimeoutError&) {
            FUZZ_CHECK(dl);
            dl->check_passed();
            return -1;
        }
        FUZZ_CHECK(yielded.size() == distinct);
        return -1;
    }

    int wait_body(const Op& op) {
        std::vector<std::size_t> idx = spawn_getters(op, 2 + op.arg % 2);
        if (idx.empty()) return -1;
        std::vector<af::TaskRef> refs;
        for (std::size_t i : idx) refs.push_back(values_[i].task);
        const af::ReturnWhen when =
            (op.arg & 4) ? af::ReturnWhen::first_completed : af::ReturnWhen::all_completed;
        const bool timed_wait = (op.arg & 8) != 0;
        af::WaitResult r;
        std::unique_ptr<Deadline> dl;
        {
            std::function<bool()> any_done = [this, idx] {
                for (std::size_t i : idx)
                    if (values_[i].task.done()) return true;
                return false;
            };
            Waiting w(*this, "af::wait",
                      when == af::ReturnWhen::first_completed ? any_done : all_done(idx));
            if (timed_wait) {
                dl.reset(new Deadline(*this, duration_of(op.dur)));
                if (op.arg & 16) {  // an exact deadline: a wait past it is stranded
                    const af::Clock::time_point deadline = af::Clock::now() + duration_of(op.dur);
                    dl->starter()();
                    r = af::wait_until(refs, when, deadline);
                } else {
                    r = af::wait(refs, when, duration_of(op.dur));
                }
            } else {
                r = af::wait(refs, when);
            }
        }
        FUZZ_CHECK(r.done.size() + r.pending.size() == refs.size());
        for (const auto& t : r.done) FUZZ_CHECK(t.done());
        for (const auto& t : r.pending) FUZZ_CHECK(!t.done());
        const bool satisfied =
            when == af::ReturnWhen::first_completed ? !r.done.empty() : r.pending.empty();
        if (!satisfied) {
            FUZZ_CHECK(dl);  // only a timed wait may return early, and only past its deadline
            dl->check_passed();
        }
        return -1;  // the values stay in their tasks, collected at the end
    }

    int task_group_body(const Op& op) {
        const bool failing = (op.arg & 4) != 0;
        const bool unjoined = (op.arg & 8) != 0;
        if (!can_spawn_value(3)) return -1;
        std::vector<std::size_t> idx;
        af::TaskGroup g;
        for (std::size_t i = 0, k = 2 + op.arg % 2; i < k; ++i) {
            Op get{Kind::get, Via::direct, op.dur, static_cast<std::uint8_t>(op.arg / 2 + i)};
            Counted c;
            idx.push_back(register_value(g.spawn([this, get, c] { return body(get); })));
        }
        if (failing) {
            Counted c;
            g.spawn([c] {
                af::sleep(Us(0));
                throw std::runtime_error("fuzz: a member fails");
            });
        }
        if (unjoined) return -1;  // the group's destructor cancels its tasks and waits for them
        try {
            Waiting w(*this, "TaskGroup::join", [&g] { return g.size() == 0; });
            g.join();
        } catch (const af::TaskGroupError& e) {
            FUZZ_CHECK(failing);
            FUZZ_CHECK(e.exceptions().size() == 1);
            return -1;
        }
        FUZZ_CHECK(!failing);  // the failing member cannot have been cancelled by anyone else
        for (std::size_t i : idx) {
            FUZZ_CHECK(values_[i].task.done());
            if (!values_[i].task.cancelled()) deliver(consume(i, values_[i].task.result()));
        }
        return -1;
    }

    // ---- the end ---------------------------------------------------------------------------

    /// Cancels whatever has not ended until everything has (a resilient task takes a
    /// cancellation back and goes on with its script, so this may take several rounds).
    void end_every_task() {
        for (int round = 0;; ++round) {
            FUZZ_CHECK(round < 100000);
            bool all_done = true;
            for (auto& t : workers_)
                if (!t.done()) {
                    all_done = false;
                    t.cancel("fuzz: end");
                }
            for (auto& v : values_)
                if (!v.task.done()) {
                    all_done = false;
                    v.task.cancel("fuzz: end");
                }
            if (all_done) break;
            af::sleep(Us(50));
        }
        for (auto& t : workers_) {
            if (t.cancelled()) continue;
            std::exception_ptr e = t.exception();
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    std::fprintf(stderr, "a task failed: %s\n", x.what());
                } catch (...) {
                }
            }
            FUZZ_CHECK(!e);  // no operation may fail with anything unexpected
        }
    }

    void balance_the_books() {
        // Values nobody took are still retrievable from their tasks.
        for (std::size_t i = 0; i < values_.size(); ++i) {
            ValueTask& v = values_[i];
            FUZZ_CHECK(v.task.done());
            if (v.consumed || v.task.cancelled()) continue;
            FUZZ_CHECK(!v.task.exception());
            deliver(consume(i, v.task.result()));
        }
        // Items still queued come out in the queue's order.
        for (std::size_t q = 0; q < 3; ++q) {
            while (!queues_[q]->empty()) {
                int item = queues_[q]->get_nowait();
                items_.popped(q, item);
                items_.delivered(item);
                queues_[q]->task_done();
                --unfinished_[q];
            }
            FUZZ_CHECK(unfinished_[q] == 0);
        }
        items_.check_nothing_lost();

        FUZZ_CHECK(!lock_.locked() && lock_holder_ == 0);
        FUZZ_CHECK(sem_.value() == program_.sem_units && sem_holders_ == 0);
        FUZZ_CHECK(bsem_.value() == program_.sem_units && bsem_holders_ == 0);
        FUZZ_CHECK(!cond_.locked() && cond_holders_ == 0);
        FUZZ_CHECK(in_barrier_ == 0 && barrier_.n_waiting() == 0);
        FUZZ_CHECK(waits_.empty());
        // A to_thread call that was cancelled has waited for its function (unless that known
        // defect is being avoided: then the pool may still run it; after_run() checks).
        if (!avoid_.to_thread_cancel) FUZZ_CHECK(threads_in_flight_.load() == 0);

        if (tcp_server_) {
            tcp_writer_.close();
            tcp_bytes_.received(tcp_reader_.read(-1));  // up to EOF
            tcp_bytes_.check_complete();
            tcp_writer_.wait_closed();
            // The server's side too: wait_closed() waits for every connection's descriptor.
            tcp_server_writer_.close();
            tcp_server_writer_.wait_closed();
            tcp_reader_ = af::StreamReader();
            tcp_client_reader_ = af::StreamReader();
            tcp_writer_ = af::StreamWriter();
            tcp_server_writer_ = af::StreamWriter();
            tcp_end_.set();
            tcp_server_.close();
            tcp_server_.wait_closed();
        }
        if (fed_) {
            af::StreamReader r = fed_->reader();
            FUZZ_CHECK(r.buffered() == fed_bytes_.unreceived());
            fed_->feed_eof();
            fed_bytes_.received(r.read(-1));
            fed_bytes_.check_complete();
            fed_.reset();
        }
        if (asio_a_) {
            asio_a_->close();
            std::string rest;
            char buf[256];
            boost::system::error_code ec;
            for (;;) {
                std::size_t n = asio_b_->read_some(boost::asio::buffer(buf), ec);
                if (ec) break;
                rest.append(buf, n);
            }
            FUZZ_CHECK(ec == boost::asio::error::eof);
            asio_bytes_.check(rest, orphans_reported_, kMaxAsioRead);
            asio_b_->close();
            af::sleep(Us(0));  // aborted handlers run and find nobody
            asio_a_.reset();   // before the loop (and its io_context) goes
            asio_b_.reset();
        }
    }

    const Program& program_;
    const Avoid avoid_;
    ItemLedger items_;
    std::unique_ptr<AnyQueue> queues_[3];
    long unfinished_[3] = {0, 0, 0};  // put and not task_done (what join() waits for)
    af::Lock lock_;
    long lock_holder_ = 0;  // which hold (lock_holds_ numbers them) has the lock
    long lock_holds_ = 0;
    Turnstile lock_turns_;
    af::Semaphore sem_;
    af::BoundedSemaphore bsem_;
    Turnstile sem_turns_, bsem_turns_;
    int sem_holders_ = 0, bsem_holders_ = 0;
    af::Condition cond_;
    int cond_holders_ = 0;
    long tokens_ = 0;  // notifications not yet taken by a waiter
    af::Event events_[2];
    long event_gen_[2] = {0, 0};  // how often each event went from clear to set
    af::Barrier barrier_;
    int in_barrier_ = 0;

    std::vector<std::shared_ptr<ThreadCall>> thread_calls_;
    std::atomic<int> threads_in_flight_{0};

    af::Server tcp_server_;
    af::StreamReader tcp_reader_, tcp_client_reader_;
    af::StreamWriter tcp_writer_, tcp_server_writer_;
    af::Event tcp_end_;
    ByteLedger tcp_bytes_;
    std::unique_ptr<af::debug::FedStream> fed_;
    ByteLedger fed_bytes_;
    std::unique_ptr<boost::asio::local::stream_protocol::socket> asio_a_, asio_b_;
    std::vector<std::unique_ptr<char[]>> asio_buffers_;  // outlive operations left running
    PositionedBytes asio_bytes_;
    std::size_t orphans_reported_ = 0;  // use_await operations reported as left running

    std::vector<af::Task<void>> workers_;
    std::deque<ValueTask> values_;
    std::list<Waiting::Entry> waits_;
    long steps_ = 0;  // operations started or ended, waits ended: progress, for settle()
    af::Clock::time_point last_deadline_{};
    bool closing_ = false;
    const bool trace_;
};

/// Runs one input: what the fuzz target and the replay test both call.
inline void run_input(const std::uint8_t* data, std::size_t size, const Avoid& avoid) {
    // Counted around each run: libFuzzer opens descriptors of its own between runs.
    const std::size_t fds_before = probes::open_fds();
    Program program = decode(data, size);
    {
        World world(program, avoid);
        af::run([&world] { world.main_task(); });
        world.after_run();
    }
    FUZZ_CHECK(live_callables() == 0);
    FUZZ_CHECK(probes::open_fds() == fds_before);
}

}  // namespace cancel_fuzz

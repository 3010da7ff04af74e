// The operation language of the cancellation fuzzer (fuzz/cancel_fuzz.cpp and its replay,
// test/cancel_replay_test.cpp): how input bytes become a program of task scripts, and how a
// program is written out as readable steps.
//
// Layout of an input:
//   byte 0         the world: semaphore units 1..3, barrier parties 2..4, queue size 1..3,
//                  pool threads 1..4 (see decode())
//   then 3 bytes per operation:
//     kind         0xF0..0xFF ends the current script and starts the next one (at most
//                  kMaxScripts); any other byte is the kind byte % kinds. New kinds go at the
//                  end, so that inputs written by encode() (kind bytes below `kinds`, 0xFF
//                  between scripts) keep their meaning.
//     via | dur    low 3 bits: how a blocking operation is called (Via); high 5 bits: a
//                  duration index, duration_of(dur) = dur * dur * 2 microseconds (0 .. 1.9 ms)
//     arg          which queue / event / task, how many bytes, hold times, variants
//   A script's separator byte `via` has bit 0 set for a resilient script: its task catches a
//   cancellation after each operation, takes it back (uncancel) and goes on.
// Every script runs as a task started by the main task; `spawn` starts one more copy of a
// script. Operations beyond kMaxOps in a script are ignored.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace cancel_fuzz {

enum class Kind : std::uint8_t {
    yield,              // sleep(0)
    sleep,              // sleep(dur)
    cancel_task,        // cancel worker task arg (or, for the last index, itself)
    cancel_soon,        // cancel worker task arg from a loop callback (call_soon)
    cancel_value_task,  // cancel a task that carries a value (see Via and the multi-task ops)
    spawn,              // start one more task running script arg
    put,                // Queue / PriorityQueue / LifoQueue put, waiting while full
    get,                // ... get, waiting while empty
    put_nowait,
    get_nowait,
    join_queue,         // queue.join(): waits until every item got was marked task_done
    lock,               // take the Lock, hold it across arg yields (or dur), release
    semaphore,          // the same with a Semaphore unit
    bounded_semaphore,  // and with a BoundedSemaphore unit
    cond_wait,          // Condition: wait until a token is there, take it
    cond_notify,        // Condition: add a token, notify(1) (or notify_all)
    event_wait,
    event_set,
    event_clear,
    barrier_wait,
    barrier_reset,      // reset() or, odd arg, abort()
    to_thread,          // a function on the pool that makes a value (and writes into the frame)
    stream_write,       // loopback TCP: write arg-sized bytes, drain()
    stream_read,        // loopback TCP: read(n) / readexactly(n) / readline() / readuntil()
    fed_feed,           // af::debug::FedStream: feed_data
    fed_read,           // FedStream: the same reads
    asio_timer,         // boost::asio::steady_timer::async_wait(af::use_await)
    asio_write,         // a Unix socket pair through Asio: write some bytes (not a wait)
    asio_read,          // async_read_some(af::use_await[.cancels(socket)])
    gather_gets,        // gather of 2..3 tasks that each get an item
    as_completed_gets,  // as_completed over such tasks (with a duplicate, with a break)
    wait_gets,          // af::wait over such tasks (first_completed / all_completed, timeout)
    task_group,         // TaskGroup of such tasks (one failing, or destroyed unjoined)
    queue_shutdown,     // queue.shutdown(); arg bit 7: shutdown(immediate=true)
    kinds               // not an operation: the number of kinds (and the script separator)
};

constexpr int kKinds = static_cast<int>(Kind::kinds);
constexpr std::uint8_t kSeparator = 0xF0;  // this kind byte or above: the next script
static_assert(kKinds < kSeparator, "kind bytes below the separator");

/// How a blocking operation is called: its body directly, or through a composition whose
/// deadline or cancellation may land at any of the body's suspension points.
enum class Via : std::uint8_t {
    direct,
    timeout,        // af::timeout(dur, body)
    timeout_zero,   // af::timeout(0, body): expires at the body's first suspension point
    wait_for_fn,    // af::wait_for(body, dur)
    wait_for_task,  // af::wait_for(af::async(body), dur)
    shield,         // af::await(af::shield(af::async(body)))
    awaited_task,   // af::await(af::async(body))
    nested,         // af::timeout(dur, [] { af::timeout(arg-based, body) })
};

constexpr std::size_t kMaxScripts = 8;
constexpr std::size_t kMaxOps = 24;

struct Op {
    Kind kind;
    Via via;
    std::uint8_t dur;
    std::uint8_t arg;
};

struct Script {
    bool resilient = false;
    std::vector<Op> ops;
};

struct Program {
    int sem_units = 1;
    int barrier_parties = 2;
    int queue_size = 1;
    int pool_threads = 1;
    std::vector<Script> scripts;

    bool uses(Kind k) const {
        for (const Script& s : scripts)
            for (const Op& op : s.ops)
                if (op.kind == k) return true;
        return false;
    }
};

inline std::chrono::microseconds duration_of(std::uint8_t dur) {
    return std::chrono::microseconds(2 * dur * dur);
}

/// The inner deadline of Via::nested, from the argument.
inline std::chrono::microseconds nested_inner_duration(std::uint8_t arg) {
    return duration_of(static_cast<std::uint8_t>(arg % 32));
}

inline Program decode(const std::uint8_t* data, std::size_t size) {
    std::size_t pos = 0;
    auto next = [&]() -> std::uint8_t { return pos < size ? data[pos++] : 0; };
    Program p;
    std::uint8_t w = next();
    p.sem_units = 1 + w % 3;
    p.barrier_parties = 2 + (w / 3) % 3;
    p.queue_size = 1 + (w / 9) % 3;
    p.pool_threads = 1 + (w / 27) % 4;
    p.scripts.emplace_back();
    while (pos < size) {
        std::uint8_t k = next(), v = next(), a = next();
        if (k >= kSeparator) {
            if (p.scripts.size() == kMaxScripts) break;
            p.scripts.emplace_back();
            p.scripts.back().resilient = (v & 1) != 0;
            continue;
        }
        Script& s = p.scripts.back();
        if (s.ops.size() == kMaxOps) continue;
        s.ops.push_back(Op{static_cast<Kind>(k % kKinds), static_cast<Via>(v % 8),
                           static_cast<std::uint8_t>(v / 8), a});
    }
    return p;
}

/// The canonical input of a program: what decode() makes of it again, also once new kinds
/// have been added (for seeds and saved schedules).
inline std::vector<std::uint8_t> encode(const Program& p) {
    std::vector<std::uint8_t> out;
    out.push_back(static_cast<std::uint8_t>((p.sem_units - 1) + 3 * (p.barrier_parties - 2) +
                                            9 * (p.queue_size - 1) + 27 * (p.pool_threads - 1)));
    for (std::size_t i = 0; i < p.scripts.size(); ++i) {
        if (i > 0) {
            out.push_back(0xFF);
            out.push_back(p.scripts[i].resilient ? 1 : 0);
            out.push_back(0);
        }
        for (const Op& op : p.scripts[i].ops) {
            out.push_back(static_cast<std::uint8_t>(op.kind));
            out.push_back(static_cast<std::uint8_t>(static_cast<int>(op.via) | (op.dur % 32) << 3));
            out.push_back(op.arg);
        }
    }
    return out;
}

inline const char* name_of(Kind k) {
    static const char* const names[] = {"yield",
                                        "sleep",
                                        "cancel_task",
                                        "cancel_soon",
                                        "cancel_value_task",
                                        "spawn",
                                        "put",
                                        "get",
                                        "put_nowait",
                                        "get_nowait",
                                        "join_queue",
                                        "lock",
                                        "semaphore",
                                        "bounded_semaphore",
                                        "cond_wait",
                                        "cond_notify",
                                        "event_wait",
                                        "event_set",
                                        "event_clear",
                                        "barrier_wait",
                                        "barrier_reset",
                                        "to_thread",
                                        "stream_write",
                                        "stream_read",
                                        "fed_feed",
                                        "fed_read",
                                        "asio_timer",
                                        "asio_write",
                                        "asio_read",
                                        "gather_gets",
                                        "as_completed_gets",
                                        "wait_gets",
                                        "task_group",
                                        "queue_shutdown"};
    static_assert(sizeof(names) / sizeof(names[0]) == kKinds, "a name for every kind");
    return names[static_cast<int>(k)];
}

inline const char* name_of(Via v) {
    static const char* const names[] = {"direct",       "timeout",        "timeout(0)",
                                        "wait_for(fn)", "wait_for(task)", "shield",
                                        "await(task)",  "nested timeouts"};
    return names[static_cast<int>(v)];
}

inline std::string describe(const Op& op) {
    std::ostringstream os;
    os << name_of(op.kind) << " arg=" << int(op.arg);
    if (op.via != Via::direct) os << " via " << name_of(op.via);
    if (op.dur != 0 || op.via == Via::timeout || op.via == Via::wait_for_fn ||
        op.via == Via::wait_for_task || op.via == Via::nested)
        os << " dur=" << duration_of(op.dur).count() << "us";
    if (op.via == Via::nested) os << " inner=" << nested_inner_duration(op.arg).count() << "us";
    return os.str();
}

/// The program as steps: what a regression test written by hand would spell out.
inline void print(const Program& p, std::ostream& os) {
    os << "world: semaphore units " << p.sem_units << ", barrier parties " << p.barrier_parties
       << ", queue size " << p.queue_size << ", pool threads " << p.pool_threads << "\n";
    for (std::size_t i = 0; i < p.scripts.size(); ++i) {
        os << "script " << i << (p.scripts[i].resilient ? " (resilient)" : "") << ":\n";
        for (const Op& op : p.scripts[i].ops) os << "  " << describe(op) << "\n";
    }
}

}  // namespace cancel_fuzz

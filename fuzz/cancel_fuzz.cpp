// libFuzzer target: "nothing lost" under cancellation. The input is a program of task scripts
// (fuzz/cancel_program.hpp) over one of every primitive and composition: Queue, PriorityQueue
// and LifoQueue (put, get, the _nowait forms, join, shutdown), Lock, Semaphore,
// BoundedSemaphore, Condition, Event, Barrier, to_thread, a loopback TCP stream (write +
// drain, read / readexactly / readline / readuntil), af::debug::FedStream, Asio operations
// through af::use_await (a steady_timer, async_read_some on a socket pair), gather,
// as_completed, wait and TaskGroup over tasks that get items (as_completed also with a
// duplicate, resumed after a break, with a timeout; TaskGroup with a failing member, or
// destroyed unjoined). Each blocking operation runs directly or through timeout(d),
// timeout(0), wait_for(fn, d), wait_for(task, d), shield, an awaited task or two nested
// timeouts; tasks cancel each other (directly, from a loop callback, or the tasks that carry
// values) at the instants the program chooses, and deadlines fall where their durations put
// them. fuzz/cancel_world.hpp interprets it.
//
// Invariants, checked after every run (and, where they can be, at every step):
// - Items: every item put is got exactly once or is still queued at the end (or dropped by
//   shutdown(immediate=true)); each queue
//   gives items back in its order (FIFO, smallest first, LIFO); an item got (or made by a
//   to_thread function) reaches the code that asked for it exactly once, or is still
//   retrievable as the value of a task at the end (wait_for / timeout / shield / gather /
//   as_completed / wait / TaskGroup lose no value).
// - Units and ownership: the Lock never has two holders, a semaphore never more holders
//   than units, the Condition's lock is held whenever wait() returns or throws; all are free
//   and back to their initial counts at the end; Lock and semaphores serve waiters first
//   come, first served, try_ forms included (a waiter passed over by a later one must end
//   without the resource).
// - No stranded waiter: once nothing moves, no task waits for what is already there (an
//   item, room, a free lock or unit, a Condition token, an event set since it began to wait,
//   a full barrier, a done task for gather / as_completed / wait / TaskGroup::join, a
//   finished queue for join, buffered bytes for a FedStream read, a passed deadline); then
//   every task ends when cancelled and no task is left.
// - Deadlines: a TimeoutError never comes before its own deadline; nested scopes each
//   report only their own.
// - to_thread: a call that returns gives its function's value; a cancelled call has waited
//   for its function (which writes into the caller's frame) or the function never runs.
// - Streams: every byte written (TCP) or fed (FedStream) is read once, in order, or still
//   buffered at the end. Asio reads (use_await): bytes in order, never twice, and a gap
//   only where a read was cancelled after it could have taken those bytes, or where an
//   operation left running took them and the loss was reported (never a silent loss).
// - No frame touched after it unwound, no leak (AddressSanitizer + UBSan build), no task,
//   stack, callable or descriptor left after the run.
//
// A failing input becomes a regression test by being saved in fuzz/corpus/cancel/:
// test/cancel_replay_test.cpp replays every file there (see docs/debugging.md).
#include "cancel_world.hpp"
#include "fuzz_target.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const cancel_fuzz::Avoid avoid = cancel_fuzz::Avoid::from_env();
    cancel_fuzz::run_input(data, size, avoid);
    return 0;
}

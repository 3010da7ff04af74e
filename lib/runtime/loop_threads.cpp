// Which thread a loop belongs to: the one check that a thread may use what belongs to a loop
// (check_loop_thread), and a loop's tasks finished on their own thread when it exits.
//
// A task runs on a stack from the pool of the thread that ran it (lib/stack_pool.cpp) and
// never moves to another thread: compilers cache thread-local addresses across calls, and the
// pool, with every stack in it, goes away with its thread. So the started tasks of a loop can
// be finished (cancelled and run to their end, so that their destructors run) only on that
// thread. Each thread that runs a loop keeps the loops whose tasks may be on its stacks
// (ThreadLoops); when the thread exits it finishes their tasks, so that a Loop closed or
// destroyed later, on any thread, finds nothing it cannot finish. Closing a loop on another
// thread while its tasks' thread still runs is refused (Loop::close), and destroying it there
// leaves the finishing to that thread's exit (Loop::~Loop).
#include "debug_impl.hpp"
#include "embedded_loop.hpp"
#include "loop_impl.hpp"
#include "stack_pool.hpp"
#include "task_blocks.hpp"

#include <asyncfiber/detail/thread_annotations.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {
// Guards every ThreadLoops::loops and every LoopImpl::home: a loop may be closed or destroyed
// on another thread than the one it ran on. Taken only when a loop is entered, closed or
// destroyed, and at thread exit.
Mutex g_homes;
}  // namespace

/// The loops whose tasks may be on the stacks of one thread (that thread's thread_local).
struct ThreadLoops {
    std::vector<LoopImpl*> loops ASYNCFIBER_GUARDED_BY(g_homes);
    ~ThreadLoops();
};

namespace {

// This thread's ThreadLoops once it has one (a plain pointer, so that asking does not create
// one: it must be created after the stack pool, see adopt_loop_on_this_thread).
thread_local ThreadLoops* t_loops = nullptr;

ThreadLoops& this_thread_loops() {
    static thread_local ThreadLoops loops;
    t_loops = &loops;
    return loops;
}

void forget_home(LoopImpl* L) noexcept ASYNCFIBER_REQUIRES(g_homes) {
    if (!L->home) return;
    std::vector<LoopImpl*>& v = L->home->loops;
    v.erase(std::remove(v.begin(), v.end(), L), v.end());
    L->home = nullptr;
}

// At the exit of L's thread: its tasks are cancelled and run to their end here, on their own
// stacks. A loop whose Loop object is gone (destroyed on another thread meanwhile) is closed
// and released here too.
void finish_at_thread_exit(LoopImpl* L) noexcept {
    try {
        if (L->entered || L->closed) return;
        if (L->live_count > 0) {
            report_never_awaited(L);
            LoopEntry entry(L, false);
            L->cancel_all_and_finish();
        }
        if (!L->owner) {
            L->finish_close();
            L->release_resources();
        }
        unbind_embedded(L);  // its thread is gone: another may run its io_context now
    } catch (const std::exception& e) {
        std::fprintf(
            stderr, "asyncfiber: finishing a loop's tasks at the exit of their thread failed: %s\n",
            e.what());
    } catch (...) {
        std::fputs("asyncfiber: finishing a loop's tasks at the exit of their thread failed\n",
                   stderr);
    }
}

}  // namespace

ThreadLoops::~ThreadLoops() {
    // Finishing a loop enters it, which registers it here again: repeat until none is left.
    for (;;) {
        std::vector<LoopImpl*> mine;
        {
            MutexLock g(g_homes);
            mine.swap(loops);
            for (LoopImpl* L : mine) {
                L->home = nullptr;
                L->add_ref();  // kept while it is finished, even if the last task block goes
            }
        }
        if (mine.empty()) return;
        for (LoopImpl* L : mine) {
            finish_at_thread_exit(L);
            L->release();
        }
    }
}

bool LoopImpl::has_started_tasks() const noexcept {
    for (const ListNode* n = live.first(); n != live.end(); n = n->next)
        if (TaskBase::from_live(const_cast<ListNode*>(n))->stack) return true;
    return false;
}

void adopt_loop_on_this_thread(LoopImpl* L) {
    // Created before this thread's ThreadLoops, so destroyed after it: its destructor may
    // still run tasks, which need their stacks and return their blocks to the cache.
    StackPool::for_this_thread();
    (void)task_blocks_have_spare();
    ThreadLoops& mine = this_thread_loops();
    MutexLock g(g_homes);
    if (L->home == &mine) return;
    if (L->home && L->has_started_tasks())
        throw RuntimeError(
            "asyncfiber: this loop's tasks are suspended on the stacks of the thread that ran "
            "it, which is still running: a task never moves to another thread. Run (or close) "
            "the loop on that thread; when that thread exits, it finishes them");
    forget_home(L);
    mine.loops.push_back(L);
    L->home = &mine;
}

void release_loop_from_its_thread(LoopImpl* L) noexcept {
    MutexLock g(g_homes);
    forget_home(L);
}

bool loop_tasks_belong_to_another_thread(LoopImpl* L) noexcept {
    MutexLock g(g_homes);
    return L->home && L->home != t_loops && L->has_started_tasks();
}

void check_loop_thread(LoopImpl* L, const char* what, LoopUse use) {
    if (current_loop() == L) return;
    const std::thread::id runner = L->running_on.load(std::memory_order_acquire);
    // A plain handler on the thread an embedded loop belongs to (between its handlers).
    if (use == LoopUse::act && runner == std::this_thread::get_id()) return;
    if (runner == std::thread::id()) {
        // No thread runs the loop: whoever holds it may act on it (asyncio checks the thread
        // only while the loop runs), but only its own tasks can wait for its tasks.
        if (use == LoopUse::act) return;
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           ": the task belongs to another loop, which is not running; a task "
                           "can be awaited only by a task of its own loop");
    }
    throw RuntimeError(
        std::string("asyncfiber: ") + what +
        " called from a thread other than the one running the loop it belongs to: a loop's "
        "tasks, their handles and its callbacks belong to that thread. From another thread, "
        "hand the work to the loop with loop.call_soon_threadsafe(fn), or run it there as a "
        "task with af::run_coroutine_threadsafe(loop, fn) and wait on the future it returns");
}

}  // namespace detail
}  // namespace asyncfiber

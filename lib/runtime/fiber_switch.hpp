// Internal: the one place where stacks are switched.
//
// Tasks run on Boost.Context's fcontext (the assembly switch under boost::context::fiber):
// the cheapest switch there is (docs/design.md), with no allocation and no bookkeeping we do
// not control. Around each
// switch the C++ runtime's per-thread exception state is swapped, so each task keeps its own
// `throw;` and std::current_exception() even when it suspends inside a catch block, and the
// sanitizers are told about the switch so that their reports stay true — found at run time,
// so that an application built with a sanitizer can link the ordinary release library.
#pragma once

#include <asyncfiber/detail/task_state.hpp>

#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstddef>
#include <cxxabi.h>

// The sanitizer runtimes' fiber interface, declared weak (no sanitizer header is included): in
// a program linked with -fsanitize=address or -fsanitize=thread each resolves to the runtime's
// function, in any other program to null. So the ordinary release library, built without
// sanitizers, announces its switches exactly when the application it is linked into is
// sanitized, and costs one predictable branch on a null pointer per switch side otherwise.
extern "C" {
__attribute__((weak)) void __sanitizer_start_switch_fiber(void** fake_stack_save,
                                                          const void* bottom, std::size_t size);
__attribute__((weak)) void __sanitizer_finish_switch_fiber(void* fake_stack_save,
                                                           const void** bottom_old,
                                                           std::size_t* size_old);
__attribute__((weak)) void __asan_unpoison_memory_region(void const volatile* addr,
                                                         std::size_t size);
__attribute__((weak)) void* __tsan_get_current_fiber();
__attribute__((weak)) void* __tsan_create_fiber(unsigned flags);
__attribute__((weak)) void __tsan_destroy_fiber(void* fiber);
__attribute__((weak)) void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}

namespace asyncfiber {
namespace detail {

namespace fctx = boost::context::detail;

/// This thread's __cxa_eh_globals ({caughtExceptions, uncaughtExceptions} in both libstdc++
/// and libc++abi).
inline EhState* thread_eh_globals() noexcept {
    return reinterpret_cast<EhState*>(abi::__cxa_get_globals());
}

/// Marker passed by a fiber's last switch: the task is finished, its stack can go.
inline void* finished_marker() noexcept {
    static char marker;
    return &marker;
}

// ---- telling the sanitizers about switches ----
//
// Each switch is bracketed by two calls: the side that leaves calls a `*_leave_*` helper
// right before jump_fcontext, the side that arrives calls the matching `*_arrive_*` helper
// right after it — both only when sanitizer_fibers() said so before the switch (a flag set
// from the weak functions when a loop is entered): without a sanitizer that one test is all
// a switch pays on each side.
//
// AddressSanitizer must know which stack is current (else it reports the switched-to stack
// as a wild access, mishandles its fake stacks, and cannot clear the poison of the frames an
// exception unwinds on a task stack, which then shows up as a false stack-buffer-overflow):
// __sanitizer_start_switch_fiber before, __sanitizer_finish_switch_fiber after. A task keeps
// its fake-stack save slot in a local of its suspension point (on its own stack); the
// scheduler keeps its own per thread. ThreadSanitizer gets one fiber per task (created at the
// first switch into it, destroyed by the scheduler after the last switch out) and is told
// before every switch.

/// Whether a sanitizer's fiber interface is in the program: found when a loop is entered
/// (detect_sanitizers; the weak symbols were resolved when the program was loaded), read at
/// every switch — one load and a predictable branch when there is none.
extern std::atomic<bool> g_sanitizer_fibers;

inline void detect_sanitizers() noexcept {
    if (__sanitizer_start_switch_fiber || __tsan_switch_to_fiber)
        g_sanitizer_fibers.store(true, std::memory_order_relaxed);
}

inline bool sanitizer_fibers() noexcept {
    return g_sanitizer_fibers.load(std::memory_order_relaxed);
}

struct SanitizerThreadState {
    void* sched_fake = nullptr;          // ASan: the scheduler's fake-stack save slot
    const void* sched_bottom = nullptr;  // ASan: the scheduler's (thread's) stack
    std::size_t sched_size = 0;
    void* sched_fiber = nullptr;  // TSan: the thread's own fiber
};

inline SanitizerThreadState& sanitizer_thread_state() noexcept {
    static thread_local SanitizerThreadState s;
    return s;
}

/// Scheduler, before switching into `t`.
__attribute__((always_inline)) inline void san_leave_scheduler(TaskBase* t) noexcept {
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(&sanitizer_thread_state().sched_fake, t->stack->limit,
                                       t->stack->size);
    if (__tsan_switch_to_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        if (!s.sched_fiber) s.sched_fiber = __tsan_get_current_fiber();
        TaskExtras& x = t->extras();  // under TSan only: the fiber handle lives there
        if (!x.sanitizer_fiber) x.sanitizer_fiber = __tsan_create_fiber(0);
        __tsan_switch_to_fiber(x.sanitizer_fiber, 0);
    }
}

/// After the last switch out of `t`'s fiber (whoever it switched to).
__attribute__((always_inline)) inline void san_fiber_finished(TaskBase* t) noexcept {
    // A finished fiber never returned from its frames: clear their poison before the stack is
    // reused by another task.
    if (__asan_unpoison_memory_region)
        __asan_unpoison_memory_region(t->stack->limit, t->stack->size);
    if (__tsan_destroy_fiber && t->extras().sanitizer_fiber) {
        __tsan_destroy_fiber(t->extras().sanitizer_fiber);
        t->extras().sanitizer_fiber = nullptr;
    }
}

/// Scheduler, after `t` switched back (`finished`: for the last time).
__attribute__((always_inline)) inline void san_arrive_scheduler(TaskBase* t,
                                                                bool finished) noexcept {
    if (__sanitizer_finish_switch_fiber)
        __sanitizer_finish_switch_fiber(sanitizer_thread_state().sched_fake, nullptr, nullptr);
    if (finished) san_fiber_finished(t);
}

/// Task, before switching to the scheduler. `fake_save` is a local of the suspension point;
/// null for the last switch (the fiber's fake stack is then freed).
__attribute__((always_inline)) inline void san_leave_task(void** fake_save) noexcept {
    if (__sanitizer_start_switch_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        __sanitizer_start_switch_fiber(fake_save, s.sched_bottom, s.sched_size);
    }
    if (__tsan_switch_to_fiber) __tsan_switch_to_fiber(sanitizer_thread_state().sched_fiber, 0);
}

/// Task, once running again (`fake_save`: what san_leave_task filled; null on the first
/// entry). Learns the scheduler's stack bounds, which the next san_leave_task needs.
__attribute__((always_inline)) inline void san_arrive_task(void* fake_save) noexcept {
    if (__sanitizer_finish_switch_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        __sanitizer_finish_switch_fiber(fake_save, &s.sched_bottom, &s.sched_size);
    }
}

/// What an eager start (a new task run at once from its spawner: LoopImpl::run_eager)
/// saves: until the new task first switches out, the spawner's stack (a task's, or the
/// scheduler's in a callback) stands in for the scheduler's.
struct SanitizerSpawnerSave {
    void* fake = nullptr;
    const void* sched_bottom = nullptr;
    std::size_t sched_size = 0;
    void* sched_fiber = nullptr;
};

/// Spawner, before switching into the new task `t`.
__attribute__((always_inline)) inline void san_leave_spawner(TaskBase* t,
                                                             SanitizerSpawnerSave& save) noexcept {
    if (__sanitizer_start_switch_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        // The task's entry learns the spawner's stack as "the scheduler's" (san_arrive_task):
        // the real one is put back afterwards.
        save.sched_bottom = s.sched_bottom;
        save.sched_size = s.sched_size;
        __sanitizer_start_switch_fiber(&save.fake, t->stack->limit, t->stack->size);
    }
    if (__tsan_switch_to_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        if (!s.sched_fiber) s.sched_fiber = __tsan_get_current_fiber();
        save.sched_fiber = s.sched_fiber;
        s.sched_fiber = __tsan_get_current_fiber();  // the task's switch out lands on the spawner
        TaskExtras& x = t->extras();
        if (!x.sanitizer_fiber) x.sanitizer_fiber = __tsan_create_fiber(0);
        __tsan_switch_to_fiber(x.sanitizer_fiber, 0);
    }
}

/// Spawner, once `t` switched back (`finished`: it ended without suspending).
__attribute__((always_inline)) inline void san_arrive_spawner(TaskBase* t, bool finished,
                                                              SanitizerSpawnerSave& save) noexcept {
    if (__sanitizer_finish_switch_fiber) {
        SanitizerThreadState& s = sanitizer_thread_state();
        __sanitizer_finish_switch_fiber(save.fake, nullptr, nullptr);
        s.sched_bottom = save.sched_bottom;
        s.sched_size = save.sched_size;
    }
    if (__tsan_switch_to_fiber) sanitizer_thread_state().sched_fiber = save.sched_fiber;
    if (finished) san_fiber_finished(t);
}

}  // namespace detail
}  // namespace asyncfiber

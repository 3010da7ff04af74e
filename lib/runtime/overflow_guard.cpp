#include "overflow_guard.hpp"

#include "debug_impl.hpp"
#include "signal_chain.hpp"
#include "stack_pool.hpp"
#include "text_out.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ucontext.h>
#include <unistd.h>

namespace asyncfiber {
namespace detail {

namespace {
// How far below a task's stack its stack pointer can be taken for an overflow of that task.
constexpr std::size_t kFarthestFrame = std::size_t(64) << 20;

struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
std::once_flag g_installed;

// The interrupted code's stack pointer, or null where this file does not know the layout.
const char* stack_pointer_of(void* uctx) noexcept {
    const ucontext_t* uc = static_cast<const ucontext_t*>(uctx);
#if defined(__x86_64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
    return reinterpret_cast<const char*>(uc->uc_mcontext.sp);
#else
    (void)uc;
    return nullptr;
#endif
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
    const TaskBase* t = current_task_or_null();
    if (t && t->stack) {
        const char* addr = static_cast<const char*>(info->si_addr);
        const char* limit = t->stack->limit;
        const char* guard = limit - StackPool::page_size();
        // The guard page, or just below it (a frame that jumped it) within one more page.
        if (addr >= guard - StackPool::page_size() && addr < limit)
            report_stack_overflow(t, "hit the guard page");
        // A frame larger than the guard (code built without -fstack-clash-protection) moved
        // the stack pointer past it: the fault is anywhere further down, but the stack
        // pointer is below the task's stack (by less than a sane frame: this task's).
        const char* sp = stack_pointer_of(uctx);
        if (sp && sp < limit && static_cast<std::size_t>(limit - sp) <= kFarthestFrame)
            report_stack_overflow(t,
                                  "the stack pointer went below the stack's limit (a frame "
                                  "larger than the guard page jumped it)");
    }
    // Not ours: hand it to the previous handler (or the default action).
    if (call_previous_handler(sig == SIGSEGV ? g_prev_segv : g_prev_bus, sig, info, uctx)) return;
    ::signal(sig, SIG_DFL);  // returning re-executes the access, which now kills as usual
}

void install_fault_handlers() {
    install_handler(SIGSEGV, &on_fault, 0, &g_prev_segv);
    install_handler(SIGBUS, &on_fault, 0, &g_prev_bus);
}

struct AltStack {
    void* mem = nullptr;
    AltStack() {
        stack_t cur;
        if (::sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;  // has one
        std::size_t size = 64 * 1024;
        mem = std::malloc(size);
        if (!mem) return;
        stack_t ss;
        ss.ss_sp = mem;
        ss.ss_size = size;
        ss.ss_flags = 0;
        if (::sigaltstack(&ss, nullptr) != 0) {
            std::free(mem);
            mem = nullptr;
        }
    }
    ~AltStack() {
        if (!mem) return;
        stack_t ss;
        std::memset(&ss, 0, sizeof ss);
        ss.ss_flags = SS_DISABLE;
        ::sigaltstack(&ss, nullptr);
        std::free(mem);
    }
};
}  // namespace

void install_overflow_guard() {
    std::call_once(g_installed, install_fault_handlers);
    static thread_local AltStack alt;
    (void)alt;
}

void report_stack_overflow(const TaskBase* t, const char* how) noexcept {
    TextOut o(2);
    o.put("asyncfiber: stack overflow in task '");
    put_task_name(o, t);
    o.put("' (id ");
    o.num(t->id);
    o.put("): ");
    o.put(how);
    o.put(". Its stack is ");
    const std::size_t size = t->stack ? t->stack->size : 0;
    o.num(size);
    o.put(" bytes (");
    o.num(size / 1024);
    o.put(
        " KiB). Give the task a larger stack with af::async(af::TaskOptions{name, bytes}, "
        "fn) or raise the default with af::set_default_stack_size(bytes).\n");
    o.flush();
    std::abort();
}

}  // namespace detail
}  // namespace asyncfiber

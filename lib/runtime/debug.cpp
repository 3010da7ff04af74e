// Debug mode: slow steps, tasks never awaited, the task dump and its SIGQUIT trigger.
#include "debug_impl.hpp"
#include "io_driver.hpp"
#include "stack_pool.hpp"

#include <asyncfiber/debug.hpp>

#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <algorithm>
#include <iostream>
#include <sstream>
#include <sys/mman.h>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {

std::string task_label(const TaskBase* t) {
    return t->given_name().empty() ? "Task-" + std::to_string(t->id) : t->given_name();
}

std::string format_ms(std::int64_t ns) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << static_cast<double>(ns) / 1e6 << " ms";
    return o.str();
}

std::string format_bytes(std::size_t b) {
    std::ostringstream o;
    if (b < 1024)
        o << b << " B";
    else
        o << std::fixed << std::setprecision(1) << static_cast<double>(b) / 1024.0 << " KiB";
    return o.str();
}

// The lowest resident page of [lo, hi), or hi if none is. Pages never touched are not
// resident and read as zero, so the scan for written words can start there.
char* lowest_resident_page(char* lo, char* hi) noexcept {
    const std::size_t page = StackPool::page_size();
    const std::size_t pages = static_cast<std::size_t>(hi - lo) / page;
    std::vector<unsigned char> vec(pages);
    if (::mincore(lo, static_cast<std::size_t>(hi - lo), vec.data()) != 0) return lo;
    for (std::size_t i = 0; i < pages; ++i)
        if (vec[i] & 1) return lo + i * page;
    return hi;
}

}  // namespace

// Reads other fibers' stacks, red zones included: not for AddressSanitizer's eyes.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
std::size_t stack_high_water(const StackInfo& s) noexcept {
    if (!s.limit || s.size == 0) return 0;
    char* top = s.top();  // the frames end here; the StackInfo record lies above
    char* p = std::min(lowest_resident_page(s.limit, s.limit + s.size), top);
    auto* w = reinterpret_cast<const std::uintptr_t*>(p);
    auto* end = reinterpret_cast<const std::uintptr_t*>(top);
    while (w < end && *w == 0) ++w;
    return static_cast<std::size_t>(top - reinterpret_cast<const char*>(w));
}

void check_step_duration(LoopImpl* L, TaskBase* t, std::int64_t start_ns, bool finished) noexcept {
    std::int64_t took = now_ns() - start_ns;
    if (took >= std::chrono::duration_cast<std::chrono::nanoseconds>(L->slow_step).count()) {
        try {
            L->report(ExceptionContext{"task step took " + format_ms(took) +
                                           " without suspending (blocking the loop; slow "
                                           "callback duration is " +
                                           format_ms(std::chrono::duration_cast<std::chrono::nanoseconds>(L->slow_step).count()) + ")",
                                       nullptr, task_label(t)});
        } catch (...) {  // formatting ran out of memory: nothing useful to say
        }
    }
    if (finished && t->stack) {
        // Zero what this task wrote so the next task on this (reused) stack measures its
        // own high-water mark. Costs as much as the task used, in debug mode only.
        std::size_t used = stack_high_water(*t->stack);
        std::memset(t->stack->top() - used, 0, used);
    }
}

namespace {
struct SigquitWatch {
    explicit SigquitWatch(boost::asio::io_context& io) : signals(io, SIGQUIT) {}
    boost::asio::signal_set signals;
};

void arm(LoopImpl* L, const std::shared_ptr<SigquitWatch>& w) {
    w->signals.async_wait([L, w](const boost::system::error_code& ec, int) {
        if (ec) return;
        std::ostringstream out;
        dump_tasks(out);
        std::cerr << out.str() << std::flush;
        if (L->sigquit_watch == w) arm(L, w);
    });
}
}  // namespace

void debug_loop_enter(LoopImpl* L) noexcept {
    if (!L->debug || L->sigquit_watch) return;
    try {
        auto w = std::make_shared<SigquitWatch>(L->io->context());
        L->sigquit_watch = w;
        arm(L, w);
    } catch (...) {  // no memory or no signal support: the dump is still callable by hand
        L->sigquit_watch.reset();
    }
}

void debug_loop_leave(LoopImpl* L) noexcept {
    if (!L->sigquit_watch) return;
    auto w = std::static_pointer_cast<SigquitWatch>(L->sigquit_watch);
    L->sigquit_watch.reset();
    boost::system::error_code ec;
    w->signals.cancel(ec);
    w->signals.clear(ec);  // SIGQUIT gets its default action back
}

void report_never_awaited(LoopImpl* L) noexcept {
    if (!L->debug) return;
    for (ListNode* n = L->live.first(); n != L->live.end(); n = n->next) {
        TaskBase* t = TaskBase::from_live(n);
        if (t->awaited) continue;
        try {
            L->report(ExceptionContext{"task was destroyed but it is pending (never awaited; "
                                       "the loop's close cancels it)",
                                       nullptr, task_label(t)});
        } catch (...) {
        }
    }
}

}  // namespace detail

void dump_tasks(std::ostream& os) {
    detail::LoopImpl* L = detail::current_loop();
    if (!L) throw RuntimeError("asyncfiber: af::dump_tasks called outside a running loop");
    const std::int64_t now = detail::now_ns();
    os << "asyncfiber: " << L->live_count << " live task(s)\n";
    for (detail::ListNode* n = L->live.first(); n != L->live.end(); n = n->next) {
        detail::TaskBase* t = detail::TaskBase::from_live(n);
        os << "  #" << t->id << " '" << detail::task_label(t) << "' ";
        switch (t->status) {
        case detail::TaskStatus::created: os << "ready (not started)"; break;
        case detail::TaskStatus::ready:
            os << (t->waiting_on() ? "ready (in " + std::string(t->waiting_on()) + ")" : "ready");
            break;
        case detail::TaskStatus::running: os << "running"; break;
        case detail::TaskStatus::suspended:
            if (t->waiting_on() && std::strcmp(t->waiting_on(), "sleep") == 0)
                os << "sleeping until now+" << detail::format_ms(t->stack->wake_ns - now);
            else
                os << "waiting on " << (t->waiting_on() ? t->waiting_on() : "?");
            break;
        case detail::TaskStatus::done: os << "done"; break;
        }
        if (t->must_cancel) os << ", cancelling";
        os << ", age " << detail::format_ms(now - t->created_ns);
        if (t->stack) {
            std::size_t used = detail::stack_high_water(*t->stack);
            if (t == L->running) {  // the dump runs on this stack: its depth counts too
                char* sp = static_cast<char*>(__builtin_frame_address(0));
                std::size_t depth = static_cast<std::size_t>(t->stack->top() - sp);
                if (depth > used) used = depth;
            }
            os << ", stack " << detail::format_bytes(used) << " of "
               << detail::format_bytes(t->stack->size);
        } else {
            os << ", no stack yet";
        }
        os << '\n';
    }
}

namespace debug {

StackPoolStats stack_pool_stats() {
    detail::StackPool::Stats s = detail::StackPool::for_this_thread().stats();
    StackPoolStats out;
    out.live = s.live;
    out.free = s.free;
    out.slabs = s.slabs;
    return out;
}

std::size_t live_task_count() noexcept {
    detail::LoopImpl* L = detail::current_loop();
    return L ? L->live_count : 0;
}

}  // namespace debug
}  // namespace asyncfiber

// Debug mode: slow steps, tasks never awaited, the task dump with its await graph (in
// ordinary code and inside a signal handler), and asyncio 3.14's call graph.
#include "debug_impl.hpp"
#include "stack_pool.hpp"
#include "task_name.hpp"
#include "text_out.hpp"

#include <asyncfiber/debug.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <sys/mman.h>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {

std::string format_ms(std::int64_t ns) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << static_cast<double>(ns) / 1e6 << " ms";
    return o.str();
}

// The lowest resident page of [lo, hi), or hi if none is. Pages never touched are not
// resident and read as zero, so the scan for written words can start there. Asks the kernel
// a batch of pages at a time into a buffer of its own: no allocation (signal handlers).
char* lowest_resident_page(char* lo, char* hi) noexcept {
    const std::size_t page = StackPool::page_size();
    unsigned char vec[256];
    for (char* p = lo; p < hi;) {
        const std::size_t pages =
            std::min<std::size_t>(sizeof vec, static_cast<std::size_t>(hi - p) / page);
        if (pages == 0) break;
        if (::mincore(p, pages * page, vec) != 0) return lo;
        for (std::size_t i = 0; i < pages; ++i)
            if (vec[i] & 1) return p + i * page;
        p += pages * page;
    }
    return hi;
}

// ---- walking the loop's tasks ----
//
// The dump also runs inside a signal handler on the loop's thread, at whatever instruction the
// thread was (the loop is blocked in a task): a list may be in the middle of a change there.
// So every walk is bounded by the counts the loop keeps, and stops at a null link (unlink()
// clears a node's links).

template <class F>
void for_each_live(LoopImpl* L, F f) {
    const std::size_t bound = L->live_count + 16;
    std::size_t i = 0;
    for (ListNode* n = L->live.first(); n && n != L->live.end() && i < bound; n = n->next, ++i)
        f(TaskBase::from_live(n));
}

template <class F>
void for_each_listener(TaskBase* t, F f) {
    std::size_t i = 0;
    for (ListNode* n = t->listeners.first(); n && n != t->listeners.end() && i < (1u << 20);
         n = n->next, ++i)
        f(static_cast<DoneListener*>(n));
}

/// Does `waiter` await `t` (is it suspended until `t` ends)?
bool awaits(TaskBase* waiter, TaskBase* t) {
    bool found = false;
    for_each_listener(t, [&](DoneListener* l) { found = found || l->waiter == waiter; });
    return found;
}

bool awaited_by_someone(TaskBase* t) {
    bool found = false;
    for_each_listener(t, [&](DoneListener* l) { found = found || l->waiter != nullptr; });
    return found;
}

/// "running", "waiting on Event", "sleeping until now+12.0 ms", ...
void put_state(TextOut& o, LoopImpl* L, TaskBase* t, std::int64_t now) {
    const char* what = t->waiting_on();
    switch (t->status) {
    case TaskStatus::created:
        o.put("ready (not started)");
        break;
    case TaskStatus::ready:
        o.put("ready");
        if (what) o.put(" (in ").put(what).put(')');
        break;
    case TaskStatus::running:
        o.put(t == L->running ? "running" : "running (?)");
        break;
    case TaskStatus::suspended:
        if (what && std::strcmp(what, "sleep") == 0)
            o.put("sleeping until now+").ms(t->stack->wake_ns - now);
        else
            o.put("waiting on ").put(what ? what : "?");
        break;
    case TaskStatus::done:
        o.put("done");
        break;
    }
    if (t->must_cancel) o.put(", cancelling");
}

void put_task_line(TextOut& o, LoopImpl* L, TaskBase* t, std::int64_t now) {
    o.put("  #").num(t->id).put(" '");
    put_task_name(o, t);
    o.put("' ");
    put_state(o, L, t, now);
    o.put(", age ").ms(now - t->created_ns);
    if (t->stack) {
        std::size_t used = stack_high_water(*t->stack);
        if (t == L->running) {  // the dump may run on this stack: its depth counts too
            char* sp = static_cast<char*>(__builtin_frame_address(0));
            if (sp >= t->stack->limit && sp < t->stack->top()) {
                const std::size_t depth = static_cast<std::size_t>(t->stack->top() - sp);
                if (depth > used) used = depth;
            }
        }
        o.put(", stack ").bytes(used).put(" of ").bytes(t->stack->size);
    } else {
        o.put(", no stack yet");
    }
    o.put('\n');
}

// ---- the await graph as a tree (asyncio's pstree) ----
//
// Roots are the tasks that no task awaits; under each task come the tasks it awaits. A task
// awaited by two tasks appears under both; a task met again on its own branch (an await
// cycle) is marked, not followed.

constexpr int kMaxDepth = 48;

/// The tasks each task awaits, for the tree. Ordinary code builds an index first (linear
/// time); the signal handler, which must not allocate, scans for them (quadratic: it prints
/// the tree only for a few hundred tasks).
constexpr std::size_t kSignalTreeMaxTasks = 512;

struct ScannedAwaits {
    LoopImpl* L;
    TaskBase* printed[kSignalTreeMaxTasks];
    std::size_t n_printed = 0;
    template <class F>
    void for_each_awaited(TaskBase* t, F f) const {
        for_each_live(L, [&](TaskBase* u) {
            if (awaits(t, u)) f(u);
        });
    }
    void mark_printed(TaskBase* t) {
        if (!was_printed(t) && n_printed < kSignalTreeMaxTasks) printed[n_printed++] = t;
    }
    bool was_printed(TaskBase* t) const {
        return std::find(printed, printed + n_printed, t) != printed + n_printed;
    }
};

struct IndexedAwaits {
    std::unordered_map<TaskBase*, std::vector<TaskBase*>> awaited;  // task -> what it awaits
    explicit IndexedAwaits(LoopImpl* L) {
        for_each_live(L, [&](TaskBase* u) {
            for_each_listener(u, [&](DoneListener* l) {
                if (!l->waiter) return;
                std::vector<TaskBase*>& v = awaited[l->waiter];
                if (v.empty() || v.back() != u) v.push_back(u);
            });
        });
    }
    std::unordered_set<TaskBase*> printed;
    template <class F>
    void for_each_awaited(TaskBase* t, F f) const {
        auto it = awaited.find(t);
        if (it != awaited.end())
            for (TaskBase* u : it->second) f(u);
    }
    void mark_printed(TaskBase* t) { printed.insert(t); }
    bool was_printed(TaskBase* t) const { return printed.count(t) != 0; }
};

template <class Graph>
void put_subtree(TextOut& o, LoopImpl* L, Graph& g, TaskBase* t, std::int64_t now, TaskBase** path,
                 int depth, char* prefix, std::size_t prefix_len, bool last) {
    o.put(prefix, prefix_len).put(last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ");
    o.put('#').num(t->id).put(" '");
    put_task_name(o, t);
    o.put("' ");
    put_state(o, L, t, now);
    g.mark_printed(t);
    for (int i = 0; i < depth; ++i)
        if (path[i] == t) {
            o.put(" (await cycle: not followed again)\n");
            return;
        }
    if (depth == kMaxDepth) {
        o.put(" (deeper awaits left out)\n");
        return;
    }
    o.put('\n');
    path[depth] = t;
    const char* seg = last ? "    " : "\u2502   ";
    const std::size_t seg_len = std::strlen(seg);
    std::memcpy(prefix + prefix_len, seg, seg_len);
    // The last child needs to be known before it is printed: count first.
    std::size_t n = 0, i = 0;
    g.for_each_awaited(t, [&](TaskBase*) { ++n; });
    g.for_each_awaited(t, [&](TaskBase* u) {
        ++i;
        put_subtree(o, L, g, u, now, path, depth + 1, prefix, prefix_len + seg_len, i == n);
    });
}

template <class Graph>
void put_tree(TextOut& o, LoopImpl* L, Graph& g, std::int64_t now) {
    std::size_t roots = 0, i = 0;
    for_each_live(L, [&](TaskBase* t) { roots += awaited_by_someone(t) ? 0 : 1; });
    TaskBase* path[kMaxDepth + 1];
    char prefix[kMaxDepth * 8 + 8] = "  ";  // the tree is indented as the task lines are
    for_each_live(L, [&](TaskBase* t) {
        if (awaited_by_someone(t)) return;
        ++i;
        put_subtree(o, L, g, t, now, path, 0, prefix, 2, i == roots);
    });
    // Tasks that only await one another (an await cycle) have no root: each such cycle is
    // printed from the first of its tasks found.
    for_each_live(L, [&](TaskBase* t) {
        if (g.was_printed(t)) return;
        o.put("  (an await cycle, which no task outside it awaits:)\n");
        put_subtree(o, L, g, t, now, path, 0, prefix, 2, true);
    });
}

bool any_awaits(LoopImpl* L) {
    bool any = false;
    for_each_live(L, [&](TaskBase* t) { any = any || awaited_by_someone(t); });
    return any;
}

void write_dump(LoopImpl* L, TextOut& o, bool in_signal) {
    const std::int64_t now = now_ns();
    o.put("asyncfiber: ").num(L->live_count).put(" live task(s)\n");
    for_each_live(L, [&](TaskBase* t) { put_task_line(o, L, t, now); });
    if (!any_awaits(L)) return;
    o.put("asyncfiber: await graph (under each task, the tasks it awaits)\n");
    if (!in_signal) {
        IndexedAwaits g(L);
        put_tree(o, L, g, now);
    } else if (L->live_count <= kSignalTreeMaxTasks) {
        ScannedAwaits g;
        g.L = L;
        put_tree(o, L, g, now);
    } else {
        o.put("  (left out here with more than ")
            .num(kSignalTreeMaxTasks)
            .put(" tasks; af::dump_tasks prints it)\n");
    }
}

}  // namespace

void put_task_name(TextOut& o, const TaskBase* t) noexcept {
    TaskName name(*t);
    o.put(name.data(), name.size());
}

// Reads other fibers' stacks, red zones included: not for AddressSanitizer's eyes.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
std::size_t
stack_high_water(const StackInfo& s) noexcept {
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
    if (took >= to_ns(L->slow_step)) {
        try {
            L->report(ExceptionContext{"task step took " + format_ms(took) +
                                           " without suspending (blocking the loop; slow "
                                           "callback duration is " +
                                           format_ms(to_ns(L->slow_step)) + ")",
                                       nullptr, TaskName(*t).str()});
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

void debug_loop_enter(LoopImpl* L) noexcept { watchdog_loop_entered(L); }

void debug_loop_leave(LoopImpl* L) noexcept { watchdog_loop_left(L); }

void report_never_awaited(LoopImpl* L) noexcept {
    if (!L->debug) return;
    for (ListNode* n = L->live.first(); n != L->live.end(); n = n->next) {
        TaskBase* t = TaskBase::from_live(n);
        if (t->awaited) continue;
        try {
            L->report(
                ExceptionContext{"task was destroyed but it is pending (never awaited; "
                                 "the loop's close cancels it)",
                                 nullptr, TaskName(*t).str()});
        } catch (...) {
        }
    }
}

void write_task_dump_to_stderr(LoopImpl* L) noexcept {
    TextOut o(2);
    try {
        write_dump(L, o, false);
    } catch (...) {  // no memory for the tree's index: what was written stays
    }
}

void write_task_dump_in_signal(LoopImpl* L) noexcept {
    TextOut o(2);
    o.put("asyncfiber: task dump from a signal handler (the loop's thread is inside a step)\n");
    write_dump(L, o, true);
}

}  // namespace detail

void dump_tasks(std::ostream& os) {
    detail::LoopImpl* L = detail::loop_checked("af::dump_tasks");
    detail::TextOut o(os);
    detail::write_dump(L, o, false);
}

namespace {

// How far up capture_call_graph follows awaiters: the graph is a nested value, so its
// destruction recurses once per level, on the caller's (task) stack.
constexpr std::size_t kMaxCallGraphDepth = 256;

CallGraph node_of(detail::TaskBase* t) {
    CallGraph g;
    t->add_ref();
    g.task = detail::Access::adopt<TaskRef>(t);
    if (t->status == detail::TaskStatus::suspended && t->waiting_on())
        g.waiting_on = t->waiting_on();
    return g;
}

/// The tasks awaiting `t` (each once), leaving out those on `path` (an await cycle).
std::vector<detail::TaskBase*> awaiters_of(detail::TaskBase* t,
                                           const std::vector<detail::TaskBase*>& path) {
    std::vector<detail::TaskBase*> out;
    detail::for_each_listener(t, [&](detail::DoneListener* l) {
        detail::TaskBase* w = l->waiter;
        if (w && std::find(path.begin(), path.end(), w) == path.end() &&
            std::find(out.begin(), out.end(), w) == out.end())
            out.push_back(w);
    });
    return out;
}

/// Depth first, without recursion: a chain of tasks awaiting one another can be long.
CallGraph build_call_graph(detail::TaskBase* t) {
    struct Level {
        CallGraph* node;  // stays put: only the deepest level's node grows
        std::vector<detail::TaskBase*> awaiters;
        std::size_t next = 0;
    };
    CallGraph root = node_of(t);
    std::vector<detail::TaskBase*> path{t};
    std::vector<Level> levels;
    levels.push_back(Level{&root, awaiters_of(t, path)});
    while (!levels.empty()) {
        Level& top = levels.back();
        if (top.next == top.awaiters.size() || levels.size() >= kMaxCallGraphDepth) {
            levels.pop_back();
            path.pop_back();
            continue;
        }
        detail::TaskBase* w = top.awaiters[top.next++];
        top.node->awaited_by.push_back(node_of(w));
        CallGraph* child = &top.node->awaited_by.back();
        path.push_back(w);
        levels.push_back(Level{child, awaiters_of(w, path)});
    }
    return root;
}

void format_node(std::string& out, const CallGraph& g, std::size_t indent) {
    out.append(indent, ' ');
    out += "* Task '" + g.task.name() + "' (id " + std::to_string(g.task.id()) + ")";
    if (!g.waiting_on.empty()) out += " waiting on " + g.waiting_on;
    out += '\n';
    if (g.awaited_by.empty()) return;
    out.append(indent + 2, ' ');
    out += "awaited by:\n";
    for (const CallGraph& a : g.awaited_by) format_node(out, a, indent + 2);
}

}  // namespace

CallGraph capture_call_graph(const TaskRef& task) {
    detail::TaskBase* t = detail::Access::state(task);
    if (!t) throw InvalidStateError("asyncfiber: capture_call_graph of an empty Task handle");
    if (!t->loop || t->loop != detail::current_loop())
        throw RuntimeError(
            "asyncfiber: capture_call_graph called outside the task's loop (its thread)");
    return build_call_graph(t);
}

CallGraph capture_call_graph() { return capture_call_graph(current_task()); }

std::string format_call_graph(const CallGraph& graph) {
    std::string out;
    if (graph.task) format_node(out, graph, 0);
    return out;
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

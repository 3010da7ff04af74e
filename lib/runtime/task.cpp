// Tasks: spawning, cancellation, awaiting one task or many, and the handle's accessors.
#include "loop_impl.hpp"
#include "task_locals.hpp"
#include "task_name.hpp"

#include <asyncfiber/detail/suspend.hpp>
#include <asyncfiber/task.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {
std::atomic<std::uint64_t> g_next_task_id{1};
constexpr std::uint64_t kIdBlock = 256;

TaskBase* checked(TaskBase* p) {
    if (!p) throw InvalidStateError("asyncfiber: use of an empty Task handle");
    return p;
}

// A handle operation that changes the task: only on its loop's thread (check_loop_thread).
TaskBase* checked_here(TaskBase* p, const char* what) {
    checked(p);
    check_loop_thread(p->loop, what, LoopUse::act);
    return p;
}
}  // namespace

TaskBase::~TaskBase() {
    if (outcome == TaskOutcome::error && !retrieved) {
        ExceptionContext ctx{"Task exception was never retrieved", error, TaskName(*this).str()};
        if (LoopImpl* L = current_loop())
            L->report(ctx);
        else
            default_report(ctx);
    }
    delete extras_;
    if (loop) loop->release();
}

namespace {
const std::string& no_string() noexcept {
    static const std::string none;
    return none;
}
}  // namespace

TaskExtras& TaskBase::extras() {
    if (!extras_) extras_ = new TaskExtras;
    return *extras_;
}

const std::string& TaskBase::given_name() const noexcept {
    return extras_ ? extras_->name : no_string();
}

const std::string& TaskBase::cancel_msg() const noexcept {
    return extras_ ? extras_->cancel_msg : no_string();
}

void TaskBase::set_cancel_msg(const std::string& msg) {
    if (extras_ || !msg.empty()) extras().cancel_msg = msg;
}

std::size_t TaskBase::requested_stack_size() const noexcept {
    return extras_ ? extras_->stack_size : 0;
}

void TaskBase::rethrow_if_failed() {
    retrieved = true;
    if (outcome == TaskOutcome::error) std::rethrow_exception(error);
    if (outcome == TaskOutcome::cancelled) throw CancelledError(cancel_msg());
}

void spawn(TaskBase* t, std::string name, std::size_t stack_size, const Context* context,
           bool eager) {
    LoopImpl* L = loop_checked("af::async");
    if (L->closed) throw RuntimeError("asyncfiber: af::async on a closed loop");
    t->loop = L;
    L->add_ref();  // the task block keeps its loop's block: a handle asks it for its thread
    // Ids are unique process-wide; each thread takes them in blocks (no atomic per task).
    static thread_local std::uint64_t next_id = 0, id_end = 0;
    if (next_id == id_end) {
        next_id = g_next_task_id.fetch_add(kIdBlock, std::memory_order_relaxed);
        id_end = next_id + kIdBlock;
    }
    t->id = next_id++;
    if (!name.empty() || stack_size != 0) {
        TaskExtras& x = t->extras();
        x.name = std::move(name);
        x.stack_size = stack_size;
    }
    start_task_locals(t, context);  // its context and thread_locals: copies of its creator's
    t->created_ns = L->cached_now_ns;
    t->add_ref();  // the loop's, until the task is done
    L->live.push_back(static_cast<LiveLink*>(t));
    ++L->live_count;
    ++L->spawned;
    t->status = TaskStatus::created;
    if (eager)
        L->run_eager(t);
    else
        L->push_ready(t);
}

bool cancel_task(TaskBase* t, const std::string& msg) {
    if (t->is_done()) {
        // As asyncio's Task.cancel(), which clears _log_traceback before it looks at done():
        // whoever cancels a task that already failed has dealt with it, so its exception is
        // not reported as never retrieved.
        t->retrieved = true;
        return false;
    }
    ++t->cancel_requests;
    if (t->status == TaskStatus::suspended && t->cancel_hook &&
        t->cancel_hook->forward(t->cancel_hook, msg))
        return true;  // handed on to what it awaits; it wakes when that ends
    t->must_cancel = true;
    t->set_cancel_msg(msg);
    wake(t);
    return true;
}

int uncancel_task(TaskBase* t) noexcept {
    if (t->cancel_requests > 0 && --t->cancel_requests == 0) {
        // As Python 3.13: with no request left, a cancellation not yet delivered is dropped
        // too (a timeout that fired just before its scope ended must not hit later code).
        t->must_cancel = false;
        t->set_cancel_msg(std::string());
    }
    return static_cast<int>(t->cancel_requests);
}

namespace {

/// Wakes the awaiting task when the awaited one is done; forwards a cancel to the latter.
struct AwaitListener : DoneListener, CancelHook {
    TaskBase* awaited = nullptr;
    ~AwaitListener() { unlink(); }
};

}  // namespace

void await_done(TaskBase* t) {
    check_loop_thread(t->loop, "af::await", LoopUse::await);
    TaskBase* self = current_task_checked("af::await");
    if (t == self) throw RuntimeError("asyncfiber: a task cannot await itself");
    t->awaited = true;
    if (t->is_done()) return;  // nothing to wait for: not a suspension point
    // A cancellation already pending goes to the awaited task first, as asyncio's __step
    // hands _must_cancel to the future it is about to wait on.
    if (self->must_cancel && cancel_task(t, self->cancel_msg())) self->must_cancel = false;
    throw_if_cancelled(self);
    AwaitListener node;
    node.waiter = self;
    node.awaited = t;
    node.on_done = [](DoneListener* l, TaskBase*) { wake(static_cast<AwaitListener*>(l)->waiter); };
    node.forward = [](CancelHook* h, const std::string& msg) {
        return cancel_task(static_cast<AwaitListener*>(h)->awaited, msg);
    };
    t->listeners.push_back(&node);
    CancelHookScope hook(self, node);
    for (;;) {
        suspend(self, "a task");
        throw_if_cancelled(self);
        if (t->is_done()) return;
    }
}

namespace {

struct GatherState;

// One per child: its position among the children is its place in GatherState::nodes, so the
// node holds no index (a gather of 100 000 keeps 100 000 of them).
struct ChildListener : DoneListener {
    GatherState* g = nullptr;
    ~ChildListener() { unlink(); }
};

struct GatherState : CancelHook {
    TaskBase* waiter = nullptr;
    TaskBase* const* children = nullptr;
    ChildListener* nodes = nullptr;  // nodes[i] listens to children[i]
    std::size_t n = 0;
    std::size_t remaining = 0;
    std::ptrdiff_t failed = -1;
    GatherMode mode = GatherMode::all;
    bool cancel_requested = false;
    std::string cancel_msg;
    // The deciding child's completion wakes the caller through one call_soon hop, as in
    // asyncio: there the child's done callback (queued by call_soon) completes gather's
    // outer future, whose own callback then wakes the awaiting task one iteration later.
    // The hop lives here, not on the heap: the caller resumes only once it has run, so it
    // never outlives this state. refs starts at 2 so that the loop's release never frees it.
    CallbackItem hop;
    bool hop_ran = false;

    bool finished() const noexcept {
        return remaining == 0 || (mode == GatherMode::first_error && failed >= 0);
    }
};

void on_child_done(DoneListener* l, TaskBase* child) {
    auto* c = static_cast<ChildListener*>(l);
    GatherState* g = c->g;
    const bool was_finished = g->finished();
    --g->remaining;
    if (g->failed < 0 && child->outcome != TaskOutcome::value) g->failed = c - g->nodes;
    if (g->finished() && !was_finished) {
        g->hop.refs = 2;
        g->hop.queued = true;
        g->hop.loop = g->waiter->loop;
        g->hop.fn = [g] {
            g->hop_ran = true;
            wake(g->waiter);
        };
        g->waiter->loop->push_ready(&g->hop);
    }
}

bool cancel_children(CancelHook* h, const std::string& msg) {
    auto* g = static_cast<GatherState*>(h);
    bool any = false;
    for (std::size_t i = 0; i < g->n; ++i)
        if (cancel_task(g->children[i], msg)) any = true;
    if (any) {
        g->cancel_requested = true;
        g->cancel_msg = msg;
        return true;
    }
    // Every child is done and the hop is on its way: as in asyncio (the outer future cannot
    // be cancelled any more, so the task's cancellation waits for its next step), the
    // cancellation is delivered when the hop wakes the caller, not before.
    g->waiter->must_cancel = true;
    g->waiter->set_cancel_msg(msg);
    return true;
}

}  // namespace

void start_in_argument_order(TaskBase* const* tasks, std::size_t n) {
    // The common case costs one look at each: spawned in argument order already. Unstarted
    // tasks wait in the ready queue in the order they were spawned, which is the order of
    // their ids.
    LoopImpl* L = current_loop();
    std::uint64_t last = 0;
    bool in_order = true;
    for (std::size_t i = 0; i < n; ++i) {
        TaskBase* t = tasks[i];
        if (!t || t->status != TaskStatus::created || t->loop != L) continue;
        if (t->id < last) in_order = false;
        last = t->id;
    }
    if (in_order) return;

    // Each unstarted task counts once, at its first position among the arguments.
    std::vector<std::pair<std::uint64_t, std::size_t>> by_id;  // (id, position)
    for (std::size_t i = 0; i < n; ++i) {
        TaskBase* t = tasks[i];
        if (t && t->status == TaskStatus::created && t->loop == L) by_id.emplace_back(t->id, i);
    }
    std::sort(by_id.begin(), by_id.end());
    by_id.erase(std::unique(by_id.begin(), by_id.end(),
                            [](const std::pair<std::uint64_t, std::size_t>& a,
                               const std::pair<std::uint64_t, std::size_t>& b) {
                                return a.first == b.first;
                            }),
                by_id.end());
    std::vector<std::size_t> by_position;
    by_position.reserve(by_id.size());
    for (const auto& e : by_id) by_position.push_back(e.second);
    std::sort(by_position.begin(), by_position.end());

    // The queue up to the last of them, with the j-th of them (in queue order) replaced by
    // the j-th in argument order: their places are exchanged among themselves, nothing else
    // moves. Nothing is relinked before the walk is over.
    std::vector<ReadyItem*> items;
    std::size_t j = 0;
    ReadyItem* rest = L->ready_head;
    while (j < by_id.size() && rest) {
        if (rest == static_cast<ReadyItem*>(tasks[by_id[j].second]))
            items.push_back(tasks[by_position[j++]]);
        else
            items.push_back(rest);
        rest = rest->ready_next;
    }
    if (j < by_id.size()) return;  // not all queued (cannot happen): leave the queue as it is
    for (std::size_t k = 0; k + 1 < items.size(); ++k) items[k]->ready_next = items[k + 1];
    L->ready_head = items.front();
    items.back()->ready_next = rest;
    if (!rest) L->ready_tail = items.back();
}

std::ptrdiff_t wait_children(TaskBase* const* tasks, std::size_t n, GatherMode mode) {
    if (n > 0) check_loop_thread(tasks[0]->loop, "af::gather", LoopUse::await);
    TaskBase* self = current_task_checked("af::gather");
    GatherState g;
    g.forward = &cancel_children;
    g.waiter = self;
    g.children = tasks;
    g.n = n;
    g.mode = mode;

    // One listener per child not done yet; small gathers keep them on this stack, larger ones
    // get them from the heap once a child turns out not to be done (a gather of children that
    // all ended needs none). A node unlinks itself when destroyed, so leaving early (done, an
    // error) detaches them all.
    ChildListener inline_nodes[16];
    std::unique_ptr<ChildListener[]> heap_nodes;
    if (n <= 16) g.nodes = inline_nodes;
    // One pass over the children: a gather of 100 000 reads 100 000 task blocks, far more
    // than the caches hold, so each pass is a trip through memory.
    for (std::size_t i = 0; i < n; ++i) {
        TaskBase* t = tasks[i];
        if (t == self) throw RuntimeError("asyncfiber: a task cannot gather itself");
        if (t->loop != self->loop) check_loop_thread(t->loop, "af::gather", LoopUse::await);
        t->retrieved = t->awaited = true;
        if (t->is_done()) {
            if (g.failed < 0 && t->outcome != TaskOutcome::value)
                g.failed = static_cast<std::ptrdiff_t>(i);
            continue;
        }
        ++g.remaining;
        if (!g.nodes) {
            heap_nodes.reset(new ChildListener[n]);
            g.nodes = heap_nodes.get();
        }
        ChildListener& node = g.nodes[i];
        node.g = &g;
        node.waiter = self;
        node.on_done = &on_child_done;
        t->listeners.push_back(&node);
    }
    if (g.finished()) return g.failed;
    if (self->must_cancel && cancel_children(&g, self->cancel_msg())) self->must_cancel = false;
    throw_if_cancelled(self);
    CancelHookScope hook(self, g);
    while (!g.hop_ran) {
        suspend(self, "gather");
        throw_if_cancelled(self);
    }
    if (mode == GatherMode::all && g.cancel_requested) throw CancelledError(g.cancel_msg);
    return g.failed;
}

}  // namespace detail

// ---- TaskRef ----

bool TaskRef::done() const { return detail::checked(p_.get())->is_done(); }

bool TaskRef::cancelled() const {
    return detail::checked(p_.get())->outcome == detail::TaskOutcome::cancelled;
}

bool TaskRef::cancel(std::string msg) {
    return detail::cancel_task(detail::checked_here(p_.get(), "Task::cancel"), msg);
}

int TaskRef::cancelling() const {
    return static_cast<int>(detail::checked(p_.get())->cancel_requests);
}

int TaskRef::uncancel() {
    return detail::uncancel_task(detail::checked_here(p_.get(), "Task::uncancel"));
}

std::exception_ptr TaskRef::exception() const {
    detail::TaskBase* t = detail::checked(p_.get());
    if (!t->is_done()) throw InvalidStateError("asyncfiber: exception() of a pending task");
    t->retrieved = true;
    if (t->outcome == detail::TaskOutcome::cancelled) throw CancelledError(t->cancel_msg());
    return t->error;
}

std::string TaskRef::name() const {
    detail::TaskBase* t = detail::checked(p_.get());
    return detail::TaskName(*t).str();
}

void TaskRef::set_name(std::string name) {
    detail::checked_here(p_.get(), "Task::set_name")->extras().name = std::move(name);
}

std::uint64_t TaskRef::id() const { return detail::checked(p_.get())->id; }

namespace {
struct CallbackListener : detail::DoneListener {
    detail::Callback<void(TaskRef)> fn;
};
}  // namespace

void TaskRef::add_done_callback(detail::Callback<void(TaskRef)> fn) {
    detail::TaskBase* t = detail::checked_here(p_.get(), "Task::add_done_callback");
    if (!fn) throw std::invalid_argument("asyncfiber: add_done_callback with an empty function");
    detail::LoopImpl* L = t->loop;
    if (L->closed) throw RuntimeError("asyncfiber: add_done_callback on a task of a closed loop");
    fn = detail::with_current_context(std::move(fn));  // runs in a copy of the caller's context
    if (t->is_done()) {
        TaskRef self = *this;
        L->call_soon([fn = std::move(fn), self] { fn(self); });
        return;
    }
    auto* node = new CallbackListener;
    node->fn = std::move(fn);
    node->on_done = [](detail::DoneListener* l, detail::TaskBase* done) {
        std::unique_ptr<CallbackListener> owned(static_cast<CallbackListener*>(l));
        done->add_ref();
        TaskRef ref = detail::Access::adopt<TaskRef>(done);
        auto f = std::move(owned->fn);
        done->loop->call_soon([f = std::move(f), ref] { f(ref); });
    };
    t->listeners.push_back(node);
}

void await(Task<void>& t) {
    if (!t) throw InvalidStateError("asyncfiber: await of an empty Task handle");
    detail::await_done(detail::Access::state(t));
    detail::Access::typed(t)->value();
}

void await(Task<void>&& t) { await(t); }

TaskRef current_task() {
    // As asyncio.current_task(): no running loop is an error; a loop running a callback (not
    // a task) gives None, here an empty handle.
    detail::loop_checked("af::current_task");
    detail::TaskBase* t = detail::current_task_or_null();
    if (!t) return TaskRef();
    t->add_ref();
    return detail::Access::adopt<TaskRef>(t);
}

std::vector<TaskRef> all_tasks() {
    detail::LoopImpl* L = detail::loop_checked("af::all_tasks");
    std::vector<TaskRef> out;
    out.reserve(L->live_count);
    for (detail::ListNode* n = L->live.first(); n != L->live.end(); n = n->next) {
        detail::TaskBase* t = detail::TaskBase::from_live(n);
        t->add_ref();
        out.push_back(detail::Access::adopt<TaskRef>(t));
    }
    return out;
}

}  // namespace asyncfiber

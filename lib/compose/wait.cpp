// af::wait, as_completed's completion queue, and shield's cancellation-proof wait.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/wait.hpp>

#include <memory>
#include <stdexcept>
#include <unordered_set>

namespace asyncfiber {

namespace {

struct WaitState;

struct WaitNode : detail::DoneListener {
    WaitState* st = nullptr;
    ~WaitNode() { unlink(); }
};

struct WaitTimer : detail::TimerNode {
    WaitState* st = nullptr;
};

struct WaitState : detail::CancelHook {
    detail::TaskBase* self;
    ReturnWhen when;
    std::size_t pending;
    bool failed = false;  // a task ended with an exception
    bool timed_out = false;
    // Once the wait is decided, the caller is woken through one call_soon hop, as asyncio's
    // completion callback sets the waiter future whose own callback then wakes the task: the
    // caller resumes in the iteration asyncio's would (test_wait_really_done), and a wait
    // decided at the call suspends too, as asyncio's does.
    bool decided = false;
    bool hop_ran = false;
    Handle hop;

    bool satisfied() const noexcept {
        if (pending == 0 || timed_out) return true;
        if (when == ReturnWhen::first_completed) return false;  // checked by the listener
        return when == ReturnWhen::first_exception && failed;
    }
    void decide() {
        if (decided) return;
        decided = true;
        hop = self->loop->call_soon([this] {
            hop_ran = true;
            detail::wake(self);
        });
    }
};

bool failed_with_exception(const detail::TaskBase* t) noexcept {
    return t->outcome == detail::TaskOutcome::error;
}

// asyncio takes a set of the tasks, so a task given twice counts once. One hash look-up per
// task keeps that linear: a pairwise search costs 10^10 comparisons for 100 000 tasks.
class DuplicateFilter {
public:
    explicit DuplicateFilter(std::size_t n) { seen_.reserve(n); }
    /// True the first time `t` is offered.
    bool first_time(const detail::TaskBase* t) { return seen_.insert(t).second; }

private:
    std::unordered_set<const detail::TaskBase*> seen_;
};

/// A cancel that arrives once the wait is decided is delivered when the hop wakes the caller
/// (asyncio: the waiter future is done, so the task's cancellation waits for its next step).
bool cancel_decided_wait(detail::CancelHook* h, const std::string& msg) {
    auto* st = static_cast<WaitState*>(h);
    if (!st->decided) return false;
    st->self->must_cancel = true;
    st->self->set_cancel_msg(msg);
    return true;
}

}  // namespace

WaitResult wait_until(std::vector<TaskRef> tasks, ReturnWhen when, Clock::time_point deadline) {
    if (!tasks.empty() && tasks[0])
        detail::check_loop_thread(detail::Access::state(tasks[0])->loop, "af::wait",
                                  detail::LoopUse::await);
    detail::TaskBase* self = detail::current_task_checked("af::wait");
    if (tasks.empty())
        throw std::invalid_argument("asyncfiber: af::wait of an empty list of tasks");
    if (when != ReturnWhen::first_completed && when != ReturnWhen::first_exception &&
        when != ReturnWhen::all_completed)
        throw std::invalid_argument("asyncfiber: af::wait with an invalid ReturnWhen value");
    // Duplicates count once (asyncio takes a set); the order given is kept.
    std::vector<TaskRef> unique;
    unique.reserve(tasks.size());
    DuplicateFilter seen(tasks.size());
    for (auto& t : tasks) {
        if (!t) throw InvalidStateError("asyncfiber: af::wait of an empty Task handle");
        if (detail::Access::state(t)->loop != self->loop)
            detail::check_loop_thread(detail::Access::state(t)->loop, "af::wait",
                                      detail::LoopUse::await);
        if (detail::Access::state(t) == self)
            throw RuntimeError("asyncfiber: a task cannot wait for itself");
        if (seen.first_time(detail::Access::state(t))) unique.push_back(std::move(t));
    }

    WaitState st;
    st.self = self;
    st.when = when;
    st.pending = 0;
    st.forward = &cancel_decided_wait;
    bool any_done = false;
    for (auto& t : unique) {
        if (!detail::Access::state(t)->is_done())
            ++st.pending;
        else {
            any_done = true;
            if (failed_with_exception(detail::Access::state(t))) st.failed = true;
        }
    }
    detail::throw_if_cancelled(self);
    std::vector<WaitNode> nodes(unique.size());
    for (std::size_t i = 0; i < unique.size(); ++i) {
        detail::TaskBase* t = detail::Access::state(unique[i]);
        if (t->is_done()) continue;
        nodes[i].st = &st;
        nodes[i].waiter = self;
        nodes[i].on_done = [](detail::DoneListener* l, detail::TaskBase* done) {
            WaitState* s = static_cast<WaitNode*>(l)->st;
            --s->pending;
            if (failed_with_exception(done)) s->failed = true;
            if (s->when == ReturnWhen::first_completed || s->satisfied()) s->decide();
        };
        t->listeners.push_back(&nodes[i]);
    }
    WaitTimer timer;
    timer.st = &st;
    timer.fire = [](detail::TimerNode* n) {
        WaitState* s = static_cast<WaitTimer*>(n)->st;
        s->timed_out = true;
        s->decide();
    };
    if (st.satisfied() || (when == ReturnWhen::first_completed && any_done))
        st.decide();
    else if (deadline != Clock::time_point::max())
        detail::add_timer(timer, deadline);
    detail::CancelHookScope hook(self, st);
    try {
        while (!st.hop_ran) {
            detail::suspend(self, "af::wait");
            detail::throw_if_cancelled(self);
        }
    } catch (...) {
        detail::remove_timer(timer);
        st.hop.cancel();
        throw;
    }
    detail::remove_timer(timer);
    WaitResult r;
    for (auto& t : unique) (detail::Access::state(t)->is_done() ? r.done : r.pending).push_back(t);
    return r;
}

WaitResult wait(std::vector<TaskRef> tasks, ReturnWhen when) {
    return wait_until(std::move(tasks), when, Clock::time_point::max());
}

namespace detail {

struct CompletionQueue::Node : DoneListener {
    CompletionQueue* q = nullptr;
    std::size_t index = 0;
    ~Node() { unlink(); }
};

struct CompletionQueue::Timer : TimerNode {
    CompletionQueue* q = nullptr;
};

CompletionQueue::CompletionQueue(std::vector<TaskBase*> tasks, Clock::time_point deadline)
    : n_(0), nodes_(new Node[tasks.size()]) {
    try {
        for (TaskBase* t : tasks) check_loop_thread(t->loop, "af::as_completed", LoopUse::await);
        loop_checked("af::as_completed");
        finished_.reserve(tasks.size());
        // Tasks given twice would be yielded twice: only the first counts. Each task keeps its
        // index among those given, which is what next() returns.
        DuplicateFilter seen(tasks.size());
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            TaskBase* t = tasks[i];
            if (!seen.first_time(t)) continue;
            ++n_;
            if (t->is_done()) {
                finished_.push_back(i);
                continue;
            }
            nodes_[i].q = this;
            nodes_[i].index = i;
            nodes_[i].on_done = [](DoneListener* l, TaskBase*) {
                Node* nd = static_cast<Node*>(l);
                nd->q->on_done(nd->index);
            };
            t->listeners.push_back(&nodes_[i]);
        }
        if (deadline != Clock::time_point::max()) {
            timer_ = new Timer;
            timer_->q = this;
            timer_->fire = [](TimerNode* n) {
                CompletionQueue* q = static_cast<Timer*>(n)->q;
                q->timed_out_ = true;
                if (q->waiter_) wake(q->waiter_);
            };
            add_timer(*timer_, deadline);
        }
    } catch (...) {
        // The destructor does not run. add_timer is the last call that can throw, so the
        // timer is not armed; the nodes unlink themselves.
        delete timer_;
        delete[] nodes_;
        throw;
    }
}

CompletionQueue::~CompletionQueue() {
    if (timer_) remove_timer(*timer_);
    delete timer_;
    delete[] nodes_;
}

void CompletionQueue::on_done(std::size_t index) noexcept {
    finished_.push_back(index);
    if (waiter_) wake(waiter_);
}

std::size_t CompletionQueue::next() {
    TaskBase* self = current_task_checked("af::as_completed");
    if (yielded_ >= n_) throw InvalidStateError("asyncfiber: as_completed is exhausted");
    if (head_ == finished_.size()) {
        if (timed_out_) throw TimeoutError();
        throw_if_cancelled(self);
        waiter_ = self;
        struct Reset {
            TaskBase*& w;
            ~Reset() { w = nullptr; }
        } reset{waiter_};
        while (head_ == finished_.size()) {
            if (timed_out_) throw TimeoutError();
            suspend(self, "af::as_completed");
            throw_if_cancelled(self);
        }
    }
    ++yielded_;
    return finished_[head_++];
}

namespace {

/// Wakes the task waiting in wait_done_no_forward (the shield) when the shielded task is done.
struct ShieldListener : DoneListener {
    TaskBase* waiter = nullptr;
    ~ShieldListener() { unlink(); }
};

/// Once a shield was cancelled, nobody waits for the shielded task any more: its failure is
/// reported when it happens (asyncio 3.14's shield logs it), once however many shields of it
/// were cancelled, and counts as retrieved. Heap-allocated; the task's end frees it.
void report_shielded_failure(DoneListener* l, TaskBase* t) {
    std::unique_ptr<DoneListener> owned(l);
    if (t->outcome != TaskOutcome::error) return;
    t->retrieved = true;
    t->add_ref();
    TaskRef task = detail::Access::adopt<TaskRef>(t);
    t->loop->report(ExceptionContext{"exception in a shielded task whose shield was cancelled",
                                     t->error, task.name()});
}

void report_failure_once_unshielded(TaskBase* t) {
    for (ListNode* n = t->listeners.first(); n != t->listeners.end(); n = n->next)
        if (static_cast<DoneListener*>(n)->on_done == &report_shielded_failure) return;
    auto* reporter = new DoneListener;
    reporter->on_done = &report_shielded_failure;
    t->listeners.push_back(reporter);
}

/// Suspends `self` until `t` is done. Woken directly, not through wait()'s hop: the shield
/// resumes in the iteration after the shielded task ends and ends then, as asyncio's shield
/// future does in the shielded one's done callback.
void wait_done_directly(TaskBase* self, TaskBase* t) {
    throw_if_cancelled(self);
    ShieldListener node;
    node.waiter = self;
    node.on_done = [](DoneListener* l, TaskBase*) {
        wake(static_cast<ShieldListener*>(l)->waiter);
    };
    t->listeners.push_back(&node);
    while (!t->is_done()) {
        suspend(self, "af::shield");
        throw_if_cancelled(self);
    }
}

}  // namespace

void wait_done_no_forward(TaskBase* t) {
    t->awaited = true;
    if (t->is_done()) return;
    TaskBase* self = current_task_checked("af::shield");
    try {
        wait_done_directly(self, t);
    } catch (const CancelledError&) {
        // The cancellation can land after `t` ended and woke this task, before it ran: then
        // nothing is left to report later (its outcome stays in `t`, reported as any task's
        // when never retrieved), and a reporter added now would never fire.
        if (!t->is_done()) report_failure_once_unshielded(t);
        throw;
    }
}

}  // namespace detail
}  // namespace asyncfiber

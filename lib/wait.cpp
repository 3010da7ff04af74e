// af::wait, as_completed's completion queue, and shield's cancellation-proof wait.
#include "loop_impl.hpp"

#include <asyncfiber/wait.hpp>

#include <algorithm>
#include <stdexcept>

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

struct WaitState {
    detail::TaskBase* self;
    ReturnWhen when;
    std::size_t pending;
    bool failed = false;     // a task ended with an exception
    bool timed_out = false;

    bool satisfied() const noexcept {
        if (pending == 0 || timed_out) return true;
        if (when == ReturnWhen::first_completed) return false;  // checked by the listener
        return when == ReturnWhen::first_exception && failed;
    }
};

bool failed_with_exception(const detail::TaskBase* t) noexcept {
    return t->outcome == detail::TaskOutcome::error;
}

}  // namespace

WaitResult wait_until(std::vector<TaskRef> tasks, ReturnWhen when, Clock::time_point deadline) {
    detail::TaskBase* self = detail::current_task_checked("af::wait");
    if (tasks.empty()) throw std::invalid_argument("asyncfiber: af::wait of an empty list of tasks");
    // Duplicates count once (asyncio takes a set); the order given is kept.
    std::vector<TaskRef> unique;
    unique.reserve(tasks.size());
    for (auto& t : tasks) {
        if (!t) throw std::invalid_argument("asyncfiber: af::wait of an empty Task handle");
        if (t.state() == self) throw RuntimeError("asyncfiber: a task cannot wait for itself");
        if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
    }

    WaitState st{self, when, 0};
    bool any_done = false;
    for (auto& t : unique) {
        if (!t.state()->is_done())
            ++st.pending;
        else {
            any_done = true;
            if (failed_with_exception(t.state())) st.failed = true;
        }
    }
    bool ready = st.satisfied() || (when == ReturnWhen::first_completed && any_done);
    if (!ready) {
        detail::throw_if_cancelled(self);
        std::vector<WaitNode> nodes(unique.size());
        for (std::size_t i = 0; i < unique.size(); ++i) {
            detail::TaskBase* t = unique[i].state();
            if (t->is_done()) continue;
            nodes[i].st = &st;
            nodes[i].waiter = self;
            nodes[i].on_done = [](detail::DoneListener* l, detail::TaskBase* done) {
                WaitState* s = static_cast<WaitNode*>(l)->st;
                --s->pending;
                if (failed_with_exception(done)) s->failed = true;
                if (s->when == ReturnWhen::first_completed || s->satisfied()) detail::wake(s->self);
            };
            t->listeners.push_back(&nodes[i]);
        }
        WaitTimer timer;
        timer.st = &st;
        timer.fire = [](detail::TimerNode* n) {
            WaitState* s = static_cast<WaitTimer*>(n)->st;
            s->timed_out = true;
            detail::wake(s->self);
        };
        if (deadline != Clock::time_point::max()) detail::add_timer(timer, deadline);
        const std::size_t initial = st.pending;
        try {
            for (;;) {
                detail::suspend(self, "af::wait");
                detail::throw_if_cancelled(self);
                if (st.satisfied() || (when == ReturnWhen::first_completed && st.pending < initial))
                    break;
            }
        } catch (...) {
            detail::remove_timer(timer);
            throw;
        }
        detail::remove_timer(timer);
    }
    WaitResult r;
    for (auto& t : unique) (t.state()->is_done() ? r.done : r.pending).push_back(t);
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
    : n_(tasks.size()), nodes_(new Node[tasks.size()]) {
    if (!current_loop()) throw RuntimeError("asyncfiber: af::as_completed called outside a running loop");
    finished_.reserve(n_);
    // Tasks given twice would be yielded twice; asyncio takes a set, so only the first counts.
    for (std::size_t i = 0; i < n_; ++i) {
        TaskBase* t = tasks[i];
        if (std::find(tasks.begin(), tasks.begin() + static_cast<std::ptrdiff_t>(i), t) !=
            tasks.begin() + static_cast<std::ptrdiff_t>(i)) {
            --n_;
            continue;
        }
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
        timer_.reset(new Timer);
        timer_->q = this;
        timer_->fire = [](TimerNode* n) {
            CompletionQueue* q = static_cast<Timer*>(n)->q;
            q->timed_out_ = true;
            if (q->waiter_) wake(q->waiter_);
        };
        add_timer(*timer_, deadline);
    }
}

CompletionQueue::~CompletionQueue() {
    if (timer_) remove_timer(*timer_);
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

void wait_done_no_forward(TaskBase* t) {
    t->awaited = true;
    if (t->is_done()) return;
    t->add_ref();
    TaskRef keep = TaskRef::adopt(t);
    wait(std::vector<TaskRef>{keep}, ReturnWhen::all_completed);
}

}  // namespace detail
}  // namespace asyncfiber

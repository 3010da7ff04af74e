// af::TaskGroup (asyncio.TaskGroup): members are tracked with done-listeners that the group
// owns; the first failure cancels the other members; join() and the destructor wait until no
// member is left.
#include "loop_impl.hpp"

#include <asyncfiber/detail/wait.hpp>
#include <asyncfiber/task_group.hpp>

namespace asyncfiber {

struct TaskGroup::Member : detail::DoneListener {
    struct Link : detail::ListNode {
        Member* m = nullptr;
    };
    Link link;
    TaskGroup* group = nullptr;
    detail::TaskBase* task = nullptr;
};

TaskGroup::TaskGroup() : owner_(detail::current_task_checked("af::TaskGroup")) {}

TaskGroup::~TaskGroup() {
    if (!joined_ && active_ > 0) {
        abort();
        bool cancelled = false;
        std::string msg;
        wait_all(&cancelled, &msg);
        if (cancelled) {
            // The wait could not be interrupted; the cancellation is not lost but delivered at
            // the task's next suspension point.
            if (detail::TaskBase* self = detail::current_task_or_null()) {
                self->must_cancel = true;
                self->set_cancel_msg(msg);
            }
        }
    }
    if (!joined_ && !errors_.empty()) {
        if (detail::LoopImpl* L = detail::current_loop())
            for (auto& e : errors_)
                L->report(ExceptionContext{"a task of a TaskGroup destroyed without join() failed",
                                           e, {}});
    }
}

void TaskGroup::check_open() const {
    if (joined_) throw RuntimeError("asyncfiber: TaskGroup is finished (spawn after join)");
    if (aborting_) throw RuntimeError("asyncfiber: TaskGroup is shutting down");
}

void TaskGroup::adopt(detail::TaskBase* t) {
    auto* m = new Member;
    m->link.m = m;
    m->group = this;
    m->task = t;
    m->waiter = joiner_;  // spawned while the group joins: awaited by the joiner
    m->on_done = [](detail::DoneListener* l, detail::TaskBase* done) {
        auto* mm = static_cast<Member*>(l);
        mm->group->on_member_done(mm, done);
    };
    t->listeners.push_back(m);
    members_.push_back(&m->link);
    ++active_;
}

void TaskGroup::on_member_done(Member* m, detail::TaskBase* t) noexcept {
    m->link.unlink();
    delete m;
    --active_;
    if (t->outcome == detail::TaskOutcome::error) {
        t->retrieved = true;
        errors_.push_back(t->error);
        if (!aborting_) abort();
    }
    if (active_ == 0 && joiner_) detail::wake(joiner_);
}

void TaskGroup::abort() noexcept {
    aborting_ = true;
    for (detail::ListNode* n = members_.first(); n != members_.end();) {
        detail::TaskBase* t = static_cast<Member::Link*>(n)->m->task;
        n = n->next;
        try {
            detail::cancel_task(t, std::string());
        } catch (...) {
            // Only allocation can fail here; the member still gets cancelled at its next
            // suspension point through must_cancel... or finishes on its own.
        }
    }
}

void TaskGroup::wait_all(bool* cancelled, std::string* msg) {
    detail::TaskBase* self = detail::current_task_checked("af::TaskGroup::join");
    joiner_ = self;
    // The joining task awaits the members (the await graph): it is suspended until they end.
    for (detail::ListNode* n = members_.first(); n != members_.end(); n = n->next)
        static_cast<Member::Link*>(n)->m->waiter = self;
    while (active_ > 0) {
        try {
            detail::throw_if_cancelled(self);
            detail::suspend(self, "TaskGroup");
            detail::throw_if_cancelled(self);
        } catch (const CancelledError& e) {
            // The joining task is cancelled: the members are, and we still wait for them.
            *cancelled = true;
            *msg = e.message();
            if (!aborting_) abort();
        }
    }
    joiner_ = nullptr;
}

void TaskGroup::join() {
    if (joined_) throw RuntimeError("asyncfiber: TaskGroup::join called twice");
    bool cancelled = false;
    std::string msg;
    wait_all(&cancelled, &msg);
    joined_ = true;
    if (!errors_.empty()) {
        std::vector<std::exception_ptr> errors;
        errors.swap(errors_);
        throw TaskGroupError(std::move(errors));
    }
    if (cancelled) throw CancelledError(msg);
}

}  // namespace asyncfiber

// af::TaskGroup and af::task_group (asyncio.TaskGroup): members are tracked with
// done-listeners that the group owns; the first failure cancels the other members (and, in
// af::task_group, the body); join(), the end of af::task_group's body and the destructor
// wait until no member is left.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/suspend.hpp>
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

TaskGroup::TaskGroup(Scoped)
    : owner_(detail::current_task_checked("af::task_group")), scoped_(true) {}

TaskGroup::~TaskGroup() {
    if (!joined_ && active_ > 0) {
        abort();
        Cancellation cancelled, from_outside;
        wait_all(cancelled, from_outside);
        if (cancelled.seen) {
            // The wait could not be interrupted; the cancellation is not lost but delivered at
            // the task's next suspension point.
            if (detail::TaskBase* self = detail::current_task_or_null()) {
                self->must_cancel = true;
                self->set_cancel_msg(cancelled.msg);
            }
        }
    }
    if (!joined_ && !errors_.empty()) {
        if (detail::LoopImpl* L = detail::current_loop())
            for (auto& e : errors_)
                L->report(ExceptionContext{
                    "a task of a TaskGroup destroyed without join() failed", e, {}});
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
    members_.push_back(&m->link);
    ++active_;
    // An eager member (TaskOptions::eager) may have ended inside spawn already: counted and
    // handled at once, as asyncio's TaskGroup.create_task does for a task already done.
    if (t->is_done())
        on_member_done(m, t);
    else
        t->listeners.push_back(m);
}

void TaskGroup::on_member_done(Member* m, detail::TaskBase* t) noexcept {
    m->link.unlink();
    delete m;
    --active_;
    if (t->outcome == detail::TaskOutcome::error) {
        t->retrieved = true;
        errors_.push_back(t->error);
        if (!aborting_ && !parent_cancel_requested_) {
            abort();
            if (scoped_) {
                // Interrupt whatever the body waits on now; end_scope takes this request
                // back, so that it does not reach the code after the group.
                parent_cancel_requested_ = true;
                try {
                    detail::cancel_task(owner_, std::string());
                } catch (...) {
                    // Only allocation can fail; the body still ends when it ends, and the
                    // failure is thrown then.
                }
            }
        }
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

void TaskGroup::wait_all(Cancellation& any, Cancellation& from_outside) {
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
            // The waiting task is cancelled: the members are, and we still wait for them.
            any.seen = true;
            any.msg = e.message();
            if (!aborting_) {
                // Not the group's own doing: the cancellation came from outside.
                from_outside = any;
                abort();
            }
        }
    }
    joiner_ = nullptr;
}

void TaskGroup::join() {
    if (scoped_)
        throw RuntimeError(
            "asyncfiber: the group of af::task_group is joined when its body returns");
    if (joined_) throw RuntimeError("asyncfiber: TaskGroup::join called twice");
    Cancellation cancelled, from_outside;
    wait_all(cancelled, from_outside);
    joined_ = true;
    if (!errors_.empty()) {
        std::vector<std::exception_ptr> errors;
        errors.swap(errors_);
        throw TaskGroupError(std::move(errors));
    }
    if (cancelled.seen) throw CancelledError(cancelled.msg);
}

// asyncio's TaskGroup.__aexit__, step by step.
void TaskGroup::end_scope(std::exception_ptr body_error) {
    Cancellation propagate;  // a CancelledError to throw unless something failed
    bool body_failed = false;
    if (body_error) {
        try {
            std::rethrow_exception(body_error);
        } catch (const CancelledError& e) {
            propagate.seen = true;
            propagate.msg = e.message();
        } catch (...) {
            body_failed = true;
        }
        if (!aborting_) abort();  // the body unwinds: so do the members
    }
    Cancellation pending, from_outside;
    wait_all(pending, from_outside);
    if (from_outside.seen) propagate = from_outside;
    joined_ = true;

    if (parent_cancel_requested_) {
        // The body's cancellation came from the group: take it back. With no request left it
        // is not propagated; one that is left is not ours and goes on.
        if (detail::uncancel_task(owner_) == 0)
            propagate = Cancellation();
        else if (!propagate.seen)
            propagate = pending;
    }

    std::vector<std::exception_ptr> errors;
    errors.swap(errors_);
    if (propagate.seen && errors.empty()) throw CancelledError(propagate.msg);
    if (body_failed) errors.push_back(body_error);
    if (!errors.empty()) {
        // A cancellation of the task from outside stays pending (cancelling() unchanged) and
        // is thrown at its next suspension point, after the TaskGroupError is handled.
        if (owner_->cancel_requests > 0) {
            detail::uncancel_task(owner_);
            detail::cancel_task(owner_, propagate.msg);
        }
        throw TaskGroupError(std::move(errors));
    }
}

}  // namespace asyncfiber

// The executor of af::use_await's completion handlers: the loop's io_context's, holding a
// share in that io_context's life.
//
// An operation of another io_context completes on that io_context's thread: Asio posts the
// handler to the loop, then tells the loop's io_context that the operation's work is over
// (on_work_finished). In between, the loop's thread may run the handler, resume the task,
// finish, and end the loop; with a plain io_context executor the loop's io_context would be
// destroyed under that last call. The share keeps it alive until the last handler's
// executor is gone (when no other thread holds one, that is when the loop ends, as before).
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>
#include <utility>

namespace asyncfiber {
namespace detail {

class LoopExecutor {
public:
    explicit LoopExecutor(std::shared_ptr<boost::asio::io_context> io) noexcept
        : io_(std::move(io)) {}

    boost::asio::io_context& context() const noexcept { return *io_; }
    void on_work_started() const noexcept { io_->get_executor().on_work_started(); }
    void on_work_finished() const noexcept { io_->get_executor().on_work_finished(); }
    template <class F, class A>
    void dispatch(F&& f, const A& a) const {
        io_->get_executor().dispatch(std::forward<F>(f), a);
    }
    template <class F, class A>
    void post(F&& f, const A& a) const {
        io_->get_executor().post(std::forward<F>(f), a);
    }
    template <class F, class A>
    void defer(F&& f, const A& a) const {
        io_->get_executor().defer(std::forward<F>(f), a);
    }
    friend bool operator==(const LoopExecutor& a, const LoopExecutor& b) noexcept {
        return a.io_ == b.io_;
    }
    friend bool operator!=(const LoopExecutor& a, const LoopExecutor& b) noexcept {
        return a.io_ != b.io_;
    }

private:
    std::shared_ptr<boost::asio::io_context> io_;
};

/// The running loop's (on its thread, inside a task).
LoopExecutor current_loop_executor();

}  // namespace detail
}  // namespace asyncfiber

// Internal: the name a task is shown by, the given one or asyncio's default "Task-<id>",
// from one rule for every report: af::Task::name(), the exception handler's context, the task
// dump and the stack overflow and watchdog reports, of which the last two are written inside
// signal handlers, so the name is formatted without allocating.
#pragma once

#include "text_out.hpp"

#include <asyncfiber/detail/task_state.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace asyncfiber {
namespace detail {

class TaskName {
public:
    /// `given`: the task's own name (`len` bytes, may be 0). Async-signal-safe.
    TaskName(std::uint64_t id, const char* given, std::size_t len) noexcept
        : data_(given), size_(len) {
        if (len) return;
        static constexpr char kPrefix[] = "Task-";
        size_ = sizeof kPrefix - 1;
        for (std::size_t i = 0; i < size_; ++i) buf_[i] = kPrefix[i];
        size_ += put_decimal(buf_ + size_, id);
        data_ = buf_;
    }
    explicit TaskName(const TaskBase& t) noexcept
        : TaskName(t.id, t.given_name().data(), t.given_name().size()) {}
    TaskName(const TaskName&) = delete;  // data_ may point into buf_
    TaskName& operator=(const TaskName&) = delete;

    const char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::string str() const { return std::string(data_, size_); }

private:
    char buf_[sizeof "Task-" + kMaxDecimalDigits];
    const char* data_;
    std::size_t size_;
};

}  // namespace detail
}  // namespace asyncfiber

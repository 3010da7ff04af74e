// The errors' out-of-line members, and describing an exception in one line for the loop's
// reports and TaskGroupError::what().
#include <asyncfiber/errors.hpp>

#include <asyncfiber/detail/callback.hpp>

#include <asyncfiber/detail/atomic_count.hpp>

#include <cstdlib>
#include <cxxabi.h>
#include <memory>
#include <typeinfo>

namespace asyncfiber {
namespace detail {

namespace {
// The type of the exception being handled, demangled ("int", "MyError").
std::string current_exception_type() {
    const std::type_info* t = abi::__cxa_current_exception_type();
    if (!t) return "unknown";
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(t->name(), nullptr, nullptr, &status), std::free);
    return status == 0 && name ? name.get() : t->name();
}
}  // namespace

std::string describe_exception(const std::exception_ptr& e) {
    if (!e) return "no exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (const CancelledError& x) {
        return std::string("CancelledError: ") + x.what();
    } catch (...) {
        return "an exception of type " + current_exception_type();
    }
}

void throw_empty_callback() { throw InvalidStateError("asyncfiber: call of an empty callback"); }

}  // namespace detail

IncompleteReadError::IncompleteReadError(std::string partial, std::size_t expected)
    : Error("asyncfiber: " + std::to_string(partial.size()) + " bytes read on a total of " +
            std::to_string(expected) + " expected bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

struct TaskGroupError::Errors {
    detail::AtomicCount refs;
    std::vector<std::exception_ptr> list;
};

namespace {
std::string task_group_message(const std::vector<std::exception_ptr>& errors) {
    std::string m = "asyncfiber: unhandled errors in a TaskGroup (" +
                    std::to_string(errors.size()) +
                    (errors.size() == 1 ? " sub-exception)" : " sub-exceptions)");
    if (!errors.empty()) m += ", the first: " + detail::describe_exception(errors.front());
    return m;
}
}  // namespace

TaskGroupError::TaskGroupError(std::vector<std::exception_ptr> errors)
    : Error(task_group_message(errors)), errors_(new Errors{{}, std::move(errors)}) {}

TaskGroupError::TaskGroupError(const TaskGroupError& other) noexcept
    : Error(other), errors_(other.errors_) {
    errors_->refs.add();
}

TaskGroupError& TaskGroupError::operator=(const TaskGroupError& other) noexcept {
    other.errors_->refs.add();
    if (errors_->refs.drop()) delete errors_;
    Error::operator=(other);
    errors_ = other.errors_;
    return *this;
}

TaskGroupError::~TaskGroupError() {
    if (errors_->refs.drop()) delete errors_;
}

const std::vector<std::exception_ptr>& TaskGroupError::exceptions() const noexcept {
    return errors_->list;
}

}  // namespace asyncfiber

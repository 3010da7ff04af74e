// Describing an exception in one line, for the loop's reports and TaskGroupError::what().
#include <asyncfiber/errors.hpp>

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

}  // namespace detail
}  // namespace asyncfiber

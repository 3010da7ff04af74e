// detail::LoopAffinity (declared in detail/loop_affinity.hpp): every primitive of sync.hpp and
// af::Queue belongs to the loop that first uses it, and refuses the others.
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/loop_affinity.hpp>

#include <string>

namespace asyncfiber {
namespace detail {

void LoopAffinity::check(const char* what) { check(current_loop(), what); }

void LoopAffinity::bind(const void* L, const char* what) {
    if (!L) throw_outside_running_loop(what);
    if (!loop_)
        loop_ = L;
    else if (loop_ != L)
        throw RuntimeError(std::string("asyncfiber: ") + what +
                           " is bound to another loop (primitives are not thread-safe)");
}

}  // namespace detail
}  // namespace asyncfiber

// asyncfiber/detail/sync_inl.hpp - the definitions behind asyncfiber/sync.hpp: the member
// templates of its primitives longer than a line (the primitives themselves are in lib/sync/).
#pragma once

#include <asyncfiber/sync.hpp>

namespace asyncfiber {

template <class Pred>
auto Condition::wait_for(Pred pred) -> decltype(pred()) {
    auto r = pred();
    while (!r) {
        wait();
        r = pred();
    }
    return r;
}

}  // namespace asyncfiber

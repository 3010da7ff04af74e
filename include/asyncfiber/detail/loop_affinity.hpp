// Internal: detail::LoopAffinity, which binds a loop-owned primitive (sync.hpp's, the queues
// of queue.hpp) to the loop that first uses it and refuses any other. Defined in
// lib/sync/loop_affinity.cpp.
#pragma once

namespace asyncfiber {
namespace detail {

/// Binds a primitive to the loop that first uses it and refuses any other (RuntimeError).
class LoopAffinity {
public:
    void check(const char* what);
    /// The same, for a caller that already knows the loop it runs on (a task's loop): the
    /// common case is one comparison.
    void check(const void* running_loop, const char* what) {
        if (running_loop != loop_) bind(running_loop, what);
    }

private:
    void bind(const void* running_loop, const char* what);
    const void* loop_ = nullptr;
};

}  // namespace detail
}  // namespace asyncfiber

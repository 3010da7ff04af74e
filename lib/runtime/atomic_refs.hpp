// Internal: the reference count of an object that the public headers hold through an
// IntrusivePtr but only declare (a context, a stream's handle, a server's or a process's
// share): atomic, because a copy of the handle may end on another thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace asyncfiber {
namespace detail {

class AtomicRefs {
public:
    void add() noexcept { n_.fetch_add(1, std::memory_order_relaxed); }
    /// Drops one reference; true if it was the last (the owner deletes the object).
    bool drop() noexcept { return n_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

private:
    std::atomic<std::uint32_t> n_{1};  // a new object's one reference
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: the one atomic count of the library: the reference count of an object whose
// handles may be copied and dropped on different threads (a Future's shared state, a Timeout,
// the shares that the public handles hold of a context, a stream, a server or a process), and
// the count of a Future's completers.
//
// A plain field changed with the compiler's atomic built-ins (GCC and Clang), so that the
// public headers that hold one need no <atomic> (docs/performance.md, "Header weight"). An
// increment needs no ordering; the decrement that reaches zero orders every earlier use of
// the object before its owner destroys it.
#pragma once

#include <cstdint>

namespace asyncfiber {
namespace detail {

class AtomicCount {
public:
    /// A new object's count: its first reference.
    AtomicCount() noexcept = default;
    /// A count that starts elsewhere (0: nothing counted yet).
    explicit AtomicCount(std::uint32_t start) noexcept : n_(start) {}
    AtomicCount(const AtomicCount&) = delete;
    AtomicCount& operator=(const AtomicCount&) = delete;

    void add() noexcept { __atomic_fetch_add(&n_, 1u, __ATOMIC_RELAXED); }
    /// Takes one away; true if that was the last (the caller then destroys what it counts).
    bool drop() noexcept { return __atomic_sub_fetch(&n_, 1u, __ATOMIC_ACQ_REL) == 0; }

private:
    std::uint32_t n_ = 1;
};

}  // namespace detail
}  // namespace asyncfiber

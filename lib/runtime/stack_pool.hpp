// Internal: where task stacks come from.
//
// Stacks are carved from slabs (one mmap of up to 64 stacks, MAP_NORESERVE) so that creating
// a stack costs no system call in the common case and a million stacks need only ~16k
// mappings. Only touched pages cost memory. Below every stack lies a guard page: a guard
// marker (Linux 6.13+, no extra mapping; a slab's markers in one system call where the kernel
// allows it) or, on older kernels, a PROT_NONE page while the process-wide budget lasts (each
// splits a mapping, and Linux allows ~65k per process). An overflow faults there and is
// reported with the task's name. Unguarded stacks rely on the stack-pointer check made at
// every suspension point. Empty slabs and cold stacks go back to the system when the loop
// idles. See docs/design.md.
//
// One pool per thread: stacks never cross threads, so nothing here locks.
#pragma once

#include <asyncfiber/detail/task_state.hpp>

#include <cstddef>
#include <memory>
#include <vector>

namespace asyncfiber {
namespace detail {

class StackPool {
public:
    /// The pool of the calling thread (created on first use, released at thread exit).
    static StackPool& for_this_thread();

    ~StackPool();

    /// A stack of at least `size` usable bytes (0: the default size), described by the
    /// StackInfo written at its top, above the usable bytes. Throws std::bad_alloc when the
    /// system has no address space left.
    StackInfo* allocate(std::size_t size);
    /// Takes a stack back; it is reused first (its pages are warm).
    void release(StackInfo* s) noexcept;
    /// Gives the memory of empty slabs and cold free stacks back to the system (called when
    /// the loop idles, see LoopImpl::give_back_memory).
    void trim() noexcept;
    /// Whether trim() would give memory back.
    bool has_spare() const noexcept;

    static std::size_t page_size() noexcept;
    /// Rounds a requested size to what allocate() would really give.
    static std::size_t round_size(std::size_t requested) noexcept;

    /// How many stacks may get a guard page, process-wide: max_map_count / 4.
    static std::size_t guard_budget() noexcept;

    struct Stats {
        std::size_t live = 0;   // stacks in use
        std::size_t free = 0;   // stacks ready for reuse
        std::size_t slabs = 0;  // mappings held
    };
    Stats stats() const noexcept;

private:
    struct Slab;
    struct SizeClass;
    SizeClass& size_class(std::size_t size);
    Slab* new_slab(SizeClass& cls);
    void free_slab(Slab* s) noexcept;
    /// Address space for a slab, from the current reservation (see kReservationBytes).
    char* map_slab(std::size_t bytes);

    std::vector<std::unique_ptr<SizeClass>> classes_;
    SizeClass* default_class_ = nullptr;
    std::size_t default_class_size_ = 0;
    std::size_t dirty_free_ = 0;
    std::size_t kept_by_trim_ = 0;  // dirty free stacks the last trim() kept (hot slabs)
    // What is left of the address space reserved for the next slabs.
    char* reserved_ = nullptr;
    std::size_t reserved_left_ = 0;
};

/// Smallest and largest usable stack.
constexpr std::size_t kMinStackSize = 16 * 1024;
constexpr std::size_t kMaxStackSize = std::size_t(1) << 30;

}  // namespace detail
}  // namespace asyncfiber

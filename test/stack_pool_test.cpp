// The stack pool's bookkeeping of spare memory, which decides when an idle loop wakes to give
// memory back (lib/runtime/stack_pool.hpp is internal; this test reaches it directly).
#include "../lib/runtime/stack_pool.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace detail = asyncfiber::detail;

namespace {
void use_and_release(detail::StackPool& pool, std::size_t size, int n) {
    std::vector<detail::StackInfo*> stacks;
    for (int i = 0; i < n; ++i) {
        detail::StackInfo* s = pool.allocate(size);
        s->top()[-1] = 1;  // dirty its top page, as a running task does
        stacks.push_back(s);
    }
    for (detail::StackInfo* s : stacks) pool.release(s);
}
}  // namespace

// The tests share this thread's pool (no loop runs here), so each starts from a trimmed pool.
TEST(StackPool, SpareUntilTrimmedThenNotEvenWithHotSlabsOfTwoSizes) {
    detail::StackPool& pool = detail::StackPool::for_this_thread();
    use_and_release(pool, 0, 200);          // the default size: several slabs
    use_and_release(pool, 64 * 1024, 200);  // a second size class
    EXPECT_TRUE(pool.has_spare());
    pool.trim();
    // Each class keeps its warmest slab, more than 64 stacks in all: that is not spare, or an
    // idle loop would wake every second to trim nothing.
    EXPECT_FALSE(pool.has_spare());
    pool.trim();
    EXPECT_FALSE(pool.has_spare());
    EXPECT_EQ(pool.stats().live, 0u);
}

TEST(StackPool, NewlyFreedStacksAfterATrimAreSpareAgain) {
    detail::StackPool& pool = detail::StackPool::for_this_thread();
    use_and_release(pool, 0, 200);
    pool.trim();
    EXPECT_FALSE(pool.has_spare());
    use_and_release(pool, 0, 300);  // a new burst, larger than what the trim kept
    EXPECT_TRUE(pool.has_spare());
    pool.trim();
    EXPECT_FALSE(pool.has_spare());
}

TEST(StackPool, StacksAreReusedWarmestFirst) {
    detail::StackPool& pool = detail::StackPool::for_this_thread();
    detail::StackInfo* a = pool.allocate(0);
    char* a_limit = a->limit;
    pool.release(a);
    detail::StackInfo* b = pool.allocate(0);
    EXPECT_EQ(b->limit, a_limit);
    EXPECT_GE(b->size, detail::StackPool::round_size(0));
    pool.release(b);
}

namespace {
// Whether `page` faults on access: a guard marker (reads through /proc/self/mem fail) or a
// PROT_NONE page (the older kernels' guard; /proc/self/maps shows it without permissions).
bool is_guard_page(const char* page) {
    static const int mem = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    char c;
    auto addr = reinterpret_cast<std::uintptr_t>(page);
    if (::pread(mem, &c, 1, static_cast<off_t>(addr)) < 0) return errno == EIO;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        std::uintptr_t lo = 0, hi = 0;
        char perms[5] = {};
        if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi, perms) == 3 &&
            lo <= addr && addr < hi)
            return std::string(perms).compare(0, 3, "---") == 0;
    }
    return false;
}
}  // namespace

// Slabs get their guards in one call where the kernel allows it: every stack of every slab
// must have one right below its lowest usable byte, and its own pages must not be guards.
TEST(StackPool, EveryStackOfEverySlabHasItsGuardPage) {
    detail::StackPool& pool = detail::StackPool::for_this_thread();
    const std::size_t page = detail::StackPool::page_size();
    std::vector<detail::StackInfo*> stacks;
    for (int i = 0; i < 200; ++i) stacks.push_back(pool.allocate(0));  // several slabs
    for (detail::StackInfo* s : stacks) {
        ASSERT_TRUE(s->guarded);  // 200 stacks are within any guard budget
        EXPECT_TRUE(is_guard_page(s->limit - page)) << static_cast<void*>(s->limit);
        EXPECT_FALSE(is_guard_page(s->limit)) << static_cast<void*>(s->limit);
        EXPECT_FALSE(is_guard_page(s->top() - 1)) << static_cast<void*>(s->limit);
    }
    for (detail::StackInfo* s : stacks) pool.release(s);
    pool.trim();
}

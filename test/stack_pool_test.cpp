// The stack pool's bookkeeping of spare memory, which decides when an idle loop wakes to give
// memory back (lib/stack_pool.hpp is internal; this test reaches it directly).
#include "../lib/stack_pool.hpp"

#include <gtest/gtest.h>

#include <vector>

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

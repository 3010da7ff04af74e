// Task blocks: where TaskImpl objects live (TaskBase's operator new and delete).
//
// A burst of tasks allocates and frees its blocks in bulk (a million blocks in skynet), which
// glibc's small per-thread cache (7 blocks a size) cannot absorb: every free then goes through
// the arena's bins. This per-thread cache keeps freed blocks by size (16-byte classes up to
// 504 bytes) and hands them out again first. It sits on top of malloc: a block freed on
// another thread simply joins that thread's cache, and everything cached goes back to malloc
// when the thread ends, or when the loop idles (see trim_task_blocks). Under AddressSanitizer
// it steps aside so that use-after-free of a task block is still reported.
#include "task_blocks.hpp"

#include "sanitizers.hpp"

#include <asyncfiber/detail/task_state.hpp>

#include <new>

namespace asyncfiber {
namespace detail {

namespace {

// Classes match glibc's chunks (16-byte steps, 8 bytes of header): class c holds blocks of up
// to 16 c + 8 bytes, which malloc serves from a chunk of 16 (c + 1) bytes with nothing wasted.
constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxBlock = 504;
constexpr std::size_t kClasses = (kMaxBlock + 7) / kGranule + 1;
#ifndef ASYNCFIBER_ASAN  // (the ASan build uses plain new/delete: these would be unused)
// Cached bytes at most, per thread; what an idle loop keeps (trim_task_blocks).
constexpr std::size_t kMaxCached = std::size_t(256) << 20;
constexpr std::size_t kKeptWhenIdle = std::size_t(1) << 20;
#endif

constexpr std::size_t class_bytes(std::size_t c) noexcept { return kGranule * c + 8; }

struct FreeBlock {
    FreeBlock* next;
};

struct BlockCache {
    FreeBlock* heads[kClasses] = {};
    std::size_t bytes = 0;

    ~BlockCache() { release_down_to(0); }

    void release_down_to(std::size_t keep) noexcept {
        for (std::size_t c = kClasses; c-- > 0 && bytes > keep;) {
            while (FreeBlock* b = heads[c]) {
                if (bytes <= keep) break;
                heads[c] = b->next;
                bytes -= class_bytes(c);
                ::operator delete(static_cast<void*>(b));
            }
        }
    }
};

thread_local BlockCache t_cache;

#ifndef ASYNCFIBER_ASAN
inline std::size_t class_of(std::size_t n) noexcept { return (n + 7) / kGranule; }
#endif

}  // namespace

#ifdef ASYNCFIBER_ASAN
void* allocate_task_block(std::size_t n) { return ::operator new(n); }
void free_task_block(void* p, std::size_t) noexcept { ::operator delete(p); }
void trim_task_blocks() noexcept {}
bool task_blocks_have_spare() noexcept { return false; }
#else
void* allocate_task_block(std::size_t n) {
    if (n > kMaxBlock) return ::operator new(n);
    std::size_t c = class_of(n);
    BlockCache& cache = t_cache;
    if (FreeBlock* b = cache.heads[c]) {
        cache.heads[c] = b->next;
        cache.bytes -= class_bytes(c);
        return b;
    }
    return ::operator new(class_bytes(c));
}

void free_task_block(void* p, std::size_t n) noexcept {
    if (n <= kMaxBlock) {
        std::size_t c = class_of(n);
        BlockCache& cache = t_cache;
        if (cache.bytes + class_bytes(c) <= kMaxCached) {
            auto* b = static_cast<FreeBlock*>(p);
            b->next = cache.heads[c];
            cache.heads[c] = b;
            cache.bytes += class_bytes(c);
            return;
        }
    }
    ::operator delete(p);
}

void trim_task_blocks() noexcept { t_cache.release_down_to(kKeptWhenIdle); }
bool task_blocks_have_spare() noexcept { return t_cache.bytes > kKeptWhenIdle; }
#endif

void* TaskBase::operator new(std::size_t n) { return allocate_task_block(n); }
void TaskBase::operator delete(void* p, std::size_t n) noexcept { free_task_block(p, n); }

}  // namespace detail
}  // namespace asyncfiber

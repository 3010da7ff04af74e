// Task blocks: where TaskImpl objects live (TaskBase's operator new and delete).
//
// A burst of tasks allocates and frees its blocks in bulk (a million blocks in skynet), which
// glibc's small per-thread cache (7 blocks a size) cannot absorb: every free then goes through
// the arena's bins. This per-thread cache keeps freed blocks by size (16-byte classes up to
// 504 bytes) and hands them out again first. A block freed on another thread simply joins
// that thread's cache.
//
// New blocks are carved from regions of 256 KiB mapped for the purpose, not taken from malloc
// one at a time: on any thread but the main one, glibc grows its arena one page at a time,
// with an mprotect per page (it applies M_TOP_PAD to the main arena only), and each mprotect
// takes the address space's lock for writing, against the page faults of every other thread:
// two loops spawning a million tasks each made 100 000 of them. Each block is preceded by the
// 8 bytes that name its region (as a malloc chunk's header); a region goes back to the system
// when all its blocks came back to it. Cached blocks come back to their regions when the
// loop idles (trim_task_blocks) or the thread ends; a few empty regions stay for the next
// burst. Under AddressSanitizer it steps aside so that use-after-free of a task block is
// still reported.
#include "task_blocks.hpp"

#include "sanitizers.hpp"

#include <asyncfiber/detail/task_state.hpp>

#include <atomic>
#include <new>
#include <sys/mman.h>

namespace asyncfiber {
namespace detail {

namespace {

#ifndef ASYNCFIBER_ASAN  // (the ASan build uses plain new/delete)
// Classes match glibc's chunks (16-byte steps, 8 bytes of header): class c holds blocks of up
// to 16 c + 8 bytes, in a slot of 16 (c + 1) bytes with nothing wasted.
constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxBlock = 504;
constexpr std::size_t kClasses = (kMaxBlock + 7) / kGranule + 1;
// Cached bytes at most, per thread.
constexpr std::size_t kMaxCached = std::size_t(256) << 20;
constexpr std::size_t kRegionBytes = std::size_t(256) << 10;
// Empty regions a thread keeps mapped for its next burst (1 MiB).
constexpr std::size_t kSpareRegions = 4;
// A region's count of blocks not yet back starts this high while a thread carves from it, so
// that a block coming back before the carver has counted it cannot bring the count to zero.
constexpr std::size_t kCarving = std::size_t(1) << 40;

constexpr std::size_t class_bytes(std::size_t c) noexcept { return kGranule * c + 8; }

struct FreeBlock {
    FreeBlock* next;
};

inline std::size_t class_of(std::size_t n) noexcept { return (n + 7) / kGranule; }

/// The head of a region; its slots follow, each an 8-byte header naming the region and then
/// the block, which is therefore 16-byte aligned.
struct Region {
    std::atomic<std::size_t> outstanding;
    Region* next_spare;
};

inline Region*& region_of(void* block) noexcept {
    return *reinterpret_cast<Region**>(static_cast<char*>(block) - 8);
}

struct BlockCache;
void region_returned(Region* r, std::size_t n) noexcept;

struct BlockCache {
    FreeBlock* heads[kClasses] = {};
    std::size_t bytes = 0;
    // The region blocks are carved from, and where its next slot begins.
    Region* carving = nullptr;
    char* next = nullptr;
    char* end = nullptr;
    std::size_t carved = 0;
    Region* spares = nullptr;
    std::size_t spare_count = 0;

    ~BlockCache() {
        return_cached();
        stop_carving();
        while (Region* r = spares) {
            spares = r->next_spare;
            ::munmap(r, kRegionBytes);
        }
        // Blocks freed by later destructors of this thread go back at once; an empty region
        // then goes to the system, not to this dying cache.
        spare_count = kSpareRegions;
    }

    void* carve(std::size_t c) {
        const std::size_t slot = kGranule * (c + 1);
        if (next == nullptr || static_cast<std::size_t>(end - next) < slot) start_carving();
        char* header = next;
        next += slot;
        ++carved;
        Region** name = reinterpret_cast<Region**>(header);
        *name = carving;
        return header + 8;
    }

    void start_carving() {
        stop_carving();
        Region* r = spares;
        if (r) {
            spares = r->next_spare;
            --spare_count;
        } else {
            void* m = ::mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) throw std::bad_alloc();
            r = static_cast<Region*>(m);
        }
        r->outstanding.store(kCarving, std::memory_order_relaxed);
        r->next_spare = nullptr;
        carving = r;
        // The first header sits 8 bytes past the region's head so that the first block is
        // 16-byte aligned (the region is page-aligned), and every slot keeps that alignment.
        next = reinterpret_cast<char*>(r) + sizeof(Region) + 8;
        end = reinterpret_cast<char*>(r) + kRegionBytes;
        carved = 0;
    }

    void stop_carving() noexcept {
        if (!carving) return;
        Region* r = carving;
        carving = nullptr;
        next = end = nullptr;
        region_returned(r, kCarving - carved);
    }

    void return_cached() noexcept {
        for (std::size_t c = 0; c < kClasses; ++c) {
            while (FreeBlock* b = heads[c]) {
                heads[c] = b->next;
                region_returned(region_of(b), 1);
            }
        }
        bytes = 0;
    }

    /// An empty region: kept for the next burst if there is room, else unmapped.
    void region_empty(Region* r) noexcept {
        if (spare_count < kSpareRegions) {
            r->next_spare = spares;
            spares = r;
            ++spare_count;
        } else {
            ::munmap(r, kRegionBytes);
        }
    }
};

static_assert(sizeof(Region) == 16, "the first block of a region must be 16-byte aligned");

thread_local BlockCache t_cache;

void region_returned(Region* r, std::size_t n) noexcept {
    if (r->outstanding.fetch_sub(n, std::memory_order_acq_rel) != n) return;
    t_cache.region_empty(r);
}
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
    return cache.carve(c);
}

void free_task_block(void* p, std::size_t n) noexcept {
    if (n > kMaxBlock) {
        ::operator delete(p);
        return;
    }
    std::size_t c = class_of(n);
    BlockCache& cache = t_cache;
    if (cache.bytes + class_bytes(c) <= kMaxCached) {
        auto* b = static_cast<FreeBlock*>(p);
        b->next = cache.heads[c];
        cache.heads[c] = b;
        cache.bytes += class_bytes(c);
        return;
    }
    region_returned(region_of(p), 1);
}

void trim_task_blocks() noexcept { t_cache.return_cached(); }
bool task_blocks_have_spare() noexcept { return t_cache.bytes != 0; }
#endif

void* TaskBase::operator new(std::size_t n) { return allocate_task_block(n); }
void TaskBase::operator delete(void* p, std::size_t n) noexcept { free_task_block(p, n); }

}  // namespace detail
}  // namespace asyncfiber

#include "stack_pool.hpp"

#include "overflow_guard.hpp"

#include <asyncfiber/detail/assert.hpp>
#include <asyncfiber/task.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <new>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef ASYNCFIBER_VALGRIND
// Valgrind must know where each fiber stack lies, or it takes every switch for a huge stack
// pointer move and reports accesses to the new stack as invalid.
#include <valgrind/valgrind.h>
#endif

namespace asyncfiber {
namespace detail {

namespace {
std::atomic<std::size_t> g_default_stack_size{256 * 1024};
std::atomic<std::size_t> g_guard_budget{0};  // 0: not read yet
std::atomic<std::size_t> g_guarded_in_use{0};

// A slab holds this much address space at most (fewer, larger stacks for big sizes).
constexpr std::size_t kSlabBytes = 16u << 20;
constexpr std::uint32_t kMaxSlabStacks = 64;
// Slabs take their address space from reservations of this size (64 default slabs), so that a
// burst maps once per 64 slabs instead of once per slab: every mmap takes the address space's
// lock for writing, against the page faults of the process's other threads, which made two
// loops spawning stacks at once scale 1.5x instead of 2x (docs/multicore.md). Address space
// only: nothing is committed until a stack touches it.
constexpr std::size_t kReservationBytes = std::size_t(1) << 30;
// Free stacks whose pages stay resident even when the loop idles.
constexpr std::size_t kHotFreeStacks = 64;

/// Fresh address space for stacks (committed only as they touch it), or null if the system
/// refuses it.
char* map_stack_space(std::size_t bytes) noexcept {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    // Stacks touch one or two pages each: a transparent huge page would make every stack
    // cost 2 MiB (and its zeroing) instead of 4 KiB.
    ::madvise(p, bytes, MADV_NOHUGEPAGE);
    return static_cast<char*>(p);
}

// Linux 6.13+: guard markers (madvise MADV_GUARD_INSTALL) make a page fault like PROT_NONE
// without splitting the mapping, so every stack can have one. Older kernels say EINVAL.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
std::atomic<int> g_guard_markers{-1};  // -1: not tried yet, 0: unsupported, 1: supported

bool install_guard_marker(char* page, std::size_t size) noexcept {
    if (g_guard_markers.load(std::memory_order_relaxed) == 0) return false;
    if (::madvise(page, size, MADV_GUARD_INSTALL) == 0) {
        g_guard_markers.store(1, std::memory_order_relaxed);
        return true;
    }
    if (errno == EINVAL) g_guard_markers.store(0, std::memory_order_relaxed);
    return false;
}

// process_madvise() on the process itself (the PIDFD_SELF sentinel of recent kernels, so no
// descriptor to hold) takes a whole slab's guard pages in one system call instead of one call
// per stack, which makes a burst that creates slabs cheaper (docs/performance.md, "Where the
// time goes"). Valgrind does not know the call, so its builds keep one madvise per stack.
#if defined(SYS_process_madvise) && !defined(ASYNCFIBER_VALGRIND)
#define ASYNCFIBER_BATCHED_GUARDS 1
constexpr int kPidfdSelf = -10000;
std::atomic<int> g_batched_madvise{-1};  // -1: not tried yet, 0: refused, 1: works

// Installs guard markers on as many of the pages as one call will (each page-sized iovec is
// a page); returns how many, from the first on.
std::uint32_t install_guard_markers_batched(const iovec* pages, std::uint32_t count) noexcept {
    if (g_batched_madvise.load(std::memory_order_relaxed) == 0 ||
        g_guard_markers.load(std::memory_order_relaxed) == 0)
        return 0;
    long done = ::syscall(SYS_process_madvise, kPidfdSelf, pages, static_cast<unsigned long>(count),
                          MADV_GUARD_INSTALL, 0u);
    if (done < 0) {
        // Too old a kernel for PIDFD_SELF or for guards in process_madvise, or a sandbox that
        // forbids the call: one madvise per stack it is (that one tells whether guard
        // markers exist at all).
        g_batched_madvise.store(0, std::memory_order_relaxed);
        return 0;
    }
    g_batched_madvise.store(1, std::memory_order_relaxed);
    g_guard_markers.store(1, std::memory_order_relaxed);
    return static_cast<std::uint32_t>(static_cast<std::size_t>(done) / pages[0].iov_len);
}
#endif

// Guard markers on `count` pages `stride` bytes apart from `first`: true when every one got
// its marker.
bool install_guard_markers(char* first, std::size_t stride, std::uint32_t count) noexcept {
    const std::size_t page = StackPool::page_size();
    std::uint32_t done = 0;
#ifdef ASYNCFIBER_BATCHED_GUARDS
    iovec pages[kMaxSlabStacks];
    const std::uint32_t batch = std::min(count, kMaxSlabStacks);
    for (std::uint32_t i = 0; i < batch; ++i) pages[i] = iovec{first + i * stride, page};
    done = install_guard_markers_batched(pages, batch);
#endif
    for (; done < count; ++done)
        if (!install_guard_marker(first + done * stride, page)) return false;
    return true;
}

std::size_t read_guard_budget() {
    std::size_t max_maps = 65530;
    std::ifstream f("/proc/sys/vm/max_map_count");
    if (f) f >> max_maps;
    return std::max<std::size_t>(max_maps / 4, 64);
}

}  // namespace

struct StackPool::Slab {
    char* base = nullptr;
    std::size_t bytes = 0;
    SizeClass* cls = nullptr;
    std::uint32_t count = 0;
    std::uint32_t live = 0;
    bool guarded = false;                   // every stack has a guard page below it
    bool budgeted = false;                  // the guards are PROT_NONE pages counted in the budget
    std::vector<std::uint32_t> free_slots;  // LIFO: the last freed is the warmest
    std::vector<bool> dirty;                // per slot: pages may be resident
#ifdef ASYNCFIBER_VALGRIND
    std::vector<unsigned> vg_ids;  // per slot in use: Valgrind's stack id
#endif
};

struct StackPool::SizeClass {
    std::size_t size = 0;    // usable bytes
    std::size_t stride = 0;  // size + one guard page
    std::uint32_t per_slab = 0;
    std::vector<Slab*> slabs;      // every slab of this class
    std::vector<Slab*> with_free;  // slabs that have a free slot (may hold stale entries)
};

std::size_t StackPool::page_size() noexcept {
    static const std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return p;
}

std::size_t StackPool::round_size(std::size_t requested) noexcept {
    if (requested == 0) requested = g_default_stack_size.load(std::memory_order_relaxed);
    std::size_t p = page_size();
    requested = std::max(requested, kMinStackSize);
    requested = std::min<std::size_t>(requested, kMaxStackSize);
    return (requested + p - 1) / p * p;
}


std::size_t StackPool::guard_budget() noexcept {
    std::size_t b = g_guard_budget.load(std::memory_order_relaxed);
    if (b == 0) {
        b = read_guard_budget();
        g_guard_budget = b;
    }
    return b;
}

StackPool& StackPool::for_this_thread() {
    static thread_local std::unique_ptr<StackPool> pool(new StackPool);
    return *pool;
}

StackPool::~StackPool() {
    for (auto& c : classes_)
        for (Slab* s : c->slabs) free_slab(s);
    if (reserved_left_) ::munmap(reserved_, reserved_left_);
}

char* StackPool::map_slab(std::size_t bytes) {
    if (bytes > kReservationBytes / 4) {  // a few huge stacks: a mapping of their own
        if (char* p = map_stack_space(bytes)) return p;
        throw std::bad_alloc();
    }
    if (reserved_left_ < bytes) {
        // Under strict overcommit (vm.overcommit_memory=2) MAP_NORESERVE is ignored and a
        // reservation counts in full: take only the slab then.
        std::size_t got = kReservationBytes;
        char* p = map_stack_space(got);
        if (!p) {
            got = bytes;
            p = map_stack_space(got);
        }
        if (!p) throw std::bad_alloc();
        if (reserved_left_) ::munmap(reserved_, reserved_left_);  // too small a rest
        reserved_ = p;
        reserved_left_ = got;
    }
    // Each slab is unmapped on its own when it is freed (free_slab), as if mapped alone.
    char* p = reserved_;
    reserved_ += bytes;
    reserved_left_ -= bytes;
    return p;
}

StackPool::SizeClass& StackPool::size_class(std::size_t size) {
    if (default_class_ && size == default_class_size_) return *default_class_;
    for (auto& c : classes_)
        if (c->size == size) return *c;
    std::unique_ptr<SizeClass> c(new SizeClass);
    c->size = size;
    c->stride = size + page_size();
    c->per_slab = static_cast<std::uint32_t>(
        std::max<std::size_t>(1, std::min<std::size_t>(kMaxSlabStacks, kSlabBytes / c->stride)));
    classes_.push_back(std::move(c));
    return *classes_.back();
}

StackPool::Slab* StackPool::new_slab(SizeClass& cls) {
    std::unique_ptr<Slab> s(new Slab);
    s->cls = &cls;
    s->count = cls.per_slab;
    s->bytes = cls.stride * cls.per_slab;
    s->base = map_slab(s->bytes);
    // A guard page below every stack: a guard marker where the kernel has them (no extra
    // mapping, so no limit), else PROT_NONE while the process-wide budget lasts (each one
    // splits the mapping, see the budget).
    s->guarded = install_guard_markers(s->base, cls.stride, s->count);
    if (!s->guarded) {
        std::size_t used = g_guarded_in_use.fetch_add(s->count) + s->count;
        if (used <= guard_budget()) {
            s->guarded = true;
            for (std::uint32_t i = 0; i < s->count; ++i) {
                if (::mprotect(s->base + i * cls.stride, page_size(), PROT_NONE) != 0) {
                    s->guarded = false;  // out of mappings after all: fall back to checks
                    break;
                }
            }
        }
        if (s->guarded)
            s->budgeted = true;
        else
            g_guarded_in_use.fetch_sub(s->count);
    }
    s->free_slots.reserve(s->count);
    for (std::uint32_t i = s->count; i-- > 0;) s->free_slots.push_back(i);
    s->dirty.assign(s->count, false);
#ifdef ASYNCFIBER_VALGRIND
    s->vg_ids.assign(s->count, 0);
#endif
    cls.slabs.push_back(s.get());
    return s.release();
}

void StackPool::free_slab(Slab* s) noexcept {
    for (std::uint32_t i = 0; i < s->count; ++i)
        if (s->dirty[i]) --dirty_free_;
    ::munmap(s->base, s->bytes);
    if (s->budgeted) g_guarded_in_use.fetch_sub(s->count);
    delete s;
}

static_assert(sizeof(StackInfo) <= StackInfo::kReserved, "StackInfo must fit its bytes");

StackInfo* StackPool::allocate(std::size_t size) {
    // The default size is what almost every task asks for: its class is remembered (the
    // stored default is already rounded, so it is compared as it is).
    SizeClass* found = nullptr;
    if (size == 0 && default_class_ &&
        default_class_size_ == g_default_stack_size.load(std::memory_order_relaxed))
        found = default_class_;
    if (!found) {
        std::size_t rounded = round_size(size);
        found = &size_class(rounded);
        if (size == 0) {
            default_class_ = found;
            default_class_size_ = rounded;
        }
    }
    SizeClass& cls = *found;
    Slab* s = nullptr;
    while (!cls.with_free.empty()) {
        Slab* c = cls.with_free.back();
        if (!c->free_slots.empty()) {
            s = c;
            break;
        }
        cls.with_free.pop_back();
    }
    if (!s) {
        s = new_slab(cls);
        cls.with_free.push_back(s);
    }
    std::uint32_t slot = s->free_slots.back();
    s->free_slots.pop_back();
    if (s->dirty[slot]) {
        s->dirty[slot] = false;
        --dirty_free_;
        kept_by_trim_ = std::min(kept_by_trim_, dirty_free_);
    }
    ++s->live;
    char* limit = s->base + slot * cls.stride + (cls.stride - cls.size);  // above the guard
    // The record sits at the top of the stack; the fiber's frames start below it.
    auto* info = ::new (static_cast<void*>(limit + cls.size - StackInfo::kReserved)) StackInfo;
    info->limit = limit;
    info->size = static_cast<std::uint32_t>(cls.size);
    info->slot = s;
    info->guarded = s->guarded;
#ifdef ASYNCFIBER_VALGRIND
    s->vg_ids[slot] = VALGRIND_STACK_REGISTER(info->limit, info->top());
#endif
    return info;
}

void StackPool::release(StackInfo* st) noexcept {
    if (!st) return;
    Slab* s = static_cast<Slab*>(st->slot);
    SizeClass& cls = *s->cls;
    auto slot = static_cast<std::uint32_t>((st->limit - s->base) / cls.stride);
    ASYNCFIBER_ASSERT(
        s->live > 0 && slot < s->count &&
            static_cast<std::size_t>(st->limit - s->base) % cls.stride == cls.stride - cls.size,
        "a stack released that is not a live stack of its slab");
    ASYNCFIBER_ASSERT(
        std::find(s->free_slots.begin(), s->free_slots.end(), slot) == s->free_slots.end(),
        "a stack released twice");
#ifdef ASYNCFIBER_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_ids[slot]);
#endif
    if (s->free_slots.empty()) cls.with_free.push_back(s);
    s->free_slots.push_back(slot);
    s->dirty[slot] = true;
    ++dirty_free_;
    --s->live;
    // An empty slab stays until the loop idles (trim): unmapping it here would make the
    // tasks that finish now pay for it, and the next burst would fault its pages in again.
}

bool StackPool::has_spare() const noexcept {
    // What trim() keeps (the hot slab of each class) is not spare: without this floor an idle
    // loop with two stack sizes would wake every second to trim nothing.
    return dirty_free_ > std::max(kHotFreeStacks, kept_by_trim_);
}

void StackPool::trim() noexcept {
    if (!has_spare()) return;
    // Keep the current slab of each class (its free stacks are the warmest); unmap the other
    // empty slabs and advise the kernel that the other free stacks' pages can go.
    for (auto& c : classes_) {
        Slab* hot = c->with_free.empty() ? nullptr : c->with_free.back();
        auto empty = [hot](const Slab* s) { return s != hot && s->live == 0; };
        c->with_free.erase(std::remove_if(c->with_free.begin(), c->with_free.end(), empty),
                           c->with_free.end());
        auto keep = std::partition(c->slabs.begin(), c->slabs.end(),
                                   [&](const Slab* s) { return !empty(s); });
        for (auto it = keep; it != c->slabs.end(); ++it) free_slab(*it);
        c->slabs.erase(keep, c->slabs.end());
        for (Slab* s : c->slabs) {
            if (s == hot) continue;
            for (std::uint32_t slot : s->free_slots) {
                if (!s->dirty[slot]) continue;
                ::madvise(s->base + slot * c->stride + page_size(), c->size, MADV_DONTNEED);
                s->dirty[slot] = false;
                --dirty_free_;
            }
        }
    }
    kept_by_trim_ = dirty_free_;
}

StackPool::Stats StackPool::stats() const noexcept {
    Stats st;
    for (auto& c : classes_) {
        st.slabs += c->slabs.size();
        for (Slab* s : c->slabs) {
            st.live += s->live;
            st.free += s->free_slots.size();
        }
    }
    return st;
}

}  // namespace detail

std::size_t default_stack_size() noexcept {
    return detail::g_default_stack_size.load(std::memory_order_relaxed);
}

void set_default_stack_size(std::size_t bytes) {
    detail::g_default_stack_size = detail::StackPool::round_size(bytes);
}

}  // namespace asyncfiber

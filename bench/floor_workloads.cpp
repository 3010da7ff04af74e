// What the machine itself charges, measured in the same run as the workloads (ours only):
// the first touch of a fresh page, which sets the floor of every workload that keeps many
// tasks suspended at once (each suspended task holds at least one page of its own stack).
#include "workloads.hpp"

#include <cstddef>
#include <sys/mman.h>
#include <thread>

namespace {

// page_fault_ns: 100 000 pages touched once each, one every 260 KiB of a fresh mapping (the
// layout of task stacks), without transparent huge pages; ns per page.
constexpr std::size_t kPages = 100000, kStride = 260 * 1024;

/// A fresh mapping of kPages stack-like slots.
volatile char* map_slots() {
    void* m = ::mmap(nullptr, kPages * kStride, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    workloads::check(m != MAP_FAILED, "mmap for page_fault_ns");
    ::madvise(m, kPages * kStride, MADV_NOHUGEPAGE);
    return static_cast<volatile char*>(m);
}

void touch_slots(volatile char* p) {
    for (std::size_t i = 0; i < kPages; ++i) p[i * kStride + kStride - 64] = 1;
}

void check_and_unmap(volatile char* p) {
    long sum = 0;
    for (std::size_t i = 0; i < kPages; ++i) sum += p[i * kStride + kStride - 64];
    ::munmap(const_cast<char*>(p), kPages * kStride);
    workloads::check(sum == static_cast<long>(kPages), "page_fault_ns pages");
}

double page_fault_ns() {
    volatile char* p = map_slots();
    auto t = workloads::clk::now();
    touch_slots(p);
    double el = workloads::seconds_since(t);
    check_and_unmap(p);
    return el / static_cast<double>(kPages) * 1e9;
}

// page_fault_2threads_ns: the same on two threads of one process at once, each in a mapping
// of its own; wall-clock ns per page of the 200 000. page_fault_ns over it is how much faster
// two threads get fresh pages than one: the ceiling of the 2-loop scaling of any workload
// bound by them (skynet1M_2loops_ms, bench/scaling.sh).
double page_fault_2threads_ns() {
    volatile char* a = map_slots();
    volatile char* b = map_slots();
    auto t = workloads::clk::now();
    std::thread other([b] { touch_slots(b); });
    touch_slots(a);
    other.join();
    double el = workloads::seconds_since(t);
    check_and_unmap(a);
    check_and_unmap(b);
    return el / static_cast<double>(2 * kPages) * 1e9;
}

const workloads::Register r("page_fault_ns", page_fault_ns);
const workloads::Register r2("page_fault_2threads_ns", page_fault_2threads_ns);

}  // namespace

// What the machine itself charges, measured in the same run as the workloads (ours only):
// the first touch of a fresh page, which sets the floor of every workload that keeps many
// tasks suspended at once (each suspended task holds at least one page of its own stack).
#include "workloads.hpp"

#include <cstddef>
#include <sys/mman.h>

namespace {

// page_fault_ns: 100 000 pages touched once each, one every 260 KiB of a fresh mapping (the
// layout of task stacks), without transparent huge pages; ns per page.
double page_fault_ns() {
    const std::size_t n = 100000, stride = 260 * 1024;
    void* m = ::mmap(nullptr, n * stride, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    workloads::check(m != MAP_FAILED, "mmap for page_fault_ns");
    ::madvise(m, n * stride, MADV_NOHUGEPAGE);
    auto* p = static_cast<volatile char*>(m);
    auto t = workloads::clk::now();
    for (std::size_t i = 0; i < n; ++i) p[i * stride + stride - 64] = 1;
    double el = workloads::seconds_since(t);
    long sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += p[i * stride + stride - 64];
    ::munmap(m, n * stride);
    workloads::check(sum == static_cast<long>(n), "page_fault_ns pages");
    return el / static_cast<double>(n) * 1e9;
}

const workloads::Register r("page_fault_ns", page_fault_ns);

}  // namespace

// Internal: the loop's deadlines, a binary min-heap ordered by (deadline, arrival).
//
// The heap stores the keys next to the node pointers so that comparisons never touch the
// nodes (which live on many different task stacks); each node remembers its index so that
// a cancelled sleep or timeout removes its entry in O(log n) instead of leaving it behind.
#pragma once

#include <asyncfiber/detail/wait.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace asyncfiber {
namespace detail {

class TimerHeap {
public:
    using time_point = std::chrono::steady_clock::time_point;

    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    time_point next_deadline() const noexcept { return heap_.front().when; }

    void push(TimerNode* n, time_point when) {
        n->when = when;
        n->seq = next_seq_++;
        heap_.push_back(Entry{when, n->seq, n});
        n->heap_index = heap_.size() - 1;
        sift_up(heap_.size() - 1);
    }

    void remove(TimerNode* n) noexcept {
        std::size_t i = n->heap_index;
        if (i == TimerNode::npos) return;
        n->heap_index = TimerNode::npos;
        Entry last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;
        heap_[i] = last;
        last.node->heap_index = i;
        if (i > 0 && less(heap_[i], heap_[(i - 1) / 2]))
            sift_up(i);
        else
            sift_down(i);
    }

    /// Removes and returns the earliest node if it is due at `now`, else nullptr.
    TimerNode* pop_due(time_point now) noexcept {
        if (heap_.empty() || heap_.front().when > now) return nullptr;
        TimerNode* n = heap_.front().node;
        remove(n);
        return n;
    }

private:
    struct Entry {
        time_point when;
        std::uint64_t seq;
        TimerNode* node;
    };
    static bool less(const Entry& a, const Entry& b) noexcept {
        return a.when < b.when || (a.when == b.when && a.seq < b.seq);
    }
    void sift_up(std::size_t i) noexcept {
        Entry e = heap_[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / 2;
            if (!less(e, heap_[parent])) break;
            heap_[i] = heap_[parent];
            heap_[i].node->heap_index = i;
            i = parent;
        }
        heap_[i] = e;
        e.node->heap_index = i;
    }
    void sift_down(std::size_t i) noexcept {
        Entry e = heap_[i];
        std::size_t n = heap_.size();
        for (;;) {
            std::size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && less(heap_[c + 1], heap_[c])) ++c;
            if (!less(heap_[c], e)) break;
            heap_[i] = heap_[c];
            heap_[i].node->heap_index = i;
            i = c;
        }
        heap_[i] = e;
        e.node->heap_index = i;
    }

    std::vector<Entry> heap_;
    std::uint64_t next_seq_ = 0;
};

}  // namespace detail
}  // namespace asyncfiber

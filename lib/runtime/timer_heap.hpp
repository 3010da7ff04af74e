// Internal: the loop's deadlines, ordered by (deadline, arrival).
//
// Timers usually arrive in deadline order: the same timeout or sleep everywhere. Those go to
// a sorted run, a doubly linked list through the nodes, where adding, removing and taking the
// first cost O(1) and touch no other node. A timer earlier than the run's last goes to a
// binary min-heap that stores the keys next to the node pointers, so that comparisons never
// touch the nodes (which live on many different task stacks); each heap node remembers its
// index so that a cancelled sleep or timeout removes its entry in O(log n) instead of leaving
// it behind. The earliest timer is the first of the run or the top of the heap.
#pragma once

#include <asyncfiber/detail/assert.hpp>
#include <asyncfiber/detail/suspend.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace asyncfiber {
namespace detail {

class TimerHeap {
public:
    using time_point = std::chrono::steady_clock::time_point;

    bool empty() const noexcept { return heap_.empty() && !run_head_; }
    time_point next_deadline() const noexcept {
        if (!run_head_) return heap_.front().when;
        if (heap_.empty()) return run_head_->when;
        return std::min(run_head_->when, heap_.front().when);
    }

    void push(TimerNode* n, time_point when) {
        n->when = when;
        n->seq = next_seq_++;
        if (!run_tail_ || !(when < run_tail_->when)) {  // not earlier than the run's last
            n->heap_index = TimerNode::in_run;
            n->run_prev = run_tail_;
            n->run_next = nullptr;
            if (run_tail_)
                run_tail_->run_next = n;
            else
                run_head_ = n;
            run_tail_ = n;
            return;
        }
        heap_.push_back(Entry{when, n->seq, n});
        n->heap_index = heap_.size() - 1;
        sift_up(heap_.size() - 1);
    }

    void remove(TimerNode* n) noexcept {
        std::size_t i = n->heap_index;
        if (i == TimerNode::npos) return;
        if (i == TimerNode::in_run) {
            ASYNCFIBER_ASSERT(n->run_prev || run_head_ == n,
                              "a timer removed from the sorted run it is not in");
            (n->run_prev ? n->run_prev->run_next : run_head_) = n->run_next;
            (n->run_next ? n->run_next->run_prev : run_tail_) = n->run_prev;
            n->run_prev = n->run_next = nullptr;
            n->heap_index = TimerNode::npos;
            return;
        }
        ASYNCFIBER_ASSERT(i < heap_.size() && heap_[i].node == n,
                          "a timer removed from a heap slot that is not its own");
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
        TimerNode* n = nullptr;
        if (run_head_) n = run_head_;
        if (!heap_.empty()) {
            const Entry& top = heap_.front();
            if (!n || top.when < n->when || (top.when == n->when && top.seq < n->seq)) n = top.node;
        }
        if (!n || n->when > now) return nullptr;
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
    TimerNode* run_head_ = nullptr;
    TimerNode* run_tail_ = nullptr;
    std::uint64_t next_seq_ = 0;
};

}  // namespace detail
}  // namespace asyncfiber

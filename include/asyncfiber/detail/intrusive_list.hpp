// Internal: a circular, intrusive, doubly linked list. Nodes live inside the objects (often on
// a waiting task's own stack), so linking and unlinking never allocate and unlinking is O(1)
// from anywhere, which is what cancellation of a waiter needs.
#pragma once

namespace asyncfiber {
namespace detail {

struct ListNode {
    ListNode* prev = nullptr;
    ListNode* next = nullptr;

    bool linked() const noexcept { return next != nullptr; }
    void unlink() noexcept {
        if (!next) return;
        prev->next = next;
        next->prev = prev;
        prev = next = nullptr;
    }
};

/// A list of ListNode. Not copyable or movable: nodes point at its sentinel.
class List {
public:
    List() noexcept { head_.prev = head_.next = &head_; }
    List(const List&) = delete;
    List& operator=(const List&) = delete;

    bool empty() const noexcept { return head_.next == &head_; }
    ListNode* front() const noexcept { return empty() ? nullptr : head_.next; }
    ListNode* end() noexcept { return &head_; }
    const ListNode* end() const noexcept { return &head_; }
    ListNode* first() const noexcept { return head_.next; }

    void push_back(ListNode* n) noexcept {
        n->prev = head_.prev;
        n->next = &head_;
        head_.prev->next = n;
        head_.prev = n;
    }
    void push_front(ListNode* n) noexcept {
        n->next = head_.next;
        n->prev = &head_;
        head_.next->prev = n;
        head_.next = n;
    }
    ListNode* pop_front() noexcept {
        if (empty()) return nullptr;
        ListNode* n = head_.next;
        n->unlink();
        return n;
    }
    /// Unlinks every node (a primitive destroyed with waiters left, so that their nodes do
    /// not point at it).
    void clear() noexcept {
        while (pop_front()) {
        }
    }

private:
    ListNode head_;
};

}  // namespace detail
}  // namespace asyncfiber

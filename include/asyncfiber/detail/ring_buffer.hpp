// Internal: detail::RingBuffer<T>, the FIFO storage of af::Queue and af::Channel. A growable
// circular array: push at the back, pop at either end, one allocation per doubling and none in
// the steady state. It stands in for std::deque, whose header the public headers avoid for
// their weight (docs/performance.md), and which allocates a block every few hundred bytes of
// items even when the queue's length stays flat.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace asyncfiber {
namespace detail {

template <class T>
class RingBuffer {
public:
    RingBuffer() noexcept = default;
    RingBuffer(const RingBuffer&) = delete;
    RingBuffer& operator=(const RingBuffer&) = delete;
    RingBuffer(RingBuffer&& o) noexcept { swap(o); }
    RingBuffer& operator=(RingBuffer&& o) noexcept {
        RingBuffer(std::move(o)).swap(*this);
        return *this;
    }
    ~RingBuffer() {
        clear();
        release(slots_);
    }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    T& front() noexcept { return slot(0); }
    T& back() noexcept { return slot(size_ - 1); }

    /// Strong guarantee: if growing or T's constructor throws, the buffer is unchanged.
    template <class U>
    void push_back(U&& v) {
        if (size_ == capacity_) grow();
        ::new (static_cast<void*>(&slot(size_))) T(std::forward<U>(v));
        ++size_;
    }

    /// Moves the first element out and removes it. If T's move constructor throws, the
    /// buffer is unchanged.
    T pop_front() {
        T v(std::move(front()));
        front().~T();
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
        return v;
    }
    /// The same for the last element.
    T pop_back() {
        T v(std::move(back()));
        back().~T();
        --size_;
        return v;
    }

    void clear() noexcept {
        for (std::size_t i = 0; i < size_; ++i) slot(i).~T();
        head_ = 0;
        size_ = 0;
    }

    void swap(RingBuffer& o) noexcept {
        std::swap(slots_, o.slots_);
        std::swap(capacity_, o.capacity_);
        std::swap(head_, o.head_);
        std::swap(size_, o.size_);
    }

private:
    // The i-th element from the front; capacity_ is a power of two.
    T& slot(std::size_t i) noexcept { return slots_[(head_ + i) & (capacity_ - 1)]; }

    void grow() {
        const std::size_t bigger = capacity_ == 0 ? 8 : capacity_ * 2;
        T* fresh = allocate(bigger);
        std::size_t moved = 0;
        try {
            // Moves when that cannot throw (or T cannot be copied), copies otherwise: a throw
            // half way leaves the old elements untouched.
            for (; moved < size_; ++moved)
                ::new (static_cast<void*>(fresh + moved)) T(std::move_if_noexcept(slot(moved)));
        } catch (...) {
            for (std::size_t i = 0; i < moved; ++i) fresh[i].~T();
            release(fresh);
            throw;
        }
        const std::size_t n = size_;
        clear();
        release(slots_);
        slots_ = fresh;
        capacity_ = bigger;
        size_ = n;
    }

    // Plain operator new aligns for std::max_align_t only (C++14 has no aligned form), so an
    // over-aligned T gets a block alignof(T) bytes larger whose start is aligned by hand; the
    // word just before the elements keeps their offset from the block.
    static constexpr bool kOverAligned = alignof(T) > alignof(std::max_align_t);
    static constexpr std::size_t kExtra = kOverAligned ? alignof(T) : 0;

    static T* allocate(std::size_t n) {
        if (n > (static_cast<std::size_t>(-1) - kExtra) / sizeof(T)) throw std::bad_alloc();
        char* raw = static_cast<char*>(::operator new(n * sizeof(T) + kExtra));
        if (!kOverAligned) return reinterpret_cast<T*>(raw);
        // raw is aligned for max_align_t, so the offset lands in [sizeof(size_t), alignof(T)].
        const std::uintptr_t past_word =
            reinterpret_cast<std::uintptr_t>(raw) + sizeof(std::size_t);
        const std::uintptr_t start = (past_word + alignof(T) - 1) & ~std::uintptr_t{alignof(T) - 1};
        char* aligned = raw + (start - reinterpret_cast<std::uintptr_t>(raw));
        reinterpret_cast<std::size_t*>(aligned)[-1] = static_cast<std::size_t>(aligned - raw);
        return reinterpret_cast<T*>(aligned);
    }
    static void release(T* p) noexcept {
        if (p == nullptr) return;
        char* aligned = reinterpret_cast<char*>(p);
        if (kOverAligned) aligned -= reinterpret_cast<std::size_t*>(aligned)[-1];
        ::operator delete(aligned);
    }

    T* slots_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: memory for the Boost.Asio operations of one kind on one stream (Asio's custom
// allocation, through the handler's associated allocator).
//
// A chain of Asio operations (an ssl::stream read: a socket read, then the decryption; an
// ssl::stream write: the socket write) frees each step's memory before the next is made, so one
// block per chain serves it for the stream's life. Without it every operation started from a
// task goes to malloc: Asio recycles handler memory only for operations started inside its
// own run/poll, and a task runs outside them. A second operation while the block is taken, or
// a larger one, gets ordinary memory.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace asyncfiber {
namespace detail {

class HandlerMemory {
public:
    HandlerMemory() noexcept = default;
    HandlerMemory(const HandlerMemory&) = delete;
    HandlerMemory& operator=(const HandlerMemory&) = delete;

    void* allocate(std::size_t n) {
        if (!used_ && n <= sizeof block_) {
            used_ = true;
            return &block_;
        }
        return ::operator new(n);
    }
    void deallocate(void* p) noexcept {
        if (p == &block_)
            used_ = false;
        else
            ::operator delete(p);
    }

private:
    typename std::aligned_storage<1024, alignof(std::max_align_t)>::type block_;
    bool used_ = false;
};

/// The allocator a handler associates with its operations.
template <class T>
class HandlerAllocator {
public:
    using value_type = T;
    explicit HandlerAllocator(HandlerMemory* m) noexcept : memory_(m) {}
    template <class U>
    HandlerAllocator(const HandlerAllocator<U>& o) noexcept : memory_(o.memory()) {}
    T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
    void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }
    HandlerMemory* memory() const noexcept { return memory_; }
    template <class U>
    bool operator==(const HandlerAllocator<U>& o) const noexcept {
        return memory_ == o.memory();
    }
    template <class U>
    bool operator!=(const HandlerAllocator<U>& o) const noexcept {
        return memory_ != o.memory();
    }

private:
    HandlerMemory* memory_;
};

/// `handler` with its operations' memory taken from `memory` (which must outlive them: the
/// handler typically holds what owns it).
template <class Handler>
class WithMemory {
public:
    using allocator_type = HandlerAllocator<void>;
    WithMemory(HandlerMemory* memory, Handler handler)
        : memory_(memory), handler_(std::move(handler)) {}
    allocator_type get_allocator() const noexcept { return allocator_type(memory_); }
    template <class... Args>
    void operator()(Args&&... args) {
        handler_(std::forward<Args>(args)...);
    }

private:
    HandlerMemory* memory_;
    Handler handler_;
};

}  // namespace detail
}  // namespace asyncfiber

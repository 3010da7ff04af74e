// Internal: a growable byte FIFO. Reads append at the end, consumers take from the front;
// the front offset moves instead of shifting bytes, and bytes are moved down only when the
// free space at the end runs short, so taking small pieces off a large buffer stays O(piece).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>

namespace asyncfiber {
namespace detail {

class ByteBuffer {
public:
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return end_ == begin_; }
    const char* data() const noexcept { return data_.get() + begin_; }
    /// Free bytes after prepare(): where the next read may write.
    std::size_t room() const noexcept { return cap_ - end_; }

    /// Makes room for at least n more bytes at the end and returns where they go.
    char* prepare(std::size_t n) {
        if (cap_ - end_ >= n) return data_.get() + end_;
        std::size_t used = size();
        if (cap_ >= used + n && begin_ >= used) {  // enough space once moved down
            std::memcpy(data_.get(), data_.get() + begin_, used);
        } else {
            std::size_t cap = cap_ ? cap_ : 256;
            while (cap < used + n) cap *= 2;
            std::unique_ptr<char[]> d(new char[cap]);
            if (used) std::memcpy(d.get(), data_.get() + begin_, used);
            data_ = std::move(d);
            cap_ = cap;
        }
        begin_ = 0;
        end_ = used;
        return data_.get() + end_;
    }
    void commit(std::size_t n) noexcept { end_ += n; }
    void append(const char* p, std::size_t n) {
        if (n == 0) return;
        std::memcpy(prepare(n), p, n);
        commit(n);
    }
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ >= end_) begin_ = end_ = 0;
    }
    std::string take(std::size_t n) {
        std::string s(data(), n);
        consume(n);
        return s;
    }
    void clear() noexcept { begin_ = end_ = 0; }
    /// Gives the memory back (a closed stream keeps no buffer).
    void release() noexcept {
        data_.reset();
        cap_ = begin_ = end_ = 0;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: text formatted without allocating, locking or calling anything a signal handler
// may not call, for the reports made inside signal handlers (a stack overflow, the SIGQUIT
// dump of a blocked loop) and for the same reports made in ordinary code (af::dump_tasks),
// so that both print exactly the same lines.
//
// A fixed buffer collects the text and goes to its sink when full and at the end: a file
// descriptor (write(2), retried on EINTR and short writes), or a std::ostream.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <unistd.h>

namespace asyncfiber {
namespace detail {

/// The most digits of an unsigned long long in decimal.
constexpr std::size_t kMaxDecimalDigits = 20;

/// Writes `v` in decimal at `out` (kMaxDecimalDigits at most, no terminator); returns how
/// many characters. Async-signal-safe.
inline std::size_t put_decimal(char* out, unsigned long long v) noexcept {
    char tmp[kMaxDecimalDigits];
    std::size_t i = 0;
    do {
        tmp[i++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    for (std::size_t k = 0; k < i; ++k) out[k] = tmp[i - 1 - k];
    return i;
}

class TextOut {
public:
    /// Writes to descriptor `fd` (async-signal-safe).
    explicit TextOut(int fd) noexcept : sink_(&to_fd), fd_(fd) {}
    /// Writes to `os` (ordinary code only).
    explicit TextOut(std::ostream& os) noexcept : sink_(&to_stream), os_(&os) {}
    TextOut(const TextOut&) = delete;
    TextOut& operator=(const TextOut&) = delete;
    ~TextOut() { flush(); }

    TextOut& put(const char* s) noexcept {
        while (*s) put(*s++);
        return *this;
    }
    TextOut& put(const char* s, std::size_t len) noexcept {
        for (std::size_t i = 0; i < len; ++i) put(s[i]);
        return *this;
    }
    TextOut& put(char c) noexcept {
        if (n_ == sizeof buf_) flush();
        buf_[n_++] = c;
        return *this;
    }
    /// Decimal.
    TextOut& num(unsigned long long v) noexcept {
        char digits[kMaxDecimalDigits];
        return put(digits, put_decimal(digits, v));
    }
    /// Nanoseconds as milliseconds with one decimal: "12.3 ms", "-0.5 ms".
    TextOut& ms(std::int64_t ns) noexcept {
        if (ns < 0) put('-');
        // In tenths of a millisecond, rounded; unsigned so that the most negative value works.
        unsigned long long abs_ns = ns < 0 ? 0ull - static_cast<unsigned long long>(ns)
                                           : static_cast<unsigned long long>(ns);
        unsigned long long tenths = (abs_ns + 50000) / 100000;
        num(tenths / 10).put('.').num(tenths % 10);
        return put(" ms");
    }
    /// A size: "336 B" below a KiB, else "12.5 KiB".
    TextOut& bytes(std::size_t b) noexcept {
        if (b < 1024) return num(b).put(" B");
        unsigned long long tenths = (static_cast<unsigned long long>(b) * 10 + 512) / 1024;
        return num(tenths / 10).put('.').num(tenths % 10).put(" KiB");
    }
    /// An address: "0x7f3a...".
    TextOut& hex(std::uintptr_t v) noexcept {
        char tmp[2 * sizeof v];
        int i = 0;
        do {
            tmp[i++] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } while (v);
        put("0x");
        while (i) put(tmp[--i]);
        return *this;
    }
    void flush() noexcept {
        if (n_) sink_(*this);
        n_ = 0;
    }

private:
    static void to_fd(TextOut& o) noexcept {
        std::size_t off = 0;
        while (off < o.n_) {
            ssize_t w = ::write(o.fd_, o.buf_ + off, o.n_ - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            off += static_cast<std::size_t>(w);
        }
    }
    static void to_stream(TextOut& o) noexcept;  // debug.cpp (needs <ostream>)

    char buf_[512];
    std::size_t n_ = 0;
    void (*sink_)(TextOut&) noexcept;
    int fd_ = -1;
    std::ostream* os_ = nullptr;
};

}  // namespace detail
}  // namespace asyncfiber

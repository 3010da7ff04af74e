// af::StreamReader: asyncio's read / readexactly / readline / readuntil over a StreamCore.
#include "stream_core.hpp"

#include <cstring>
#include <stdexcept>

namespace asyncfiber {

namespace {
// memmem is a GNU extension; this keeps the search portable and allocation-free.
std::size_t find_sep(const char* hay, std::size_t n, const std::string& sep, std::size_t from) {
    const std::size_t m = sep.size();
    if (n < m) return std::string::npos;
    const char first = sep[0];
    for (std::size_t i = from; i + m <= n;) {
        const void* hit = std::memchr(hay + i, first, n - m + 1 - i);
        if (!hit) return std::string::npos;
        i = static_cast<std::size_t>(static_cast<const char*>(hit) - hay);
        if (std::memcmp(hay + i, sep.data(), m) == 0) return i;
        ++i;
    }
    return std::string::npos;
}
}  // namespace

detail::StreamCore& StreamReader::core() const {
    if (!h_) throw InvalidStateError("asyncfiber: use of an empty StreamReader");
    return *h_->core;
}

std::string StreamReader::read(std::ptrdiff_t n) {
    detail::StreamCore& c = core();
    detail::cooperate_if_in_task();
    if (n == 0) return std::string();
    if (n < 0) {
        c.check_no_reader("StreamReader::read");
        while (c.fill("StreamReader::read")) {
        }
        return c.rbuf.take(c.rbuf.size());
    }
    if (c.rbuf.empty()) {
        c.check_no_reader("StreamReader::read");
        c.fill("StreamReader::read");
    }
    std::size_t k =
        static_cast<std::size_t>(n) < c.rbuf.size() ? static_cast<std::size_t>(n) : c.rbuf.size();
    return c.rbuf.take(k);
}

std::string StreamReader::readexactly(std::size_t n) {
    detail::StreamCore& c = core();
    detail::cooperate_if_in_task();
    if (c.rbuf.size() < n) c.check_no_reader("StreamReader::readexactly");
    while (c.rbuf.size() < n) {
        if (!c.fill("StreamReader::readexactly")) {
            std::string partial = c.rbuf.take(c.rbuf.size());
            throw IncompleteReadError(std::move(partial), n);
        }
    }
    return c.rbuf.take(n);
}

std::string StreamReader::readuntil(const std::string& sep) {
    if (sep.empty()) throw std::invalid_argument("asyncfiber: readuntil with an empty separator");
    detail::StreamCore& c = core();
    detail::cooperate_if_in_task();
    const std::size_t m = sep.size();
    std::size_t offset = 0;
    std::size_t at;
    bool checked = false;
    for (;;) {
        const std::size_t len = c.rbuf.size();
        if (len >= m) {
            at = find_sep(c.rbuf.data(), len, sep, offset);
            if (at != std::string::npos) break;
            // The separator may start in the last m-1 bytes; search from there next time.
            offset = len + 1 - m;
            if (offset > c.limit)
                throw LimitOverrunError(
                    "asyncfiber: separator is not found, and chunk exceeds the limit", offset);
        }
        if (!checked) {
            c.check_no_reader("StreamReader::readuntil");
            checked = true;
        }
        if (!c.fill("StreamReader::readuntil")) {
            std::string partial = c.rbuf.take(c.rbuf.size());
            std::size_t expected = partial.size() + m;
            throw IncompleteReadError(std::move(partial), expected);
        }
    }
    if (at > c.limit)
        throw LimitOverrunError("asyncfiber: separator is found, but chunk is longer than limit",
                                at);
    return c.rbuf.take(at + m);
}

std::string StreamReader::readline() {
    detail::StreamCore& c = core();
    try {
        return readuntil("\n");
    } catch (IncompleteReadError& e) {
        return e.partial();
    } catch (LimitOverrunError& e) {
        // As asyncio: the over-long line is dropped so that the next readline() starts afresh.
        std::size_t k = e.consumed();
        if (k < c.rbuf.size() && c.rbuf.data()[k] == '\n')
            c.rbuf.consume(k + 1);
        else
            c.rbuf.clear();
        throw;
    }
}

bool StreamReader::at_eof() const {
    detail::StreamCore& c = core();
    return c.rbuf.empty() && (c.eof || c.closed);
}

std::size_t StreamReader::limit() const { return core().limit; }

void StreamReader::set_limit(std::size_t bytes) {
    if (bytes == 0) throw std::invalid_argument("asyncfiber: a stream limit must be positive");
    core().limit = bytes;
}

std::size_t StreamReader::buffered() const { return core().rbuf.size(); }

}  // namespace asyncfiber

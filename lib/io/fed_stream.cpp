// af::debug::FedStream: a stream whose received bytes come from the program (asyncio's
// feed_data / feed_eof), over the real StreamCore receive path.
#include "runtime/loop_impl.hpp"
#include "stream_core.hpp"

#include <asyncfiber/debug.hpp>

#include <cerrno>
#include <stdexcept>
#include <sys/eventfd.h>

namespace asyncfiber {
namespace debug {

FedStream::FedStream(std::size_t limit) {
    detail::LoopImpl* L = detail::loop_checked("af::debug::FedStream");
    if (limit == 0) throw std::invalid_argument("asyncfiber: a stream limit must be positive");
    // The core needs a descriptor Asio can wait on: an eventfd that is never written never
    // becomes readable, so every byte the reader sees comes from feed_data().
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) detail::throw_errno(errno, "eventfd");
    auto core = std::make_shared<detail::StreamCore>(L, fd, detail::StreamCore::Kind::pipe, limit);
    h_ = detail::IntrusivePtr<detail::StreamHandle>::adopt(
        new detail::StreamHandle(std::move(core)));
}

StreamReader FedStream::reader() const { return detail::Access::make<StreamReader>(h_); }

void FedStream::feed_data(const std::string& data) {
    detail::StreamCore& c = *h_->core;
    if (c.eof) throw InvalidStateError("asyncfiber: FedStream::feed_data after feed_eof()");
    if (c.closed) throw InvalidStateError("asyncfiber: FedStream::feed_data on a closed stream");
    c.feed(data.data(), data.size());
}

void FedStream::feed_eof() { h_->core->feed_eof(); }

}  // namespace debug
}  // namespace asyncfiber

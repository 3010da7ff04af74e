// af::StreamWriter over a StreamCore, and the pair both share.
#include "socket_address.hpp"
#include "stream_core.hpp"

#include <stdexcept>

namespace asyncfiber {

namespace detail {
void intrusive_add_ref(StreamHandle* h) noexcept { h->refs.add(); }

void intrusive_release(StreamHandle* h) noexcept {
    if (h->refs.drop()) delete h;
}

std::pair<StreamReader, StreamWriter> make_stream_pair(std::shared_ptr<StreamCore> core) {
    auto h = IntrusivePtr<StreamHandle>::adopt(new StreamHandle(std::move(core)));
    return {Access::make<StreamReader>(h), Access::make<StreamWriter>(h)};
}
}  // namespace detail

detail::StreamCore& StreamWriter::core() const {
    if (!h_) throw InvalidStateError("asyncfiber: use of an empty StreamWriter");
    return *h_->core;
}

void StreamWriter::write(const std::string& data) { core().write(data.data(), data.size()); }
void StreamWriter::write(const char* data, std::size_t n) { core().write(data, n); }
void StreamWriter::drain() { core().drain(); }
void StreamWriter::write_eof() { core().write_eof(); }
bool StreamWriter::can_write_eof() const {
    detail::StreamCore& c = core();
    return !c.closing && !c.closed && !c.eof_requested && !c.is_tls();
}
void StreamWriter::close() { core().close(); }
void StreamWriter::abort() { core().abort_with_reset(); }
bool StreamWriter::is_closing() const {
    detail::StreamCore& c = core();
    return c.closing || c.closed;
}
void StreamWriter::wait_closed() { core().wait_closed(); }
std::size_t StreamWriter::write_buffer_size() const { return core().wbuf.size(); }

void StreamWriter::set_write_buffer_limits(std::size_t high, std::size_t low) {
    if (low == 0) low = high / 4;
    if (low > high)
        throw std::invalid_argument(
            "asyncfiber: write buffer low-water mark above high-water mark");
    detail::StreamCore& c = core();
    c.high = high;
    c.low = low;
}

SocketAddress StreamWriter::peer_address() const {
    detail::StreamCore& c = core();
    if (c.closed || c.kind != detail::StreamCore::Kind::socket) return SocketAddress();
    return detail::socket_address_of(c.fd, true);
}

void StreamWriter::start_tls(const SslContext& context, std::string server_hostname) {
    detail::StreamCore& c = core();
    // The handle keeps the core alive while the handshake waits.
    detail::IntrusivePtr<detail::StreamHandle> keep = h_;
    c.start_tls(context, server_hostname);
}

TlsInfo StreamWriter::tls_info() const { return core().tls_info(); }

SocketAddress StreamWriter::local_address() const {
    detail::StreamCore& c = core();
    if (c.closed || c.kind != detail::StreamCore::Kind::socket) return SocketAddress();
    return detail::socket_address_of(c.fd, false);
}

}  // namespace asyncfiber

// The TLS read of a StreamCore: an ssl::stream read into the landing buffer, completing in
// on_read() as a socket read does.
//
// A file of its own for the compiler's sake: GCC inlines within a budget per translation
// unit, and with this read chain's Asio code beside the write chain's in stream_tls.cpp (or
// beside the socket paths in stream_core.cpp) it inlined less of the others: 1 % more
// instructions per TLS round trip (3.5 % per plain TCP round trip), measured with callgrind.
#include "stream_tls.hpp"
#include "tls_channel.hpp"

namespace asyncfiber {
namespace detail {

void StreamCore::tls_read_some() {
    std::shared_ptr<StreamCore> self = shared_from_this();
    tls_->channel->read_some(landing_.get(), kStreamReadChunk,
                             [self](const boost::system::error_code& ec, std::size_t n) {
                                 self->on_read(ec, n);
                             });
}

}  // namespace detail
}  // namespace asyncfiber

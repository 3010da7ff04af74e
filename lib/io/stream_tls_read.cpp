// The TLS read of a StreamCore: an ssl::stream read into the landing buffer, completing in
// on_read() as a socket read does.
//
// A file of its own for the compiler's sake: GCC inlines within a budget per translation
// unit, and beside the write chain or the socket paths this chain made it inline less of
// them (figures in docs/performance.md, "TLS").
#include "stream_tls.hpp"
#include "tls_channel.hpp"

namespace asyncfiber {
namespace detail {

void StreamCore::tls_read_some() {
    std::shared_ptr<StreamCore> self = shared_from_this();
    tls_->channel->read_some(
        landing_.get(), kStreamReadChunk,
        [self](const boost::system::error_code& ec, std::size_t n) { self->on_read(ec, n); });
}

}  // namespace detail
}  // namespace asyncfiber

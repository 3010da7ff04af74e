// Internal: the TLS layer of a stream: Boost.Asio's ssl::stream over the stream's socket.
//
// Owned by its StreamCore until the stream closes, and by every asynchronous operation in
// flight on it: an operation Asio is still running never outlives the ssl::stream it works on,
// and a stream that a user keeps past the end of its loop keeps no Asio object with it.
#pragma once

#include "asio_types.hpp"
#include "handler_memory.hpp"
#include "tls_context.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <string>
#include <utility>

namespace asyncfiber {
namespace detail {

class TlsChannel : public std::enable_shared_from_this<TlsChannel> {
public:
    using Socket = StreamSocket;

    /// Takes the socket over. A client sends `host` as SNI (unless it is an IP literal) and,
    /// if the context checks host names, accepts only a certificate for it.
    TlsChannel(std::shared_ptr<SslContextState> context, Socket&& socket, bool client,
               const std::string& host);
    TlsChannel(const TlsChannel&) = delete;
    TlsChannel& operator=(const TlsChannel&) = delete;

    SSL* ssl() noexcept { return stream_.native_handle(); }

    // Each Handler is called as Asio calls it, with the channel kept alive until then. At
    // most one read and one write (or the handshake, or the shutdown) at a time.
    template <class Handler>
    void handshake(Handler h) {
        stream_.async_handshake(
            client_ ? boost::asio::ssl::stream_base::client : boost::asio::ssl::stream_base::server,
            keep_alive(std::move(h)));
    }
    template <class Handler>
    void read_some(char* p, std::size_t n, Handler h) {
        stream_.async_read_some(boost::asio::buffer(p, n), keep_alive(std::move(h), read_memory_));
    }
    template <class Handler>
    void write_some(const char* p, std::size_t n, Handler h) {
        stream_.async_write_some(boost::asio::buffer(p, n),
                                 keep_alive(std::move(h), write_memory_));
    }
    /// Sends close_notify and waits for the peer's.
    template <class Handler>
    void shutdown(Handler h) {
        stream_.async_shutdown(keep_alive(std::move(h)));
    }

    /// Bytes of an unfinished record were received: an EOF now cuts a record in two.
    bool inside_record() noexcept;
    /// What the handshake negotiated.
    TlsInfo info();
    /// Ends the pending operations (they complete with operation_aborted).
    void cancel() noexcept;
    /// Closes the socket; pending operations complete with operation_aborted.
    void close() noexcept;

private:
    template <class Handler>
    auto keep_alive(Handler h) {
        return [self = shared_from_this(), h = std::move(h)](auto&&... args) mutable {
            h(std::forward<decltype(args)>(args)...);
        };
    }
    // The same, the operations' memory taken from `memory` (a member: kept alive as well).
    template <class Handler>
    auto keep_alive(Handler h, HandlerMemory& memory) {
        auto k = keep_alive(std::move(h));
        return WithMemory<decltype(k)>(&memory, std::move(k));
    }

    std::shared_ptr<SslContextState> context_;  // the SSL_CTX and what its callbacks read
    HandlerMemory read_memory_, write_memory_;  // before stream_: pending operations use them
    boost::asio::ssl::stream<Socket> stream_;
    const bool client_;
};

}  // namespace detail
}  // namespace asyncfiber

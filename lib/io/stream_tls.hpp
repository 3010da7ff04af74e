// Internal: the TLS side of a StreamCore (see stream_core.hpp and stream_tls.cpp). Light on
// purpose: stream_core.cpp includes it, and Boost.Asio's ssl::stream stays out of that file
// (whose plain-socket paths the compiler then inlines as it did without TLS).
#pragma once

#include "stream_core.hpp"

#include <asyncfiber/loop.hpp>

#include <boost/system/error_code.hpp>

#include <memory>
#include <string>

namespace asyncfiber {
namespace detail {

class TlsChannel;

struct TlsState {
    /// The ssl::stream; released when the stream closes (operations in flight keep it).
    std::shared_ptr<TlsChannel> channel;
    bool ready = false;           // the handshake succeeded: reads and writes may start
    bool handshake_done = false;  // it finished, either way
    boost::system::error_code handshake_error;
    bool writing = false;         // a write of `out` is in flight
    bool shutting_down = false;   // close_notify sent or being sent
    std::unique_ptr<char[]> out;  // the plaintext of the write in flight (Asio may reread it)
    std::size_t out_capacity = 0;
    Handle shutdown_timer;    // ends a close_notify exchange the peer never answers
    StreamWaiter handshaker;  // the task waiting for the handshake
    TlsInfo info;             // what the handshake negotiated
    std::string peer;         // who the peer is, for messages ("127.0.0.1:443")
};

}  // namespace detail
}  // namespace asyncfiber

// Internal: the Asio I/O object types the loop's streams, servers, datagram sockets and child
// watchers use, bound to the io_context's own executor type.
//
// Asio's defaults (tcp::socket, posix::stream_descriptor, ...) carry any_io_executor, a
// type-erased executor: every operation started on them copies it, asks it for properties
// and destroys it through function pointers, a few percent of a small TLS or UDP echo.
// Every object here belongs to one loop's io_context, so the concrete executor type loses
// nothing and those calls become inline code.
#pragma once

#include <boost/asio/basic_datagram_socket.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>

namespace asyncfiber {
namespace detail {

using IoExecutor = boost::asio::io_context::executor_type;
using StreamSocket =
    boost::asio::basic_stream_socket<boost::asio::generic::stream_protocol, IoExecutor>;
using DatagramSocket =
    boost::asio::basic_datagram_socket<boost::asio::generic::datagram_protocol, IoExecutor>;
using Descriptor = boost::asio::posix::basic_stream_descriptor<IoExecutor>;

}  // namespace detail
}  // namespace asyncfiber

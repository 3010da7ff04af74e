// Plain blocking loopback sockets for tests that play a peer the library does not control:
// one that never reads, one that resets, one that sends a byte at a time.
#pragma once

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace raw {

/// A blocking client socket connected to 127.0.0.1:port (a loopback connect completes at
/// once, from the backlog, before the server's loop has accepted it). -1 after a failure.
inline int connect_loopback(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ADD_FAILURE() << "socket";
        return -1;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ADD_FAILURE() << "connect";
        ::close(fd);
        return -1;
    }
    return fd;
}

/// Closes with a reset (SO_LINGER {1, 0}) instead of a FIN.
inline void reset_close(int fd) {
    struct linger lg = {1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

}  // namespace raw

// af::Server: listening sockets, the accept path, one task per connection.
//
// Accepting is callback-driven (no task): a read-readiness wait on each listening socket
// accepts what is pending and spawns a task per connection. When accept fails for lack of
// descriptors or memory the listener is left alone for a while (a timer, not a busy retry:
// the pending connection keeps the socket readable) and the condition is reported once.
// A TLS server's handshake runs in the connection's task, before its handler.
#include "resolve.hpp"
#include "runtime/state_share.hpp"
#include "socket_address.hpp"
#include "stream_core.hpp"
#include "tls_context.hpp"

#include <asyncfiber/net.hpp>
#include <asyncfiber/tls.hpp>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <unordered_map>

namespace asyncfiber {
namespace detail {

namespace {
// Connections taken per readiness event before the loop gets to run other work.
constexpr int kAcceptBatch = 64;
// How long a listener rests after running out of descriptors.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
}  // namespace

struct ServerState final : std::enable_shared_from_this<ServerState>, IoLink {
    struct Listener {
        int fd = -1;
        std::unique_ptr<Descriptor> desc;
        SocketAddress addr;
        bool armed = false;
    };

    ServerState(LoopImpl* L, ConnectionHandler h, const ServerOptions& o)
        : loop(L), handler(std::move(h)), opts(o) {
        // The server keeps its own handle: the caller's context may go away.
        if (o.ssl) tls = *o.ssl;
        opts.ssl = nullptr;
    }
    ~ServerState() { close(); }

    void close_for_loop() noexcept override { close(); }

    void add_listener(int fd) {
        Listener l;
        l.fd = fd;
        try {
            l.desc.reset(new Descriptor(loop->io->context(), fd));
        } catch (...) {
            ::close(fd);
            throw;
        }
        l.addr = socket_address_of(fd, false);
        listeners.push_back(std::move(l));
    }

    void start() {
        serving = true;
        io_objects(loop).live.push_back(this);
        for (std::size_t i = 0; i < listeners.size(); ++i) arm(i);
    }

    void arm(std::size_t i) {
        Listener& l = listeners[i];
        if (closed || l.armed) return;
        l.armed = true;
        std::shared_ptr<ServerState> self = shared_from_this();
        l.desc->async_wait(Descriptor::wait_read, [self, i](const boost::system::error_code& ec) {
            self->listeners[i].armed = false;
            if (!ec && !self->closed) self->accept_ready(i);
        });
    }

    void accept_ready(std::size_t i) {
        if (closed) return;
        const int fd = listeners[i].fd;
        for (int k = 0; k < kAcceptBatch; ++k) {
            int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) {
                out_of_fds = false;
                on_connection(c);
                if (closed) return;  // the handler spawn failed badly, or close() meanwhile
                continue;
            }
            int err = errno;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                arm(i);
                return;
            }
            // EMFILE, ENFILE, ENOBUFS, ENOMEM, or something unexpected: rest, then retry.
            if (!out_of_fds) {
                out_of_fds = true;
                loop->report(ExceptionContext{
                    "accept failed: " + std::string(std::strerror(err)) +
                        "; the server retries every " +
                        std::to_string(
                            std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptRetry)
                                .count()) +
                        " ms",
                    std::make_exception_ptr(
                        std::system_error(err, std::system_category(), "accept")),
                    {}});
            }
            schedule(i, kAcceptRetry);
            return;
        }
        schedule(i, Clock::duration::zero());  // more may be pending: go on next iteration
    }

    void schedule(std::size_t i, Clock::duration d) {
        std::weak_ptr<ServerState> weak = shared_from_this();
        retries.push_back(loop->call_at(Clock::now() + d, [weak, i] {
            if (auto s = weak.lock()) s->accept_ready(i);
        }));
        if (retries.size() > 16) retries.erase(retries.begin());  // fired long ago
    }

    void on_connection(int c) {
        std::shared_ptr<StreamCore> core;
        try {
            if (unix_path.empty()) set_nodelay(c);
            core = std::make_shared<StreamCore>(loop, c, StreamCore::Kind::socket, opts.limit);
            core->close_timeout = opts.close_timeout;
            core->role = StreamCore::Role::server;
            core->tls_handshake_timeout = opts.ssl_handshake_timeout;
            core->tls_shutdown_timeout = opts.ssl_shutdown_timeout;
            std::weak_ptr<ServerState> weak = shared_from_this();
            StreamCore* key = core.get();
            core->on_closed = [weak, key] {
                if (std::shared_ptr<ServerState> s = weak.lock()) s->connection_closed(key);
            };
            connections.emplace(key, core);
        } catch (...) {
            loop->report(ExceptionContext{
                "could not set up an accepted connection", std::current_exception(), {}});
            return;
        }
        ++active;
        std::shared_ptr<ServerState> self = shared_from_this();
        try {
            asyncfiber::async(&ServerState::run_connection, self, std::move(core));
        } catch (...) {
            --active;
            loop->report(ExceptionContext{
                "could not start a connection task", std::current_exception(), {}});
        }
    }

    static void run_connection(std::shared_ptr<ServerState> self,
                               std::shared_ptr<StreamCore> core) {
        struct Done {
            ServerState* s;
            ~Done() { s->connection_done(); }
        } done{self.get()};
        if (self->tls && !self->handshake(*core)) return;
        std::pair<StreamReader, StreamWriter> rw = make_stream_pair(std::move(core));
        try {
            self->handler(std::move(rw.first), std::move(rw.second));
        } catch (const CancelledError&) {
            throw;
        } catch (...) {
            self->loop->report(ExceptionContext{"unhandled exception in a connection handler",
                                                std::current_exception(), current_task().name()});
        }
    }

    // As asyncio: a connection whose handshake fails is closed without calling the handler,
    // and the failure is reported only in debug mode (a server meets such clients daily).
    bool handshake(StreamCore& core) {
        try {
            core.start_tls(tls, std::string());
            return true;
        } catch (const CancelledError&) {
            throw;
        } catch (...) {
            if (loop->debug)
                loop->report(ExceptionContext{"TLS handshake of an accepted connection failed",
                                              std::current_exception(), current_task().name()});
            return false;
        }
    }

    void connection_done() noexcept {
        --active;
        if (finished()) notify_closers();
    }

    void connection_closed(StreamCore* c) noexcept {
        connections.erase(c);
        if (finished()) notify_closers();
    }

    /// What wait_closed() waits for: no listener, no connection task, no open connection.
    bool finished() const noexcept { return closed && active == 0 && connections.empty(); }

    void notify_closers() noexcept { notify_all(closers); }

    /// The open connections now (closing one may unlink it at once).
    std::vector<std::shared_ptr<StreamCore>> open_connections() const {
        std::vector<std::shared_ptr<StreamCore>> v;
        v.reserve(connections.size());
        for (const auto& kv : connections)
            if (std::shared_ptr<StreamCore> c = kv.second.lock()) v.push_back(std::move(c));
        return v;
    }

    void close() noexcept {
        if (closed) return;
        closed = true;
        serving = false;
        unlink();
        for (auto& h : retries) h.cancel();
        retries.clear();
        for (auto& l : listeners) {
            boost::system::error_code ec;
            if (l.desc) l.desc->close(ec);
            l.desc.reset();
            l.fd = -1;
        }
        if (!unix_path.empty()) ::unlink(unix_path.c_str());
        notify_all(forever);
        if (finished()) notify_closers();
    }

    LoopImpl* loop;
    ConnectionHandler handler;
    ServerOptions opts;
    SslContext tls;  // serve TLS with it, if set
    std::vector<Listener> listeners;
    std::vector<Handle> retries;
    std::string unix_path;
    std::size_t active = 0;  // connection tasks not ended
    // Connections whose descriptor is open, also after their task has ended (queued bytes
    // going out): close_clients() / abort_clients() reach them, wait_closed() waits for them.
    std::unordered_map<StreamCore*, std::weak_ptr<StreamCore>> connections;
    bool serving = false;
    bool closed = false;
    bool out_of_fds = false;
    List closers;
    List forever;
};

namespace {

int listen_socket(const sockaddr* sa, socklen_t len, const ServerOptions& o, int& err) {
    int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    int one = 1;
    if (sa->sa_family != AF_UNIX) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (o.reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, sa, len) != 0 || ::listen(fd, o.backlog) != 0) {
        err = errno;
        ::close(fd);
        return -1;
    }
    return fd;
}

void set_port(Endpoint& ep, unsigned short port) {
    if (ep.addr.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in*>(&ep.addr)->sin_port = htons(port);
    else if (ep.addr.ss_family == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&ep.addr)->sin6_port = htons(port);
}

void check_options(const ServerOptions& o, const char* who) {
    check_stream_limit(o.limit, who);
    if (o.close_timeout < Clock::duration::zero())
        throw std::invalid_argument(std::string("asyncfiber: ") + who +
                                    ": ServerOptions::close_timeout is negative");
    if (o.ssl) {
        check_server_context(*o.ssl, who);
        check_tls_timeouts(o.ssl_handshake_timeout, o.ssl_shutdown_timeout, who);
    }
}

}  // namespace
// The count behind Server handles (asyncfiber/detail/state_share.hpp).
template void intrusive_add_ref<ServerState>(StateShare<ServerState>*) noexcept;
template void intrusive_release<ServerState>(StateShare<ServerState>*) noexcept;

}  // namespace detail

Server start_server(ConnectionHandler handler, const std::string& host, unsigned short port,
                    const ServerOptions& options) {
    detail::LoopImpl* L = detail::loop_checked("af::start_server");
    if (!handler) throw std::invalid_argument("asyncfiber: start_server needs a handler");
    detail::check_options(options, "start_server");
    std::vector<detail::Endpoint> eps = (host.empty() || host == "*")
                                            ? detail::wildcard_endpoints(port)
                                            : detail::resolve(L, host, port, true);
    auto s = std::make_shared<detail::ServerState>(L, std::move(handler), options);
    int err = 0;
    unsigned short chosen = port;
    for (auto& ep : eps) {
        // With port 0, every address gets the port the first one got, so that port() names
        // the server on every family.
        if (port == 0 && chosen != 0) detail::set_port(ep, chosen);
        int fd = detail::listen_socket(ep.sa(), ep.len, options, err);
        if (fd < 0 && port == 0 && chosen != 0) {
            detail::set_port(ep, 0);
            fd = detail::listen_socket(ep.sa(), ep.len, options, err);
        }
        if (fd < 0) continue;  // e.g. no IPv6 on this host: the others still serve
        s->add_listener(fd);
        if (chosen == 0) chosen = s->listeners.back().addr.port;
    }
    if (s->listeners.empty())
        detail::throw_errno(err, "start_server on " + host + ":" + std::to_string(port));
    s->start();
    return detail::share_state<Server>(std::move(s));
}

Server start_unix_server(ConnectionHandler handler, const std::string& path,
                         const ServerOptions& options) {
    detail::LoopImpl* L = detail::loop_checked("af::start_unix_server");
    if (!handler) throw std::invalid_argument("asyncfiber: start_unix_server needs a handler");
    detail::check_options(options, "start_unix_server");
    sockaddr_un un = detail::unix_address(path, "start_unix_server");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // stale
    auto s = std::make_shared<detail::ServerState>(L, std::move(handler), options);
    int err = 0;
    int fd = detail::listen_socket(reinterpret_cast<sockaddr*>(&un), sizeof un, options, err);
    if (fd < 0) detail::throw_errno(err, "start_unix_server on " + path);
    s->unix_path = path;
    s->add_listener(fd);
    s->start();
    return detail::share_state<Server>(std::move(s));
}

detail::ServerState& Server::state() const {
    if (!s_) throw InvalidStateError("asyncfiber: use of an empty Server");
    return *s_->state;
}

unsigned short Server::port() const {
    detail::ServerState& s = state();
    return s.listeners.empty() ? 0 : s.listeners.front().addr.port;
}

std::vector<SocketAddress> Server::addresses() const {
    std::vector<SocketAddress> v;
    for (const auto& l : state().listeners) v.push_back(l.addr);
    return v;
}

void Server::close() { state().close(); }

void Server::close_clients() {
    for (auto& c : state().open_connections()) c->close();
}

void Server::abort_clients() {
    for (auto& c : state().open_connections()) c->abort_with_reset();
}

bool Server::is_serving() const { return state().serving; }

void Server::wait_closed() {
    detail::ServerState& s = state();
    detail::TaskBase* self = detail::current_task_checked("Server::wait_closed");
    while (!s.finished()) {
        detail::Waiter w(self);
        s.closers.push_back(&w);
        detail::park(w, "Server::wait_closed");
    }
}

void Server::serve_forever() {
    detail::ServerState& s = state();
    detail::TaskBase* self = detail::current_task_checked("Server::serve_forever");
    try {
        while (!s.closed) {
            detail::Waiter w(self);
            s.forever.push_back(&w);
            detail::park(w, "Server::serve_forever");
        }
    } catch (const CancelledError&) {
        s.close();
        throw;
    }
}

}  // namespace asyncfiber

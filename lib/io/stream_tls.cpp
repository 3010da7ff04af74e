// The TLS transport of a StreamCore: start_tls (the upgrade and the handshake), the send
// buffer flushed through ssl::stream writes, reading errors, and the close_notify exchange.
//
// Reads need little here: arm_read() starts an ssl::stream read into the landing buffer
// (stream_tls_read.cpp) instead of a socket read, and on_read() handles both alike, so a
// cancelled read leaves its TLS read pending and nothing decrypted is lost. Writes never suspend:
// write() appends to the send buffer and tls_flush() keeps one ssl::stream write of up to a record
// in flight (Asio may reread its plaintext until it completes, so that is a copy, `out`), consuming
// the buffer as each completes; drain() works on the buffer as for plain streams.
#include "runtime/state_share.hpp"
#include "socket_address.hpp"
#include "stream_tls.hpp"
#include "tls_channel.hpp"

#include <asyncfiber/wait.hpp>

#include <boost/asio/ssl/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace asyncfiber {
namespace detail {

namespace {

// Plaintext given to one ssl::stream write: a full TLS record.
constexpr std::size_t kTlsRecord = 16 * 1024;

std::string milliseconds(Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

std::string StreamCore::describe_peer() const {
    std::string addr = fd >= 0 ? socket_address_of(fd, true).to_string() : std::string();
    if (peer_host.empty() || addr.find(peer_host) != std::string::npos)
        return addr.empty() ? "the peer" : addr;
    return addr.empty() ? peer_host : peer_host + " (" + addr + ")";
}

TlsInfo StreamCore::tls_info() const { return tls_ ? tls_->info : TlsInfo(); }

void StreamCore::start_tls(const SslContext& context, const std::string& server_hostname) {
    const char* what = "StreamWriter::start_tls";
    TaskBase* self = current_task_checked(what);
    SslContextState& ctx = state_of(context);
    if (kind != Kind::socket || role == Role::none)
        throw RuntimeError("asyncfiber: start_tls needs a TCP or Unix socket connection");
    if (tls_) throw RuntimeError("asyncfiber: start_tls on a stream that is already TLS");
    if (closing || closed) throw RuntimeError("asyncfiber: start_tls on a closed stream");
    if (eof_requested) throw RuntimeError("asyncfiber: start_tls after write_eof()");
    const bool client = role == Role::client;
    if (ctx.server == client)
        throw std::invalid_argument(client ? "asyncfiber: TLS as a client needs a client-side "
                                             "SslContext (SslContext::client())"
                                           : "asyncfiber: TLS as a server needs a server-side "
                                             "SslContext (SslContext::server())");
    const std::string host =
        client ? (server_hostname.empty() ? peer_host : server_hostname) : std::string();
    if (client && ctx.check_hostname && host.empty())
        throw std::invalid_argument(
            "asyncfiber: the SslContext checks host names: name the server (server_hostname)");
    throw_if_cancelled(self);

    // What was written before the upgrade goes out in the clear, first.
    wait_flushed(what);
    if (tls_) throw RuntimeError("asyncfiber: start_tls on a stream that is already TLS");
    if (closing) throw RuntimeError("asyncfiber: start_tls on a closed stream");
    // From here on the stream is TLS: writes wait in the send buffer, and a reader (in any
    // task) waits without arming a read, until the handshake is done.
    tls_.reset(new TlsState);
    tls_->peer = describe_peer();
    // A read left pending (by a cancelled read, or by a reader in another task) must not take
    // the peer's first TLS bytes for plaintext: end it. What it did receive came before the
    // upgrade and stays readable.
    if (rarmed_) {
        boost::system::error_code ec;
        sock_->cancel(ec);
        try {
            while (rarmed_ && !closed) tls_->handshaker.park(self, what);
        } catch (...) {
            abort();  // half upgraded: as a cancelled handshake
            throw;
        }
    }
    if (closed)
        throw std::system_error(ECONNABORTED, std::system_category(),
                                "asyncfiber: the stream was closed during start_tls");

    // The TLS layer takes the socket over.
    try {
        tls_->channel = std::make_shared<TlsChannel>(detail::Access::state(context)->state,
                                                     std::move(*sock_), client, host);
    } catch (...) {
        abort();  // the socket went with the failed channel
        throw;
    }
    sock_.reset();

    std::shared_ptr<StreamCore> me = shared_from_this();
    try {
        tls_->channel->handshake([me](const boost::system::error_code& ec) {
            TlsState& t = *me->tls_;
            t.handshake_done = true;
            t.handshake_error = ec;
            t.handshaker.fire();
        });
        asyncfiber::timeout(tls_handshake_timeout, [&] {
            while (!tls_->handshake_done && !closed) tls_->handshaker.park(self, "TLS handshake");
        });
    } catch (const TimeoutError&) {
        abort();
        throw TimeoutError("asyncfiber: the TLS handshake with " + tls_->peer +
                           " did not complete within " + milliseconds(tls_handshake_timeout));
    } catch (...) {  // cancelled (as asyncio's start_tls, the connection is closed), or no memory
        abort();
        throw;
    }
    if (closed)
        throw std::system_error(
            ECONNABORTED, std::system_category(),
            "asyncfiber: the stream was closed during the TLS handshake with " + tls_->peer);
    if (const boost::system::error_code ec = tls_->handshake_error) {
        const std::string during = "TLS handshake with " + tls_->peer;
        std::exception_ptr e = ec == boost::asio::ssl::error::stream_truncated
                                   ? tls_truncated(during, "during the handshake")
                                   : tls_failure(ec, tls_->channel->ssl(), during);
        abort();
        std::rethrow_exception(e);
    }
    try {
        tls_->info = tls_->channel->info();
    } catch (...) {
        abort();
        throw;
    }
    tls_->ready = true;
    wake_reader();  // a reader that waited for the handshake arms its read now
    tls_flush();    // what was written meanwhile
}

void StreamCore::tls_read_failed(const boost::system::error_code& ec) noexcept {
    const std::string during = "TLS read from " + tls_->peer;
    if (ec == boost::asio::ssl::error::stream_truncated) {
        // The peer closed the connection without close_notify. Between records that is an
        // EOF, as asyncio reads it; inside a record, bytes sent were cut off.
        if (!tls_->channel->inside_record())
            eof = true;
        else
            rerror = tls_truncated(during, "in the middle of a TLS record");
        return;
    }
    rerror = tls_failure(ec, tls_->channel->ssl(), during);
}

void StreamCore::tls_flush() noexcept {
    TlsState& t = *tls_;
    if (closed || !t.ready || t.writing || t.shutting_down) return;
    if (wbuf.empty()) {
        if (closing) tls_begin_close();
        return;
    }
    const std::size_t n = std::min(wbuf.size(), kTlsRecord);
    try {
        if (n > t.out_capacity) {  // grows to the largest write so far, a record at most
            t.out.reset(new char[n]);
            t.out_capacity = n;
        }
        std::memcpy(t.out.get(), wbuf.data(), n);
        std::shared_ptr<StreamCore> self = shared_from_this();
        t.channel->write_some(t.out.get(), n,
                              [self](const boost::system::error_code& ec, std::size_t m) {
                                  self->on_tls_written(ec, m);
                              });
        t.writing = true;
    } catch (...) {
        fail_write(std::current_exception());
    }
}

void StreamCore::on_tls_written(const boost::system::error_code& ec, std::size_t n) noexcept {
    tls_->writing = false;
    if (closed) return;  // aborted meanwhile: the drainers were woken then
    if (ec) {
        fail_write(tls_failure(ec, tls_->channel->ssl(), "write"));
        return;
    }
    wbuf.consume(n);
    if (wbuf.size() <= low) wake_drainers();
    tls_flush();
}

// close() over TLS: once the send buffer is out, send close_notify and wait for the peer's
// (as asyncio does) at most tls_shutdown_timeout, then close the socket. Entered again from
// the completions it waits for.
void StreamCore::tls_begin_close() noexcept {
    TlsState& t = *tls_;
    if (closed || t.shutting_down) return;
    if (!t.ready) {  // mid-handshake: there is no TLS session to close
        abort();
        return;
    }
    if (t.writing || !wbuf.empty()) {
        tls_flush();  // on_tls_written comes back here
        return;
    }
    if (rarmed_) {
        t.channel->cancel();  // on_read comes back here
        return;
    }
    t.shutting_down = true;
    try {
        // Beyond a century is "never" (and would overflow the clock).
        if (std::chrono::duration<double>(tls_shutdown_timeout).count() < 3.2e9) {
            std::weak_ptr<StreamCore> weak = shared_from_this();
            t.shutdown_timer = loop->call_at(Clock::now() + tls_shutdown_timeout, [weak] {
                if (std::shared_ptr<StreamCore> c = weak.lock()) c->abort();
            });
        }
        std::shared_ptr<StreamCore> self = shared_from_this();
        t.channel->shutdown([self](const boost::system::error_code&) { self->abort(); });
    } catch (...) {
        abort();
    }
}

void StreamCore::tls_abort() noexcept {
    TlsState& t = *tls_;
    t.shutdown_timer.cancel();
    if (t.channel) {
        t.channel->close();
        t.channel.reset();
    }
    t.handshaker.fire();
}

}  // namespace detail
}  // namespace asyncfiber

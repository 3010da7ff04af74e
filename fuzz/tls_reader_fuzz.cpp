// libFuzzer target for the TLS read path: a StreamReader over a TLS client connection whose
// records arrive cut at random places, at random moments, while its reads are cancelled at
// random points. The input bytes decide the plaintext (one record per chunk), how the
// ciphertext is split into pieces and how many loop turns pass between them, how the
// connection ends (close_notify, a close at a record boundary, a close in the middle of a
// record, a corrupted byte in some record), the reads (readexactly / readuntil / readline /
// read / set_limit) and when the reading task is cancelled.
//
// The peer is a TLS server driven byte by byte (test/support/tls_peer.hpp) behind a plain
// loopback connection. Invariants: every byte a read returns (or an IncompleteReadError
// carries) is the next byte of the plaintext, once and in order; a read that is cancelled or
// overruns its limit takes nothing (readline is kept within the limit: its over-long-line
// discarding is stream_reader_fuzz's subject); each read returns what its contract says
// (n bytes, up to and including the first separator, 1..n bytes or EOF); the end is an EOF
// after all of the plaintext (close_notify, or a close between records, as asyncio), or an
// SslError after exactly the records before the cut or corrupted one; nothing leaks.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include "../test/support/process_probes.hpp"
#include "../test/support/tls_certs.hpp"
#include "../test/support/tls_peer.hpp"
#include "fuzz_check.hpp"
#include "fuzz_target.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace af = asyncfiber;

namespace {

const char kAlphabet[] = "ab\n\rx.yz";
const char* const kSeps[] = {"\n", "\r\n", "ab", "aba", "x"};
// A reader limit no input reaches (the plaintext is at most 480 bytes).
constexpr std::size_t kNoLimit = 1 << 20;

enum class Ending { close_notify, boundary_close, cut_record, corrupt_record };

enum class OpKind { readline, readuntil, readexactly, read, set_limit };

struct Op {
    OpKind kind;
    std::string sep;
    long n;
};

struct Input {
    std::vector<std::string> chunks;                  // one TLS record each
    std::vector<std::pair<std::size_t, int>> pieces;  // ciphertext piece size, yields after it
    Ending ending = Ending::close_notify;
    std::size_t victim = 0;  // cut / corrupted record (index into chunks)
    std::size_t offset = 0;  // where in it
    std::vector<Op> ops;
    std::vector<int> cancels;  // yields of the canceller between cancellations
};

Input decode(const std::uint8_t* data, std::size_t size) {
    std::size_t pos = 0;
    auto next = [&]() -> std::uint8_t { return pos < size ? data[pos++] : 0; };
    Input in;
    std::size_t nchunks = 1 + next() % 12;
    for (std::size_t i = 0; i < nchunks; ++i) {
        std::size_t len = 1 + next() % 40;
        std::string c;
        for (std::size_t k = 0; k < len; ++k) c += kAlphabet[next() % 8];
        in.chunks.push_back(c);
    }
    std::uint8_t e = next();
    in.ending = static_cast<Ending>(e % 4);
    in.victim = next() % nchunks;
    in.offset = next();
    std::size_t npieces = 1 + next() % 24;
    for (std::size_t i = 0; i < npieces; ++i) {
        std::uint8_t h = next();
        in.pieces.emplace_back(1 + h % 90, (h / 90) % 3);
    }
    std::size_t ncancels = next() % 8;
    for (std::size_t i = 0; i < ncancels; ++i) in.cancels.push_back(next() % 6);
    while (pos < size && in.ops.size() < 24) {
        std::uint8_t op = next(), arg = next();
        Op o{OpKind::read, std::string(), 0};
        switch (op % 5) {
        case 0:
            o.kind = OpKind::readline;
            break;
        case 1:
            o.kind = OpKind::readuntil;
            o.sep = kSeps[arg % 5];
            break;
        case 2:
            o.kind = OpKind::readexactly;
            o.n = arg % 40;
            break;
        case 3:
            o.kind = OpKind::read;
            o.n = 1 + arg % 50;
            break;
        default:
            o.kind = OpKind::set_limit;
            o.n = 1 + arg % 64;
            break;
        }
        in.ops.push_back(o);
    }
    return in;
}

struct Tls {
    tls_certs::Issued cert = tls_certs::issue(tls_certs::Spec());
    SSL_CTX* peer = tls_peer::make_ctx(true, cert.cert_pem, cert.key_pem);
    af::SslContext client = af::SslContext::client();
    Tls() { client.add_certificate_authority(cert.cert_pem); }
};

Tls& tls() {
    static Tls* t = new Tls;  // lives as long as the process (libFuzzer never returns)
    return *t;
}

struct Run {
    explicit Run(const Input& i) : in(i) {
        for (const std::string& c : in.chunks) plain += c;
        // What a reader can get: all of it, or the records before the damaged one.
        if (in.ending == Ending::cut_record || in.ending == Ending::corrupt_record) {
            deliverable.clear();
            for (std::size_t k = 0; k < in.victim; ++k) deliverable += in.chunks[k];
        } else {
            deliverable = plain;
        }
    }

    const Input& in;
    std::string plain;        // every byte the peer encrypts
    std::string deliverable;  // what the reader must see before the end
    std::string delivered;    // what it saw, in order
    bool started = false;     // the reader runs (a task cancelled before it starts never runs)
    bool reading = true;

    void delivered_more(const std::string& got) {
        delivered += got;
        FUZZ_CHECK(delivered.size() <= deliverable.size());
        FUZZ_CHECK(deliverable.compare(0, delivered.size(), delivered) == 0);
    }

    // The peer: handshake, then the records in pieces, then the ending.
    void serve(af::StreamReader r, af::StreamWriter w) {
        tls_peer::MemoryTls peer(tls().peer, true);
        tls_peer::handshake_over(peer, r, w);
        std::string wire;
        std::vector<std::size_t> starts;
        for (const std::string& c : in.chunks) {
            starts.push_back(wire.size());
            wire += peer.encrypt(c);
        }
        starts.push_back(wire.size());
        const std::size_t first = starts[in.victim], len = starts[in.victim + 1] - first;
        switch (in.ending) {
        case Ending::close_notify:
            wire += peer.close_notify();
            break;
        case Ending::boundary_close:
            break;
        case Ending::cut_record:
            wire.resize(first + 1 + in.offset % (len - 1));
            break;
        case Ending::corrupt_record:
            wire[first + in.offset % len] ^= static_cast<char>(1 + in.offset % 255);
            break;
        }
        std::size_t at = 0;
        for (std::size_t i = 0; at < wire.size(); i = (i + 1) % in.pieces.size()) {
            std::size_t n = std::min(in.pieces[i].first, wire.size() - at);
            w.write(wire.data() + at, n);
            at += n;
            w.drain();
            for (int k = 0; k < in.pieces[i].second; ++k) af::sleep(std::chrono::seconds(0));
        }
        w.close();
    }

    // One read; returns false once the stream has ended (EOF or an error).
    bool one(af::StreamReader& r, const Op& op, std::size_t& limit) {
        const std::size_t before = delivered.size();
        OpKind kind = op.kind;
        std::string sep = op.sep;
        if (kind == OpKind::readline && limit < kNoLimit) {  // see the top: no discarding here
            kind = OpKind::readuntil;
            sep = "\n";
        }
        try {
            std::string got;
            switch (kind) {
            case OpKind::readline:
                got = r.readline();
                FUZZ_CHECK(got.empty() || got.back() == '\n' || r.at_eof());
                FUZZ_CHECK(got.find('\n') == std::string::npos || got.find('\n') == got.size() - 1);
                delivered_more(got);
                return !got.empty();
            case OpKind::readuntil:
                got = r.readuntil(sep);
                FUZZ_CHECK(got.size() >= sep.size() && got.find(sep) == got.size() - sep.size());
                FUZZ_CHECK(got.size() - sep.size() <= limit);
                break;
            case OpKind::readexactly:
                got = r.readexactly(static_cast<std::size_t>(op.n));
                FUZZ_CHECK(got.size() == static_cast<std::size_t>(op.n));
                break;
            case OpKind::read:
                got = r.read(op.n);
                FUZZ_CHECK(got.size() <= static_cast<std::size_t>(op.n));
                FUZZ_CHECK(!got.empty() || r.at_eof());
                delivered_more(got);
                return !got.empty();
            case OpKind::set_limit:
                limit = static_cast<std::size_t>(op.n);
                r.set_limit(limit);
                return true;
            }
            delivered_more(got);
        } catch (const af::IncompleteReadError& e) {
            delivered_more(e.partial());
            FUZZ_CHECK(r.at_eof());
            return false;
        } catch (const af::LimitOverrunError& e) {
            FUZZ_CHECK(delivered.size() == before);  // readuntil keeps the data
            FUZZ_CHECK(e.consumed() > limit);
            FUZZ_CHECK(r.buffered() >= limit);
        } catch (const af::CancelledError&) {
            FUZZ_CHECK(delivered.size() == before);
            af::current_task().uncancel();
        } catch (const af::SslError&) {
            FUZZ_CHECK(in.ending == Ending::cut_record || in.ending == Ending::corrupt_record);
            FUZZ_CHECK(delivered.size() == before);
            return false;
        }
        return true;
    }

    void main_task() {
        af::Server server = af::start_server(
            [this](af::StreamReader r, af::StreamWriter w) { serve(r, w); }, "127.0.0.1", 0);
        af::ConnectOptions o;
        o.ssl = &tls().client;
        o.server_hostname = "localhost";
        auto rw = af::open_connection("127.0.0.1", server.port(), o);
        af::StreamReader r = rw.first;
        r.set_limit(kNoLimit);
        af::Task<void> reader = af::async([&] {
            started = true;
            std::size_t limit = kNoLimit;
            for (const Op& op : in.ops)
                if (!one(r, op, limit)) break;
            reading = false;
            try {  // a cancel that came after the last suspension
                af::sleep(std::chrono::seconds(0));
            } catch (const af::CancelledError&) {
                af::current_task().uncancel();
            }
        });
        // Cancels the reader at the input's points, while it reads.
        while (!started) af::sleep(std::chrono::seconds(0));
        for (int yields : in.cancels) {
            for (int k = 0; k < yields; ++k) af::sleep(std::chrono::seconds(0));
            if (!reading) break;
            af::TaskRef(reader).cancel();
        }
        af::await(reader);
        // The rest of the stream: all of the deliverable bytes, then the ending.
        bool failed = false;
        try {
            for (std::string s; !(s = r.read(4096)).empty();) delivered_more(s);
        } catch (const af::SslError&) {
            failed = true;
            if (r.buffered() > 0) delivered_more(r.read(static_cast<std::ptrdiff_t>(r.buffered())));
        }
        FUZZ_CHECK(delivered == deliverable);
        FUZZ_CHECK(failed ==
                   (in.ending == Ending::cut_record || in.ending == Ending::corrupt_record));
        rw.second.close();
        rw.second.wait_closed();
        server.close();
        server.wait_closed();
        FUZZ_CHECK(af::debug::live_task_count() == 1);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tls();
    static const std::size_t fds_at_start = probes::open_io_fds();
    Input in = decode(data, size);
    {
        Run run(in);
        af::run([&run] { run.main_task(); });
    }
    FUZZ_CHECK(af::debug::stack_pool_stats().live == 0);
    FUZZ_CHECK(probes::open_io_fds() == fds_at_start);
    return 0;
}

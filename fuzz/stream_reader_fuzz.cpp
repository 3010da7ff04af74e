// libFuzzer target for the stream reader's parsing. The input bytes decide the data, how it
// is cut into chunks and fed (af::debug::FedStream, with yields between chunks), the reader's
// limit, whether EOF comes, and a sequence of readline / readuntil(sep) / readexactly(n) /
// read(n) / set_limit calls. A reference model computed from the same bytes follows asyncio's
// StreamReader algorithm; every call must give the same bytes or the same exception
// (LimitOverrunError with the same consumed(), IncompleteReadError with the same partial())
// and leave the same buffer behind. Further invariants: every byte fed is delivered exactly
// once and in order (returned, in a partial, discarded by an over-long readline, or still
// buffered), a call that has to wait for data that never comes is the only thing that blocks
// (it is then cancelled and must leave the buffer intact), and nothing leaks.
//
// How arrivals are modelled: the reader task never yields on its own, so after a chunk is fed
// and the feeder yields once, the waiting reader runs and sees everything fed so far. Chunks
// fed with no yield between them therefore arrive together ("one arrival"), exactly as
// consecutive feed_data() calls do in asyncio before the reader's task runs.
//
// Deliberate difference from asyncio, documented in net.hpp: a cancelled read(-1) keeps what it
// had collected buffered (asyncio drops the blocks read so far); readline() past the limit
// throws LimitOverrunError (asyncio: ValueError) after the same discarding.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include "../test/support/process_probes.hpp"
#include "fuzz_check.hpp"
#include "fuzz_target.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace af = asyncfiber;

namespace {

const char kAlphabet[] = "ab\n\rx.yz";  // small, so that separators occur often
const char* const kSeps[] = {"\n", "\r\n", "ab", "aba", "x", "\n\n"};

struct Chunk {
    std::string data;
    int yields;  // sleep(0) calls of the feeder after feeding it
};

struct Arrival {
    std::string data;
    bool eof;
};

enum class OpKind { readline, readuntil, readexactly, read, set_limit };

struct Op {
    OpKind kind;
    std::string sep;
    long n;
};

enum class Outcome { value, limit_overrun, incomplete, blocked };

struct Expected {
    Outcome outcome = Outcome::value;
    std::string bytes;       // the value, or the IncompleteReadError's partial()
    std::size_t number = 0;  // consumed() of a LimitOverrunError, expected() of an incomplete
};

// asyncio's StreamReader over the arrivals.
struct Model {
    std::vector<Arrival> arrivals;
    std::size_t next = 0;
    std::string buf;
    bool eof = false;
    std::size_t limit = 0;

    // _wait_for_data(): the next arrival that brings bytes or EOF; false if none is left.
    bool wait() {
        while (next < arrivals.size()) {
            const Arrival& a = arrivals[next++];
            buf += a.data;
            if (a.eof) eof = true;
            if (!a.data.empty() || a.eof) return true;
        }
        return false;
    }

    std::string take(std::size_t n) {
        std::string s = buf.substr(0, n);
        buf.erase(0, n);
        return s;
    }

    Expected readuntil(const std::string& sep) {
        Expected e;
        const std::size_t m = sep.size();
        std::size_t offset = 0, isep = std::string::npos;
        for (;;) {
            if (buf.size() >= offset + m) {
                isep = buf.find(sep, offset);
                if (isep != std::string::npos) break;
                offset = buf.size() + 1 - m;
                if (offset > limit) {
                    e.outcome = Outcome::limit_overrun;
                    e.number = offset;
                    return e;
                }
            }
            if (eof) {
                e.outcome = Outcome::incomplete;
                e.bytes = take(buf.size());
                e.number = e.bytes.size() + m;
                return e;
            }
            if (!wait()) {
                e.outcome = Outcome::blocked;
                return e;
            }
        }
        if (isep > limit) {
            e.outcome = Outcome::limit_overrun;
            e.number = isep;
            return e;
        }
        e.bytes = take(isep + m);
        return e;
    }

    Expected readline() {
        Expected e = readuntil("\n");
        if (e.outcome == Outcome::incomplete) {
            e.outcome = Outcome::value;
            e.number = 0;
        } else if (e.outcome == Outcome::limit_overrun) {
            if (e.number < buf.size() && buf[e.number] == '\n')
                buf.erase(0, e.number + 1);
            else
                buf.clear();
        }
        return e;
    }

    Expected readexactly(std::size_t n) {
        Expected e;
        while (buf.size() < n) {
            if (eof) {
                e.outcome = Outcome::incomplete;
                e.bytes = take(buf.size());
                e.number = n;
                return e;
            }
            if (!wait()) {
                e.outcome = Outcome::blocked;
                return e;
            }
        }
        e.bytes = take(n);
        return e;
    }

    Expected read(long n) {
        Expected e;
        if (n == 0) return e;
        if (n < 0) {
            while (!eof) {
                if (!wait()) {
                    e.outcome = Outcome::blocked;  // the buffer keeps what came (see above)
                    return e;
                }
            }
            e.bytes = take(buf.size());
            return e;
        }
        if (buf.empty() && !eof && !wait()) {
            e.outcome = Outcome::blocked;
            return e;
        }
        e.bytes = take(static_cast<std::size_t>(n));
        return e;
    }
};

struct Input {
    std::size_t limit = 1;
    std::vector<Chunk> chunks;
    bool eof = false;
    std::vector<Op> ops;
};

Input decode(const std::uint8_t* data, std::size_t size) {
    std::size_t pos = 0;
    auto next = [&]() -> std::uint8_t { return pos < size ? data[pos++] : 0; };
    Input in;
    in.limit = 1 + next() % 48;
    std::size_t nchunks = next() % 16;
    in.eof = (next() & 1) != 0;
    for (std::size_t i = 0; i < nchunks && pos < size; ++i) {
        std::uint8_t h = next();
        Chunk c;
        std::size_t len = h % 12;
        c.yields = (h / 12) % 3;
        for (std::size_t k = 0; k < len && pos < size; ++k) c.data += kAlphabet[next() % 8];
        in.chunks.push_back(c);
    }
    while (pos < size && in.ops.size() < 32) {
        std::uint8_t op = next(), arg = next();
        Op o{OpKind::readline, std::string(), 0};
        switch (op % 5) {
        case 0:
            o.kind = OpKind::readline;
            break;
        case 1:
            o.kind = OpKind::readuntil;
            o.sep = kSeps[arg % 6];
            break;
        case 2:
            o.kind = OpKind::readexactly;
            o.n = arg % 24;
            break;
        case 3:
            o.kind = OpKind::read;
            o.n = arg % 20 == 19 ? -1 : arg % 20;
            break;
        default:
            o.kind = OpKind::set_limit;
            o.n = 1 + arg % 48;
            break;
        }
        in.ops.push_back(o);
    }
    return in;
}

// The arrivals the reader sees: chunks fed with no yield between them arrive together.
std::vector<Arrival> arrivals_of(const Input& in) {
    std::vector<Arrival> out;
    Arrival cur{std::string(), false};
    bool open = false;
    for (const Chunk& c : in.chunks) {
        cur.data += c.data;
        open = true;
        if (c.yields > 0) {
            out.push_back(cur);
            cur = Arrival{std::string(), false};
            open = false;
        }
    }
    if (in.eof) {
        cur.eof = true;
        open = true;
    }
    if (open) out.push_back(cur);
    return out;
}

struct Run {
    explicit Run(const Input& i) : in(i) {
        model.arrivals = arrivals_of(in);
        model.limit = in.limit;
        for (const Chunk& c : in.chunks) all += c.data;
    }

    const Input& in;
    Model model;
    std::string all;        // every byte fed, in order
    std::string delivered;  // returned, in partials, or discarded, in order
    std::size_t fed = 0;    // bytes fed so far
    bool blocked = false;   // the model says the current call waits forever
    bool reader_cancelled = false;

    // Every byte fed so far is delivered or buffered, once and in order.
    void check_accounting(const af::StreamReader& r) {
        FUZZ_CHECK(delivered.size() + r.buffered() == fed);
        FUZZ_CHECK(all.compare(0, delivered.size(), delivered) == 0);
    }

    void reader_task(af::StreamReader r) {
        for (const Op& op : in.ops) {
            Expected want;
            switch (op.kind) {
            case OpKind::readline:
                want = model.readline();
                break;
            case OpKind::readuntil:
                want = model.readuntil(op.sep);
                break;
            case OpKind::readexactly:
                want = model.readexactly(static_cast<std::size_t>(op.n));
                break;
            case OpKind::read:
                want = model.read(op.n);
                break;
            case OpKind::set_limit:
                model.limit = static_cast<std::size_t>(op.n);
                r.set_limit(model.limit);
                FUZZ_CHECK(r.limit() == model.limit);
                continue;
            }
            if (want.outcome == Outcome::blocked) blocked = true;
            const std::size_t before = delivered.size();
            try {
                std::string got;
                switch (op.kind) {
                case OpKind::readline:
                    got = r.readline();
                    break;
                case OpKind::readuntil:
                    got = r.readuntil(op.sep);
                    break;
                case OpKind::readexactly:
                    got = r.readexactly(static_cast<std::size_t>(op.n));
                    break;
                case OpKind::read:
                    got = r.read(op.n);
                    break;
                case OpKind::set_limit:
                    break;
                }
                FUZZ_CHECK(want.outcome == Outcome::value);
                FUZZ_CHECK(got == want.bytes);
                delivered += got;
            } catch (const af::LimitOverrunError& e) {
                FUZZ_CHECK(want.outcome == Outcome::limit_overrun);
                FUZZ_CHECK(e.consumed() == want.number);
                if (op.kind == OpKind::readline) {
                    // The over-long line (or the whole buffer) was discarded.
                    std::size_t gone = fed - delivered.size() - r.buffered();
                    delivered += all.substr(delivered.size(), gone);
                }
            } catch (const af::IncompleteReadError& e) {
                FUZZ_CHECK(want.outcome == Outcome::incomplete);
                FUZZ_CHECK(e.partial() == want.bytes);
                FUZZ_CHECK(e.expected() == want.number);
                delivered += e.partial();
            } catch (const af::CancelledError&) {
                // Only a call waiting for data that never comes is cancelled (by the feeder),
                // and it leaves every byte buffered.
                FUZZ_CHECK(want.outcome == Outcome::blocked);
                FUZZ_CHECK(delivered.size() == before);
                FUZZ_CHECK(r.buffered() == model.buf.size());
                reader_cancelled = true;
                check_accounting(r);
                return;
            }
            FUZZ_CHECK(!blocked);
            FUZZ_CHECK(r.buffered() == model.buf.size());
            FUZZ_CHECK(r.at_eof() == (model.buf.empty() && model.eof));
            check_accounting(r);
        }
    }

    void main_task() {
        af::debug::FedStream s(in.limit);
        af::StreamReader r = s.reader();
        FUZZ_CHECK(r.limit() == in.limit);
        af::Task<void> reader = af::async([this, r] { reader_task(r); });
        af::Task<void> feeder = af::async([&] {
            for (const Chunk& c : in.chunks) {
                s.feed_data(c.data);
                fed += c.data.size();
                for (int k = 0; k < c.yields; ++k) af::sleep(std::chrono::seconds(0));
            }
            if (in.eof) s.feed_eof();
            // Let the reader take the last arrival: it either ends or waits for data that
            // never comes, which only the model's "blocked" allows.
            for (int k = 0; k < 3; ++k) af::sleep(std::chrono::seconds(0));
            if (!reader.done()) {
                FUZZ_CHECK(blocked);
                af::TaskRef(reader).cancel("fuzz: no more data");
            }
        });
        af::await(feeder);
        af::await(reader);
        FUZZ_CHECK(reader_cancelled == blocked);
        // Whatever is still buffered is what the model has, plus the arrivals it never needed.
        std::string rest = model.buf;
        for (std::size_t i = model.next; i < model.arrivals.size(); ++i)
            rest += model.arrivals[i].data;
        FUZZ_CHECK(r.buffered() == rest.size());
        FUZZ_CHECK(delivered.size() + rest.size() == all.size());
        if (!rest.empty()) FUZZ_CHECK(r.read(static_cast<std::ptrdiff_t>(rest.size()) + 1) == rest);
        FUZZ_CHECK(af::debug::live_task_count() == 1);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::size_t fds_at_start = probes::open_fds();
    Input in = decode(data, size);
    {
        Run run(in);
        af::run([&run] { run.main_task(); });
    }
    FUZZ_CHECK(af::debug::stack_pool_stats().live == 0);
    FUZZ_CHECK(probes::open_fds() == fds_at_start);
    return 0;
}

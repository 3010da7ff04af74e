// Fairness under a fast peer (the cooperative budget, docs/design.md): a client streams
// 200 MiB over loopback to a server that reads it as fast as it can, while a 10 ms periodic
// timer in the server's loop measures how late it fires and another client counts its echo
// round trips with that loop. The clients are another process (bench/fairness_clients.py,
// plain blocking sockets), the same for bench/asyncio_fairness.py, this workload's asyncio
// twin; bench/fairness.sh runs both, alternately.
//   stream200M_timer_late_ms   the timer's worst lateness while the stream went on
//   stream200M_roundtrips      the other client's round trips meanwhile (printed with it)
//   stream200M_s               how long the stream took (printed with it)
// FAIR_MB (default 200) sets the size.
#include "workloads.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

namespace af = asyncfiber;
using workloads::clk;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

double stream200M_timer_late_ms() {
    return af::run([] {
        const long mib = workloads::env_long("FAIR_MB", 200);
        long received = 0;
        af::Server sink = af::start_server(
            [&](af::StreamReader r, af::StreamWriter w) {
                for (;;) {
                    std::string s = r.read(static_cast<std::ptrdiff_t>(kChunk));
                    if (s.empty()) break;
                    received += static_cast<long>(s.size());
                }
                w.close();
            },
            "127.0.0.1", 0);
        af::Server echo = af::start_server(
            [](af::StreamReader r, af::StreamWriter w) {
                try {
                    for (;;) {
                        w.write(r.readexactly(64));
                        w.drain();
                    }
                } catch (const af::IncompleteReadError&) {
                }
                w.close();
            },
            "127.0.0.1", 0);

        // The 10 ms periodic timer: a loop callback that reschedules itself, as asyncio's
        // call_later chain; lateness is measured against the time it was due.
        af::Loop& loop = af::Loop::current();
        double worst_late = 0;
        clk::time_point due = clk::now() + std::chrono::milliseconds(10);
        af::Handle timer;
        std::function<void()> tick = [&] {
            const clk::time_point now = clk::now();
            worst_late =
                std::max(worst_late, std::chrono::duration<double, std::milli>(now - due).count());
            due = now + std::chrono::milliseconds(10);
            timer = loop.call_at(due, tick);
        };
        timer = loop.call_at(due, tick);

        af::ProcessOptions opts;
        opts.stdout_mode = af::Stdio::pipe;
        af::Process clients = af::create_subprocess_exec(
            {"python3", ASYNCFIBER_BENCH_DIR "/fairness_clients.py", std::to_string(sink.port()),
             std::to_string(echo.port()), std::to_string(mib)},
            opts);
        const std::string out = clients.communicate().first;
        timer.cancel();
        workloads::check(clients.returncode() == 0, "clients exit status");
        workloads::check(received == mib << 20, "bytes received");
        std::fputs(out.c_str(), stdout);
        sink.close();
        echo.close();
        sink.wait_closed();
        echo.wait_closed();
        return worst_late;
    });
}

const workloads::Register r("stream200M_timer_late_ms", stream200M_timer_late_ms);

}  // namespace

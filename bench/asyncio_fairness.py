#!/usr/bin/env python3
"""asyncio's twin of bench/fairness_workloads.cpp: a client streams 200 MiB over loopback to a
server that reads it as fast as it can, while a 10 ms periodic timer measures how late it
fires and another client counts its echo round trips. The clients are the same process as for
ours (bench/fairness_clients.py). Prints the same lines:
  stream200M_timer_late_ms, stream200M_roundtrips, stream200M_s
FAIR_MB (default 200) sets the size."""
import asyncio
import os
import sys
import time

CHUNK = 64 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


async def main():
    mib = int(os.environ.get("FAIR_MB", "200"))
    loop = asyncio.get_running_loop()
    received = 0

    async def sink_handler(r, w):
        nonlocal received
        while True:
            s = await r.read(CHUNK)
            if not s:
                break
            received += len(s)
        w.close()

    async def echo_handler(r, w):
        try:
            while True:
                w.write(await r.readexactly(64))
                await w.drain()
        except asyncio.IncompleteReadError:
            pass
        w.close()

    sink = await asyncio.start_server(sink_handler, "127.0.0.1", 0)
    echo = await asyncio.start_server(echo_handler, "127.0.0.1", 0)
    sink_port = sink.sockets[0].getsockname()[1]
    echo_port = echo.sockets[0].getsockname()[1]

    worst_late = 0.0
    due = time.monotonic() + 0.010
    timer = None

    def tick():
        nonlocal worst_late, due, timer
        now = time.monotonic()
        worst_late = max(worst_late, (now - due) * 1e3)
        due = now + 0.010
        timer = loop.call_at(loop.time() + 0.010, tick)

    timer = loop.call_later(0.010, tick)

    clients = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(HERE, "fairness_clients.py"), str(sink_port), str(echo_port),
        str(mib), stdout=asyncio.subprocess.PIPE)
    out, _ = await clients.communicate()
    timer.cancel()
    assert clients.returncode == 0
    assert received == mib << 20, (received, mib)
    sys.stdout.write(out.decode())
    sink.close()
    echo.close()
    await sink.wait_closed()
    await echo.wait_closed()
    print(f"stream200M_timer_late_ms {worst_late:.1f}")


asyncio.run(main())

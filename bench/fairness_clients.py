#!/usr/bin/env python3
"""The clients of the fairness workload (bench/fairness_workloads.cpp, bench/asyncio_fairness.py),
one process for both servers so that they face the same peers:
  fairness_clients.py SINK_PORT ECHO_PORT MIB
One thread streams MIB MiB to the sink as fast as the kernel takes them (plain blocking
sendall, so the server always finds data waiting); another makes 64-byte round trips with the
echo server until the stream is sent and the sink has closed. Prints
  stream200M_roundtrips <round trips made while the stream was going>
  stream200M_s <seconds from the stream's start to the sink's close>"""
import socket
import sys
import threading
import time

sink_port, echo_port, mib = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
done = threading.Event()
started = threading.Event()
result = {}


def pinger():
    s = socket.create_connection(("127.0.0.1", echo_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"p" * 64
    started.wait()
    n = 0
    while not done.is_set():
        s.sendall(msg)
        got = b""
        while len(got) < 64:
            part = s.recv(64 - len(got))
            if not part:
                raise SystemExit("echo server closed")
            got += part
        n += 1
    result["roundtrips"] = n
    s.close()


t = threading.Thread(target=pinger)
t.start()
s = socket.create_connection(("127.0.0.1", sink_port))
chunk = b"s" * (64 * 1024)
total = mib << 20
started.set()
t0 = time.monotonic()
sent = 0
while sent < total:
    s.sendall(chunk)
    sent += len(chunk)
s.shutdown(socket.SHUT_WR)
s.recv(1)  # the sink closes once it has read everything
result["seconds"] = time.monotonic() - t0
done.set()
t.join()
s.close()
print(f"stream200M_roundtrips {result['roundtrips']}")
print(f"stream200M_s {result['seconds']:.3f}")

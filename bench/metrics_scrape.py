#!/usr/bin/env python3
"""Times GET /metrics on a loaded broker: 10,000 open RESP connections and 1,000 job queues, boards,
mailboxes and streams (the per-object gauges' worst case, bounded by metrics.max_objects), as issue 19's
target states it (a scrape under 50 ms). Standard library only; one run, no assertion: the figures go to
docs/benchmarks.md.

Usage: bench/metrics_scrape.py [HERALD_BINARY] [CONNECTIONS] [OBJECTS]
       bench/metrics_scrape.py target/release/herald 10000 1000
"""
import os, resource, socket, statistics, subprocess, sys, tempfile, time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/herald"
connections = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
objects = int(sys.argv[3]) if len(sys.argv) > 3 else 1000

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections + 1000), hard))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def scrape(http):
    start = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", http))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
    body = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        body += chunk
    s.close()
    return time.perf_counter() - start, body


port, http = free_port(), free_port()
env = dict(os.environ, HERALD_LIMITS__MAXCLIENTS=str(connections + 100))
log = tempfile.TemporaryFile()
server = subprocess.Popen([binary, "--port", str(port), "--http-port", str(http)], env=env, stdout=log, stderr=log)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.1)
    setup = socket.create_connection(("127.0.0.1", port))
    batch = b"".join(
        resp("JOB.SUBMIT", f"queue-{i}", "{}")
        + resp("BL.PUBLISH", f"board-{i}", '{"n":1}')
        + resp("MSG.SEND", f"dest-{i}", "topic", "payload")
        + resp("STREAM.WRITE", f"stream-{i}", "entry")
        for i in range(objects)
    )
    # A PING after the batch: its reply comes after every other one.
    setup.sendall(batch + resp("PING"))
    buf = b""
    while not buf.endswith(b"+PONG\r\n"):
        buf += setup.recv(1 << 20)
    held = []
    for i in range(connections):
        held.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(1)
    times, body = [], b""
    for _ in range(5):
        took, body = scrape(http)
        times.append(took * 1000)
    text = body.split(b"\r\n\r\n", 1)[1].decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    clients = next(line for line in text.splitlines() if line.startswith('herald_connected_clients{transport="resp"}'))
    print(f"{connections} connections ({clients.split()[-1]} counted), {objects} each of queues, boards, mailboxes, streams")
    print(f"GET /metrics: {len(text)} bytes, {series} series; 5 scrapes in ms: " + ", ".join(f"{t:.1f}" for t in times))
    print(f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (target: under 50 ms)")
    for s in held:
        s.close()
finally:
    server.terminate()
    server.wait(timeout=10)

#!/usr/bin/env python3
"""What one quota sweep's pass over the keyspace costs Redis (docs/scale-out.md, "Per-tenant quotas").

A node with a `keys` quota walks the keyspace with `SCAN cursor MATCH <pattern> COUNT 1000` every
`engine.quota_refresh_ms` (remote/quota.rs). This fills a scratch redis-server (Unix socket, no port)
with KEYS keys (`DEBUG POPULATE`), makes RUNS such passes, and prints the wall time of each and Redis's
own CPU for SCAN (INFO commandstats).

    python3 bench/quota_scan.py [KEYS] [RUNS]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

keys = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
work = tempfile.mkdtemp(prefix="quota-scan-")
path = os.path.join(work, "redis.sock")
server = subprocess.Popen(
    ["redis-server", "--port", "0", "--unixsocket", path, "--save", "", "--appendonly", "no", "--enable-debug-command", "local"],
    cwd=work,
    stdout=subprocess.DEVNULL,
)
try:
    for _ in range(100):
        if os.path.exists(path):
            break
        time.sleep(0.05)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    stream = sock.makefile("rb")

    def read():
        line = stream.readline()
        if line[:1] == b"*":
            return [read() for _ in range(int(line[1:]))]
        if line[:1] == b"$":
            n = int(line[1:])
            return None if n < 0 else stream.read(n + 2)[:-2]
        return line.rstrip(b"\r\n")

    def cmd(*parts):
        sock.sendall(b"".join([b"*%d\r\n" % len(parts)] + [b"$%d\r\n%s\r\n" % (len(p), p) for p in parts]))
        return read()

    cmd(b"DEBUG", b"POPULATE", str(keys).encode(), b"key", b"10")
    for _ in range(runs):
        started, cursor, calls = time.time(), b"0", 0
        while True:
            cursor, _found = cmd(b"SCAN", cursor, b"MATCH", b"tenant-a:*", b"COUNT", b"1000")
            calls += 1
            if cursor == b"0":
                break
        print(f"one pass over {keys} keys: {time.time() - started:.3f} s wall, {calls} SCAN calls")
    stats = [line for line in cmd(b"INFO", b"commandstats").split(b"\r\n") if line.startswith(b"cmdstat_scan:")]
    usec = int(stats[0].split(b"usec=")[1].split(b",")[0])
    print(f"redis CPU in SCAN: {usec / runs / 1e6:.3f} s per pass")
finally:
    server.kill()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)

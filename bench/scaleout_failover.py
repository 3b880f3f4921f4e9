#!/usr/bin/env python3
"""A node killed under load (issue 20): how long its clients take to be back on another node with their
streams resumed, and whether any entry was skipped or repeated.

Two Herald nodes on one redis-server. A writer on node B appends to STREAMS Herald streams at RATE
entries/s in all; one reader per stream on node A follows its stream (`STREAM.READ key FROM next BLOCK
1000`), checking that offsets arrive gap-free. After WARM seconds node A is `kill -9`ed; each reader
reconnects to node B (retrying at once, then every 10 ms) and resumes from the offset it had reached.
Reported per reader: the time from the kill to its first reply from node B ("back") and to its first
entry read there ("resumed"), with the maximum and the 99th percentile over the readers.

    python3 bench/scaleout_failover.py [HERALD_BIN] [STREAMS] [RATE] [WARM] [AFTER]

Plain sockets and a small RESP reader: nothing to install.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import free_port  # noqa: E402  (bench/compare.py)

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/herald"
STREAMS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
RATE = int(sys.argv[3]) if len(sys.argv) > 3 else 500
WARM = float(sys.argv[4]) if len(sys.argv) > 4 else 3
AFTER = float(sys.argv[5]) if len(sys.argv) > 5 else 4


class Resp:
    """One RESP2 connection: send a command, read its reply (errors raised as RuntimeError)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed")
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("unexpected reply %r" % line)

    def close(self):
        self.sock.close()


def wait_up(port):
    for _ in range(300):
        try:
            Resp(port).call("PING")
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("no server on %d" % port)


def main():
    procs = []
    tmp = tempfile.mkdtemp()
    rp = free_port()
    procs.append(subprocess.Popen(["redis-server", "--port", str(rp), "--save", "", "--dir", tmp], stdout=subprocess.DEVNULL))
    wait_up(rp)
    ports = [free_port(), free_port()]
    for p in ports:
        procs.append(subprocess.Popen([BIN, "--port", str(p), "--http-port", "0", "--engine", "redis://127.0.0.1:%d" % rp],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in ports:
        wait_up(p)
    node_a, (port_a, port_b) = procs[1], ports
    stop = threading.Event()
    killed_at = [None]
    results = []
    problems = []

    def writer():
        c = Resp(port_b)
        i, start = 0, time.monotonic()
        while not stop.is_set():
            c.call("STREAM.WRITE", "s%d" % (i % STREAMS), "entry-%d" % i)
            i += 1
            ahead = i / RATE - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    def reader(n):
        key, nxt, port = "s%d" % n, 0, port_a
        c = Resp(port)
        back = resumed = None
        while not stop.is_set():
            try:
                reply = c.call("STREAM.READ", key, "FROM", nxt, "BLOCK", 1000)
            except (OSError, ConnectionError):
                port = port_b
                while not stop.is_set():
                    try:
                        c = Resp(port)
                        break
                    except OSError:
                        time.sleep(0.01)
                continue
            if port == port_b and back is None and killed_at[0] is not None:
                back = time.monotonic() - killed_at[0]
            if reply is None:
                continue
            fields = dict(zip(reply[0::2], reply[1::2]))
            for offset, _data in fields[b"entries"]:
                if offset != nxt:
                    problems.append("%s: offset %d after %d" % (key, offset, nxt))
                nxt = offset + 1
            if port == port_b and resumed is None and fields[b"entries"] and killed_at[0] is not None:
                resumed = time.monotonic() - killed_at[0]
        results.append((back, resumed, nxt))

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(n,)) for n in range(STREAMS)]
    for t in threads:
        t.start()
    time.sleep(WARM)
    killed_at[0] = time.monotonic()
    os.kill(node_a.pid, signal.SIGKILL)
    time.sleep(AFTER)
    stop.set()
    for t in threads:
        t.join()
    for p in procs:
        p.kill()

    backs = sorted(r[0] for r in results if r[0] is not None)
    resumes = sorted(r[1] for r in results if r[1] is not None)

    def p99(xs):
        return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")

    print("%d readers on node A, %d entries/s written on node B, node A kill -9ed after %.0f s" % (STREAMS, RATE, WARM))
    print("| readers back on node B | back: p99 / max (ms) | readers resumed | resumed: p99 / max (ms) | entries read | gaps or repeats |")
    print("|---|---|---|---|---|---|")
    print("| %d/%d | %.0f / %.0f | %d/%d | %.0f / %.0f | %d | %d |" % (
        len(backs), STREAMS, p99(backs) * 1000, backs[-1] * 1000 if backs else float("nan"),
        len(resumes), STREAMS, p99(resumes) * 1000, resumes[-1] * 1000 if resumes else float("nan"),
        sum(r[2] for r in results), len(problems)))
    for p in problems[:10]:
        print("  " + p)
    return 0 if len(resumes) == STREAMS and not problems else 1


if __name__ == "__main__":
    sys.exit(main())

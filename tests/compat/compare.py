#!/usr/bin/env python3
"""Redis compatibility check: runs case files against a real redis-server and against Herald, and fails
on any reply that differs (error messages included).

Usage: compare.py HERALD_BINARY CASES.txt [CASES.txt ...]

Case files hold one command per line, shell-quoted; blank lines and lines starting with # are skipped.
A line ending in `#~` compares only the kind of reply (integer, bulk, error...), for replies that depend
on timing or randomness (PTTL, RANDOMKEY); `#shape` compares the whole structure (kinds, lengths, map
keys) but no scalar's value, for replies that nest timing-dependent values (XINFO's idle times, XADD *
IDs); `#set` compares arrays' elements in any order, at any depth (KEYS, SCAN). `!sleep SECONDS` pauses. `!repeat N
COMMAND` sends the command N times with `{i}` replaced by 1..N (to build long streams); `{x*N}` anywhere
stands for N `x`s. Each file runs on one fresh connection per server, after FLUSHALL. Standard library
only.
"""
import os, re, shlex, socket, subprocess, sys, tempfile, time


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
            return (kind.decode(), rest.decode(errors="replace"))
        if kind in (b"$", b"="):
            n = int(rest)
            return (kind.decode(), None if n < 0 else self._exact(n))
        if kind in (b"*", b">", b"~"):
            n = int(rest)
            return (kind.decode(), None if n < 0 else [self.reply() for _ in range(n)])
        if kind == b"%":
            n = int(rest)
            return ("%", [(self.reply(), self.reply()) for _ in range(n)])
        raise ValueError("unexpected reply line %r" % line)

    def call(self, args):
        self.sock.sendall(encode(args))
        return self.reply()


def shape(reply):
    """A reply with every scalar replaced by its kind; map keys, and bulk strings that are lowercase
    words (the field names of RESP2's flat maps), are kept as they are."""
    kind, value = reply
    if kind == "%":
        return (kind, [(k, shape(v)) for k, v in value])
    if isinstance(value, list):
        return (kind, [shape(v) for v in value])
    if kind == "$" and value is not None and re.fullmatch(rb"[a-z][a-z-]*", value):
        return reply
    return (kind, None if value is None else "")


def unordered_form(reply):
    """A reply with the elements of every array, at any depth, sorted (KEYS, SCAN's page of keys)."""
    kind, value = reply
    if kind == "*" and value is not None:
        return (kind, sorted((unordered_form(v) for v in value), key=repr))
    return reply


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit("%s exited early" % what)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("%s did not start" % what)


def start_herald(binary, log):
    proc = subprocess.Popen([binary, "--port", "0", "--http-port", "0"], stderr=log, stdout=log)
    for _ in range(200):
        log.flush()
        with open(log.name) as f:
            m = re.search(r"listening for RESP on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            sys.exit("herald exited early")
        time.sleep(0.05)
    sys.exit("herald did not report its port")


def start_servers(binary):
    """Starts a reference redis-server and Herald; returns their ports and a function that stops both."""
    ref_port = free_port()
    ref = subprocess.Popen(["redis-server", "--port", str(ref_port), "--save", "", "--appendonly", "no"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    herald, test_port = start_herald(binary, log)

    def stop():
        herald.terminate()
        ref.terminate()
        herald.wait(timeout=10)
        ref.wait(timeout=10)
        os.unlink(log.name)

    try:
        wait_for(ref_port, ref, "redis-server")
    except BaseException:
        stop()
        raise
    return ref_port, test_port, stop


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, files = sys.argv[1], sys.argv[2:]
    ref_port, test_port, stop = start_servers(binary)
    failures = 0
    try:
        for path in files:
            a, b = Conn(ref_port), Conn(test_port)
            a.call(["FLUSHALL"]), b.call(["FLUSHALL"])
            passed = 0
            for lineno, raw in enumerate(open(path), 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("!sleep"):
                    time.sleep(float(line.split()[1]))
                    continue
                line = re.sub(r"\{x\*(\d+)\}", lambda m: "x" * int(m.group(1)), line)
                if line.startswith("!repeat"):
                    _, n, command = line.split(" ", 2)
                    for i in range(1, int(n) + 1):
                        args = shlex.split(command.replace("{i}", str(i)))
                        ra, rb = a.call(args), b.call(args)
                        if ra == rb:
                            passed += 1
                        else:
                            failures += 1
                            print("%s:%d: %s (i=%d)\n  redis:  %r\n  herald: %r" % (path, lineno, command, i, ra, rb))
                    continue
                loose, unordered, shaped = line.endswith("#~"), line.endswith("#set"), line.endswith("#shape")
                if loose or unordered or shaped:
                    line = line.rsplit("#", 1)[0]
                args = shlex.split(line)
                ra, rb = a.call(args), b.call(args)
                if loose:
                    same = ra[0] == rb[0]
                elif shaped:
                    same = shape(ra) == shape(rb)
                elif unordered:
                    same = unordered_form(ra) == unordered_form(rb)
                else:
                    same = ra == rb
                if same:
                    passed += 1
                else:
                    failures += 1
                    print("%s:%d: %s\n  redis:  %r\n  herald: %r" % (path, lineno, line, ra, rb))
            print("%s: %d commands match" % (path, passed))
    finally:
        stop()
    if failures:
        sys.exit("\n%d replies differ from redis-server" % failures)


if __name__ == "__main__":
    main()

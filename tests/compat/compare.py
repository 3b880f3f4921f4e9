#!/usr/bin/env python3
"""Redis compatibility check: runs case files against a real redis-server and against Herald, and fails
on any reply that differs (error messages included).

Usage: compare.py HERALD_BINARY CASES.txt [CASES.txt ...]

Case files hold one command per line, shell-quoted; blank lines and lines starting with # are skipped.
A line ending in `#~` compares only the kind of reply (integer, bulk, error...), for replies that depend
on timing or randomness (PTTL, RANDOMKEY); `#shape` compares the whole structure (kinds, lengths, map
keys) but no scalar's value, for replies that nest timing-dependent values (XINFO's idle times, XADD *
IDs); `#random` compares kinds and lengths at every level and no value at all, not even a word, for
replies drawn at random (HRANDFIELD, SRANDMEMBER, SPOP, ZRANDMEMBER); `#set` compares arrays' (and
RESP3 sets') elements in any order, at any depth (KEYS, SCAN, SMEMBERS). `!sleep SECONDS` pauses. `!repeat N
COMMAND` sends the command N times with `{i}` replaced by 1..N (to build long streams); `{x*N}` anywhere
stands for N `x`s. Each file runs on one fresh connection per server, after FLUSHALL. Standard library
only.

`!send COMMAND` sends a command and reads no reply (after CLIENT REPLY OFF / SKIP: the next compared
reply proves nothing else came). A line ending in `#info` compares an INFO reply's lines in any order
with the timings (`usec=`, `usec_per_call=`) masked.

Subscribing: `!listen COMMAND` (e.g. `!listen PSUBSCRIBE __key*__:*`, `!listen SUBSCRIBE a b`) opens a
second connection on each server, sends the command there and compares its confirmations. From then on,
after every command of the file, the pushes that listener received are compared too (collected up to the
reply to a PING sent on the listener, which comes after every push already due). `!listen RESP3 COMMAND`
says HELLO 3 first. `!unlisten` closes it.
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


def is_pong(reply):
    """The reply to PING on a subscribed connection: RESP2's ["pong", ""], RESP3's +PONG."""
    kind, value = reply
    if kind == "+":
        return value == "PONG"
    return kind == "*" and value is not None and len(value) == 2 and value[0] == ("$", b"pong")


class Listener:
    """A subscribed connection: what it was pushed between two points of the file."""

    def __init__(self, port, args):
        self.conn = Conn(port)
        self.resp3 = args[0].upper() == "RESP3"
        if self.resp3:
            args = args[1:]
            self.conn.call(["HELLO", "3"])
        self.conn.sock.sendall(encode(args))
        self.first = self.pushes()

    def pushes(self):
        self.conn.sock.sendall(encode(["PING"]))
        out = []
        while True:
            r = self.conn.reply()
            if is_pong(r):
                return out
            out.append(r)

    def close(self):
        self.conn.sock.close()


def info_lines(reply):
    """An INFO reply as a sorted list of lines, timings masked (commandstats' usec fields)."""
    kind, value = reply
    if kind not in ("$", "=") or value is None:
        return reply
    text = value.decode(errors="replace")
    text = re.sub(r"usec=\d+", "usec=*", text)
    text = re.sub(r"usec_per_call=[\d.]+", "usec_per_call=*", text)
    return sorted(line for line in text.split("\r\n") if line)


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


def kinds(reply):
    """A reply with every value dropped: the kinds of its elements at every level, hence their counts."""
    kind, value = reply
    if kind == "%":
        return (kind, [(kinds(k), kinds(v)) for k, v in value])
    if isinstance(value, list):
        return (kind, [kinds(v) for v in value])
    return (kind, value is None)


def unordered_form(reply):
    """A reply with the elements of every array and RESP3 set, at any depth, sorted (KEYS, SCAN's page
    of keys, SMEMBERS)."""
    kind, value = reply
    if kind in ("*", "~") and value is not None:
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
            listeners = None

            def compare_pushes(lineno, line):
                nonlocal passed, failures
                if listeners is None:
                    return
                pa, pb = listeners[0].pushes(), listeners[1].pushes()
                if pa == pb:
                    passed += len(pa)
                else:
                    failures += 1
                    print("%s:%d: pushes after %s\n  redis:  %r\n  herald: %r" % (path, lineno, line, pa, pb))

            for lineno, raw in enumerate(open(path), 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("!sleep"):
                    time.sleep(float(line.split()[1]))
                    continue
                if line.startswith("!listen "):
                    if listeners:
                        for l in listeners:
                            l.close()
                    args = shlex.split(line.split(" ", 1)[1])
                    listeners = (Listener(ref_port, args), Listener(test_port, args))
                    if listeners[0].first == listeners[1].first:
                        passed += 1
                    else:
                        failures += 1
                        print("%s:%d: %s\n  redis:  %r\n  herald: %r" % (path, lineno, line, listeners[0].first, listeners[1].first))
                    continue
                if line == "!unlisten":
                    for l in listeners or ():
                        l.close()
                    listeners = None
                    continue
                if line.startswith("!send "):
                    args = shlex.split(line.split(" ", 1)[1])
                    # Pushes are compared after the next command with a reply: only a reply says
                    # the server has handled what was sent.
                    a.sock.sendall(encode(args)), b.sock.sendall(encode(args))
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
                        compare_pushes(lineno, command)
                    continue
                loose, unordered, shaped = line.endswith("#~"), line.endswith("#set"), line.endswith("#shape")
                drawn, stats = line.endswith("#random"), line.endswith("#info")
                if loose or unordered or shaped or drawn or stats:
                    line = line.rsplit("#", 1)[0]
                args = shlex.split(line)
                ra, rb = a.call(args), b.call(args)
                if loose:
                    same = ra[0] == rb[0]
                elif shaped:
                    same = shape(ra) == shape(rb)
                elif drawn:
                    same = kinds(ra) == kinds(rb)
                elif unordered:
                    same = unordered_form(ra) == unordered_form(rb)
                elif stats:
                    ra, rb = info_lines(ra), info_lines(rb)
                    same = ra == rb
                else:
                    same = ra == rb
                if same:
                    passed += 1
                else:
                    failures += 1
                    print("%s:%d: %s\n  redis:  %r\n  herald: %r" % (path, lineno, line, ra, rb))
                compare_pushes(lineno, line)
            for l in listeners or ():
                l.close()
            print("%s: %d replies and pushes match" % (path, passed))
    finally:
        stop()
    if failures:
        sys.exit("\n%d replies differ from redis-server" % failures)


if __name__ == "__main__":
    main()

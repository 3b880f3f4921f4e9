#!/usr/bin/env python3
"""Crash tests for Herald's persistence (issue 14), bounded in time, standard library only.

    python3 tests/durability/crash.py path/to/herald [--rounds N] [--seed S]

For each fsync policy (`always`, then `everysec`), one data directory lives through N rounds. Each round
starts the broker on it, checks that everything acknowledged in every earlier round is there exactly as
promised, runs clients that write across every domain (keys, lists, counters, MULTI/EXEC, blackboard,
jobs with chunks and completions, mailboxes sent and received, streams, bulletin publish and remove,
semaphore acquire and release) and now and then compact the log (BGREWRITEAOF), then kills the broker with SIGKILL at a random moment. A
process crash must lose nothing acknowledged under either policy (records reach the file before the
reply); nothing unacknowledged may appear half-applied (a MULTI/EXEC is all or nothing). Then the
damage cases: a torn record at the end of the log is cut off with a warning; a corrupt record in the
middle refuses to start, naming the file and offset, unless --repair; a full disk refuses writes with
MISCONF while reads go on, and writes resume by themselves once the disk has room again.
"""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Connection, RespError, fields  # noqa: E402

CLIENTS = 4


class Broker:
    def __init__(self, binary, data_dir, policy, extra=(), env=None):
        self.log_path = os.path.join(tempfile.gettempdir(), f"herald-crash-{os.getpid()}-{random.random()}.log")
        self.log = open(self.log_path, "w+")
        args = [binary, "--port", "0", "--http-port", "0", "--data-dir", data_dir, "--appendfsync", policy, *extra]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline:
            text = self.text()
            m = re.search(r"listening for RESP on [0-9.]+:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                return
            time.sleep(0.02)
        raise AssertionError("herald did not start: " + self.text())

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def close(self):
        self.kill()
        self.log.close()
        os.unlink(self.log_path)


class Ledger:
    """What the clients were told (acknowledged) and what they sent without an answer (in flight)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sets = {}  # key -> value
        self.lists = {}  # key -> [values acked]
        self.list_inflight = {}  # key -> value sent without an answer
        self.counters = {}  # key -> (acked value, in flight?)
        self.tx_sent = set()  # index of MULTI/EXEC pairs sent (acked or not)
        self.tx_acked = set()
        self.bb = {}  # (scope, key) -> (acked value, in-flight value or None)
        self.jobs = set()  # job ids acked at submit
        self.chunks = {}  # job id -> {offset: data}
        self.done = {}  # job id -> result
        self.mail_sent = {}  # dest -> set of payloads acked
        self.mail_received = {}  # dest -> set of payloads acked as received
        self.mail_recv_inflight = {}  # dest -> True if a receive was in flight
        self.streams = {}  # key -> {offset: data}
        self.items = {}  # (board, id) -> json
        self.removed = set()  # (board, id) acked as removed
        self.remove_inflight = set()
        self.sem_held = set()  # (name, token) acked as acquired and not released
        self.sem_release_inflight = set()
        self.max_token = 0  # the largest fencing token acknowledged


def worker(port, ledger, c, rnd, stop, round_no):
    conn = Connection(port)
    i = 0
    tag = f"r{round_no}c{c}"
    try:
        while not stop.is_set():
            i += 1
            op = i % 11
            if op == 0:
                key, value = f"k:{tag}:{i}", f"v{i}"
                if conn.call("SET", key, value) == "OK":
                    with ledger.lock:
                        ledger.sets[key] = value.encode()
            elif op == 1:
                key = f"l:{tag}"
                with ledger.lock:
                    ledger.list_inflight[key] = str(i).encode()
                if isinstance(conn.call("RPUSH", key, i), int):
                    with ledger.lock:
                        ledger.lists.setdefault(key, []).append(str(i).encode())
                        ledger.list_inflight.pop(key, None)
            elif op == 2:
                key = f"n:{tag}"
                with ledger.lock:
                    acked = ledger.counters.get(key, (0, False))[0]
                    ledger.counters[key] = (acked, True)
                r = conn.call("INCR", key)
                with ledger.lock:
                    ledger.counters[key] = (r, False)
            elif op == 3:
                with ledger.lock:
                    ledger.tx_sent.add(f"{tag}:{i}")
                conn.call("MULTI")
                conn.call("SET", f"ta:{tag}:{i}", "x")
                conn.call("RPUSH", f"tb:{tag}:{i}", "x")
                if conn.call("EXEC") == [b"OK", 1]:
                    with ledger.lock:
                        ledger.tx_acked.add(f"{tag}:{i}")
            elif op == 4:
                scope, key = f"s:{tag}", "key"
                with ledger.lock:
                    old = ledger.bb.get((scope, key), (None, None))[0]
                    ledger.bb[(scope, key)] = (old, str(i).encode())
                if isinstance(conn.call("BB.SET", scope, key, i), int):
                    with ledger.lock:
                        ledger.bb[(scope, key)] = (str(i).encode(), None)
            elif op == 5:
                jid = f"j:{tag}:{i}"
                if conn.call("JOB.SUBMIT", f"q:{tag}", f"payload{i}", "ID", jid) == jid.encode():
                    with ledger.lock:
                        ledger.jobs.add(jid)
            elif op == 6:
                claimed = fields(conn.call("JOB.CLAIM", f"q:{tag}"))
                if claimed:
                    jid, token = claimed["id"].decode(), claimed["token"]
                    offset = conn.call("JOB.CHUNK", jid, token, f"chunk{i}")
                    if isinstance(offset, int):
                        with ledger.lock:
                            ledger.chunks.setdefault(jid, {})[offset] = f"chunk{i}".encode()
                    if conn.call("JOB.COMPLETE", jid, token, f"result{i}") == "OK":
                        with ledger.lock:
                            ledger.done[jid] = f"result{i}".encode()
            elif op == 7:
                dest = f"d:{tag}"
                if isinstance(conn.call("MSG.SEND", dest, "t", f"m{i}"), int):
                    with ledger.lock:
                        ledger.mail_sent.setdefault(dest, set()).add(f"m{i}".encode())
                if rnd.random() < 0.6:
                    with ledger.lock:
                        ledger.mail_recv_inflight[dest] = True
                    got = conn.call("MSG.RECV", dest, "t")
                    with ledger.lock:
                        if got is not None:
                            ledger.mail_received.setdefault(dest, set()).add(got)
                        ledger.mail_recv_inflight[dest] = False
            elif op == 8:
                key = f"st:{tag}"
                offset = conn.call("STREAM.WRITE", key, f"e{i}")
                if isinstance(offset, int):
                    with ledger.lock:
                        ledger.streams.setdefault(key, {})[offset] = f"e{i}".encode()
            elif op == 9:
                board = f"b:{tag}"
                item = f'{{"i":{i}}}'
                iid = conn.call("BL.PUBLISH", board, item)
                if isinstance(iid, bytes):
                    with ledger.lock:
                        ledger.items[(board, iid)] = item.encode()
                    if rnd.random() < 0.5:
                        with ledger.lock:
                            ledger.remove_inflight.add((board, iid))
                        if conn.call("BL.REMOVE", board, iid) == 1:
                            with ledger.lock:
                                ledger.removed.add((board, iid))
                                ledger.remove_inflight.discard((board, iid))
            elif op == 10:
                name = f"sem:{tag}"
                token = conn.call("SEM.ACQUIRE", name, 1000, "LEASE", 600000)
                if isinstance(token, int):
                    with ledger.lock:
                        ledger.sem_held.add((name, token))
                        ledger.max_token = max(ledger.max_token, token)
                    if rnd.random() < 0.5:
                        with ledger.lock:
                            ledger.sem_held.discard((name, token))
                            ledger.sem_release_inflight.add((name, token))
                        if conn.call("SEM.RELEASE", name, token) == "OK":
                            with ledger.lock:
                                ledger.sem_release_inflight.discard((name, token))
    except (OSError, EOFError):
        pass  # the broker was killed under us
    finally:
        conn.close()


def check(port, ledger):
    """Everything acknowledged is there, and nothing is half applied."""
    c = Connection(port)
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    for key, value in ledger.sets.items():
        expect(c.call("GET", key) == value, f"SET {key} acknowledged but GET gives {c.call('GET', key)!r}")
    for key, acked in ledger.lists.items():
        got = c.call("LRANGE", key, 0, -1)
        extra = ledger.list_inflight.get(key)
        expect(got == acked or (extra is not None and got == acked + [extra]), f"list {key}: acked {acked}, found {got}")
    for key, (acked, inflight) in ledger.counters.items():
        got = int(c.call("GET", key) or 0)
        expect(got == acked or (inflight and got == acked + 1), f"counter {key}: acked {acked}, found {got}")
    for t in ledger.tx_sent:
        a, b = c.call("EXISTS", f"ta:{t}"), c.call("EXISTS", f"tb:{t}")
        expect(a == b, f"MULTI/EXEC {t} half applied: ta={a} tb={b}")
        if t in ledger.tx_acked:
            expect(a == 1, f"MULTI/EXEC {t} acknowledged but missing")
    for (scope, key), (acked, inflight) in ledger.bb.items():
        got = fields(c.call("BB.GET", scope, key))
        value = got["value"] if got else None
        expect(value == acked or (inflight is not None and value == inflight), f"BB {scope}/{key}: acked {acked}, found {value}")
    for jid in ledger.jobs:
        expect(c.call("JOB.STATUS", jid) is not None, f"job {jid} acknowledged but gone")
    for jid, result in ledger.done.items():
        status = fields(c.call("JOB.STATUS", jid))
        expect(status and status["state"] == b"done", f"job {jid} completed but state {status and status['state']}")
        expect(c.call("JOB.RESULT", jid) == result, f"job {jid} result lost")
    for jid, chunks in ledger.chunks.items():
        read = fields(c.call("JOB.READ", jid, "FROM", 0, "COUNT", 1000))
        got = {e[0]: e[1] for e in read["entries"]} if read else {}
        for offset, data in chunks.items():
            expect(got.get(offset) == data, f"job {jid} chunk {offset} acknowledged but missing")
    for dest, sent in ledger.mail_sent.items():
        remaining = []
        while True:
            m = c.call("MSG.RECV", dest, "t")
            if m is None:
                break
            remaining.append(m)
        received = ledger.mail_received.get(dest, set())
        expect(len(remaining) == len(set(remaining)), f"mailbox {dest}: a message twice")
        expect(not (set(remaining) & received), f"mailbox {dest}: received messages came back: {set(remaining) & received}")
        lost = sent - set(remaining) - received
        allowance = 1 if ledger.mail_recv_inflight.get(dest) else 0
        expect(len(lost) <= allowance, f"mailbox {dest}: acknowledged messages lost: {lost}")
        # What was still waiting has now been consumed by this check: remember it as received.
        ledger.mail_received.setdefault(dest, set()).update(remaining)
        ledger.mail_received[dest].update(lost)
    for key, entries in ledger.streams.items():
        read = fields(c.call("STREAM.READ", key, "FROM", 0, "COUNT", 100000))
        got = {e[0]: e[1] for e in read["entries"]} if read else {}
        for offset, data in entries.items():
            expect(got.get(offset) == data, f"stream {key} entry {offset} acknowledged but missing")
    for (board, iid), item in ledger.items.items():
        got = fields(c.call("BL.GET", board, iid))
        if (board, iid) in ledger.removed:
            expect(got is None, f"item {board}/{iid} removed (acknowledged) but back")
        elif (board, iid) not in ledger.remove_inflight:
            expect(got is not None and got["item"] == item, f"item {board}/{iid} acknowledged but missing")
    for name in {n for n, _ in ledger.sem_held}:
        info = fields(c.call("SEM.INFO", name))
        holders = {fields(h)["token"] for h in info["holders"]}
        for _, token in {x for x in ledger.sem_held if x[0] == name}:
            expect(token in holders, f"semaphore {name}: acquired token {token} (acknowledged) not held")
    if ledger.max_token:
        fresh = c.call("SEM.ACQUIRE", "sem:fresh", 1)
        expect(isinstance(fresh, int) and fresh > ledger.max_token, f"fencing token went back: {fresh} after {ledger.max_token}")
        c.call("SEM.RELEASE", "sem:fresh", fresh)
    c.close()
    return failures


def crash_rounds(binary, policy, rounds, rnd):
    data = tempfile.mkdtemp(prefix=f"herald-crash-{policy}-")
    ledger = Ledger()
    try:
        for r in range(rounds):
            broker = Broker(binary, data, policy)
            if broker.port is None:
                raise AssertionError(f"{policy} round {r}: herald refused to start on its own files:\n{broker.text()}")
            failures = check(broker.port, ledger)
            if failures:
                raise AssertionError(f"{policy} round {r}: after a SIGKILL:\n  " + "\n  ".join(failures[:20]) + "\n" + broker.text()[-3000:])
            stop = threading.Event()
            threads = [threading.Thread(target=worker, args=(broker.port, ledger, c, random.Random(rnd.random()), stop, r)) for c in range(CLIENTS)]
            for t in threads:
                t.start()
            if rnd.random() < 0.5:
                time.sleep(rnd.uniform(0.05, 0.4))
                try:
                    Connection(broker.port).call("BGREWRITEAOF")
                except (OSError, EOFError):
                    pass
            time.sleep(rnd.uniform(0.1, 0.9))
            broker.kill()
            stop.set()
            for t in threads:
                t.join()
            broker.close()
            acked = len(ledger.sets) + sum(map(len, ledger.lists.values())) + len(ledger.tx_acked) + len(ledger.jobs) + len(ledger.done)
            acked += sum(map(len, ledger.mail_sent.values())) + sum(map(len, ledger.streams.values())) + len(ledger.items)
            print(f"ok - {policy} round {r + 1}/{rounds}: killed under load; {acked} acknowledged writes so far, all checked on restart")
        broker = Broker(binary, data, policy)
        failures = check(broker.port, ledger)
        broker.close()
        if failures:
            raise AssertionError(f"{policy}: after the last SIGKILL:\n  " + "\n  ".join(failures[:20]))
        return data
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)
        raise


def last_log(data):
    manifest = open(os.path.join(data, "MANIFEST")).read().split("\n")
    return os.path.join(data, [line.split(" ", 1)[1] for line in manifest if line.startswith("log ")][-1])


def damage_cases(binary, data):
    """Torn tail: cut off and logged. Corrupt middle: refused with file and offset, unless --repair."""
    broker = Broker(binary, data, "always")
    c = Connection(broker.port)
    for i in range(50):
        c.call("SET", f"damage:{i}", i)
    c.close()
    broker.kill()
    broker.close()
    log = last_log(data)
    good = os.path.getsize(log)
    with open(log, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34\x56\x78partial")  # a frame header promising 64 bytes, then 7
    broker = Broker(binary, data, "always")
    text = broker.text()
    assert broker.port is not None, "a torn tail must not stop the start: " + text
    assert "incomplete record" in text and "cutting off its last 15 bytes" in text, text
    assert os.path.getsize(log) == good, "the torn tail was cut off"
    assert Connection(broker.port).call("GET", "damage:49") == b"49"
    broker.close()
    print("ok - a torn record at the end of the log is cut off, with the byte count logged")

    size = os.path.getsize(log)
    with open(log, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    broker = Broker(binary, data, "always")
    broker.proc.wait(timeout=20)
    text = broker.text()
    assert broker.port is None and broker.proc.returncode != 0, "a corrupt record in the middle must refuse to start"
    assert os.path.basename(log) in text and "corrupt at offset" in text and "--repair" in text, text
    broker.close()
    print("ok - a corrupt record in the middle refuses the start, naming the file and offset")
    broker = Broker(binary, data, "always", extra=["--repair"])
    assert broker.port is not None, broker.text()
    assert "drops that record" in broker.text()
    assert isinstance(Connection(broker.port).call("DBSIZE"), int)
    broker.close()
    print("ok - --repair starts, dropping the corrupt record and what follows it")


def full_disk(binary):
    """Writes refused with MISCONF while the disk is full, reads going on; resumed once there is room."""
    mount = tempfile.mkdtemp(prefix="herald-full-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], capture_output=True).returncode == 0
    env = dict(os.environ)
    clear = os.path.join(mount, "clear") if not mounted else None
    if not mounted:
        print("# tmpfs cannot be mounted here: failing writes through HERALD_FAULT_LOG_WRITES instead")
        env.update(HERALD_FAULT_LOG_WRITES="fail", HERALD_FAULT_LOG_WRITES_CLEAR=os.path.join(tempfile.gettempdir(), f"herald-clear-{os.getpid()}"))
        clear = env["HERALD_FAULT_LOG_WRITES_CLEAR"]
    data = os.path.join(mount, "data")
    try:
        if mounted:
            broker = Broker(binary, data, "always")
            # Fill the disk, leaving a little room.
            filler = os.path.join(mount, "filler")
            with open(filler, "wb") as f:
                try:
                    f.write(b"\0" * (2 * 1024 * 1024))
                except OSError:
                    pass
        else:
            broker = Broker(binary, data, "always", env=env)
        c = Connection(broker.port)
        refused = None
        value = "x" * 4096
        for i in range(2000):
            try:
                r = c.call("SET", f"fill:{i}", value)
            except (OSError, EOFError):
                c = Connection(broker.port)  # closed without its reply: not acknowledged
                continue
            if isinstance(r, RespError):
                refused = r
                break
        assert refused is not None and refused.startswith("MISCONF"), f"writes on a full disk: {refused!r}"
        assert c.call("PING") == "PONG" and isinstance(c.call("DBSIZE"), int), "reads go on while writes are refused"
        info = c.call("INFO", "persistence").decode()
        assert "aof_last_write_status:err" in info, info
        print(f"ok - a full disk refuses writes ({refused[:60]}...), reads go on")
        if mounted:
            os.unlink(filler)
        else:
            open(clear, "w").close()
        deadline = time.time() + 10
        while time.time() < deadline:
            r = c.call("SET", "after-full", "ok")
            if r == "OK":
                break
            time.sleep(0.1)
        assert r == "OK", f"writes did not resume once the disk had room: {r!r}"
        c.close()
        broker.stop()
        broker.close()
        broker = Broker(binary, data, "always", env=env)
        c = Connection(broker.port)
        assert c.call("GET", "after-full") == b"ok"
        c.close()
        broker.close()
        print("ok - writes resume by themselves once the disk has room, and what they acknowledged survives")
    finally:
        if mounted:
            subprocess.run(["umount", mount], capture_output=True)
        elif clear and os.path.exists(clear):
            os.unlink(clear)
        shutil.rmtree(mount, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("herald")
    ap.add_argument("--rounds", type=int, default=10, help="kill points per fsync policy")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"# seed {seed} (rerun with --seed {seed})")
    rnd = random.Random(seed)
    data = crash_rounds(args.herald, "always", args.rounds, rnd)
    shutil.rmtree(data, ignore_errors=True)
    data = crash_rounds(args.herald, "everysec", args.rounds, rnd)
    try:
        damage_cases(args.herald, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    full_disk(args.herald)
    print("all durability tests passed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Atomic read-modify-write instructions per request, from a per-instruction callgrind profile.

    VALGRIND_ARGS=--dump-instr=yes KEEP=/tmp/cg bench/instructions.sh target/release/herald get 100000 16
    python3 bench/locked.py /tmp/cg/callgrind.herald.get 100000

A `lock`-prefixed instruction (or an `xchg` with memory) costs tens of cycles and orders the pipeline,
yet counts as one instruction in bench/instructions.sh: this counts them apart (executions per request,
by function and by source line), for the server's binary and its shared libraries (objdump finds them;
callgrind reports each object's addresses from its own base). Standard library only, plus objdump and
addr2line.
"""
import collections, re, subprocess, sys

LOCKED = re.compile(r"\s+([0-9a-f]+):\s+(lock |xchg\s+\S+,\(|xchg\s+\S+\()")


def locked_addresses(path, cache={}):
    if path not in cache:
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True).stdout
        cache[path] = {int(m.group(1), 16) for m in map(LOCKED.match, out.splitlines()) if m}
    return cache[path]


def main(profile, requests):
    names = {"ob": {}, "fn": {}}

    def name(kind, line):
        m = re.match(r"c?%s=\((\d+)\)(?: (.*))?" % kind, line.strip())
        if m and m.group(2):
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1)) if m else None

    obj = fn = None
    locks, at, skip, total, locked = set(), 0, False, 0, 0
    by_fn, by_addr = collections.Counter(), collections.Counter()
    for line in open(profile):
        first = line[:1]
        if first.isdigit() or first in "+-*":
            parts = line.split()
            t = parts[0]
            at = at if t == "*" else at + int(t[1:], 0) if t[0] == "+" else at - int(t[1:], 0) if t[0] == "-" else int(t, 0)
            if skip:  # the inclusive cost of the call on the line before
                skip = False
                continue
            cost = int(parts[2]) if len(parts) > 2 else 0
            total += cost
            if at in locks:
                locked += cost
                by_fn[fn] += cost
                by_addr[(obj, at)] += cost
        elif line.startswith("calls="):
            skip = True
        elif line.startswith("ob="):
            obj = name("ob", line)
            locks = locked_addresses(obj) if obj else set()
        elif line.startswith("cob="):
            name("ob", line)
        elif line.startswith("fn="):
            fn = name("fn", line)
        elif line.startswith("cfn="):
            name("fn", line)
    if "positions: instr" not in open(profile).read(4096):
        sys.exit("no per-instruction positions: record with VALGRIND_ARGS=--dump-instr=yes")
    print("%.0f instructions per request, %.2f locked" % (total / requests, locked / requests))
    print("\nby function:")
    for f, n in by_fn.most_common(15):
        print("%7.2f  %s" % (n / requests, (f or "?")[:140]))
    print("\nby source line (the innermost inlined frame first):")
    for (o, a), n in by_addr.most_common(15):
        if n / requests < 0.05:
            break
        lines = subprocess.run(["addr2line", "-i", "-e", o, hex(a)], capture_output=True, text=True).stdout.splitlines()
        print("%7.2f  %s" % (n / requests, " <- ".join(l.rsplit("/", 1)[-1].split(" (")[0] for l in lines[:5])))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

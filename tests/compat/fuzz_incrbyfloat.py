#!/usr/bin/env python3
"""Differential fuzz of INCRBYFLOAT: random sequences against a real redis-server and against Herald,
stopping at the first reply that differs. Not part of CI (a few seconds for the default count).

Usage: fuzz_incrbyfloat.py HERALD_BINARY [SEQUENCES [SEED]]

Each sequence uses its own key: sometimes a SET of a random stored value first, then a few INCRBYFLOATs
with random increments: decimals of many digits and exponents, tenths, hexadecimal floats, binary
fractions that tie at the 17th decimal, sums that tie at the 64th bit, values near the long double range, the negation of the current
value (cancellation), and text that string2ld refuses.
"""
import os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Conn, start_servers  # noqa: E402


def decimal(rng):
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
    point = rng.randint(0, len(digits))
    text = digits[:point] + ("." if rng.random() < 0.8 else "") + digits[point:]
    if text == ".":
        text = "0"
    r = rng.random()
    if r < 0.3:
        text += "e%d" % rng.randint(-25, 25)
    elif r < 0.35:
        text += "E%+d" % rng.choice([rng.randint(-4960, -4900), rng.randint(4900, 4940), rng.randint(-400, 400)])
    return text


def hexfloat(rng):
    digits = "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.randint(1, 20)))
    point = rng.randint(0, len(digits))
    text = "0x" + digits[:point] + "." + digits[point:]
    if rng.random() < 0.6:
        text += "p%d" % rng.randint(-120, 120)
    return text


def tie(rng):
    # An odd multiple of 2^-n, n around 18..70: exact binary fractions, some ending in a 5 at the 18th
    # decimal.
    return "0x%xp-%d" % (rng.randrange(1, 1 << rng.randint(1, 64), 2), rng.randint(18, 70))


def near_tie(rng):
    # 64-bit mantissas with the top bit and at most a few low bits set, or all set: around 2^63 they
    # are integers with an odd last bit, around 0.5 they are a half and a sticky bit below it.
    mantissa = rng.choice([(1 << 63) | rng.getrandbits(2), (1 << 64) - 1, (1 << 63) | 1])
    return "0x%xp%d" % (mantissa, rng.choice([rng.randint(-2, 2), rng.randint(-68, -62)]))


def number(rng, current):
    r = rng.random()
    if r < 0.30:
        text = decimal(rng)
    elif r < 0.45:
        text = rng.choice(["0.1", "0.2", "0.3", "-0.1", "1.1", "0.01", "1e17", "1", "-1", "0", "-0", "5.0e3", "1.1e-10"])
    elif r < 0.55:
        text = hexfloat(rng)
    elif r < 0.65:
        text = tie(rng)
    elif r < 0.75 and current is not None:
        # Cancel the current value, give or take a little.
        text = current[1:] if current.startswith("-") else "-" + current
        if rng.random() < 0.5:
            text = text + rng.choice(["1", "9", "5", "0001"])
    elif r < 0.78:
        text = near_tie(rng)
    elif r < 0.82:
        text = rng.choice(["1.18", "-1.18", "1.189731495357231765", "9.99", "-5"]) + "e" + str(rng.choice([4931, 4932, 4000, 300, -4940, -4950]))
    elif r < 0.90:
        text = rng.choice(["inf", "-inf", "nan", "Infinity", " 1", "1 ", "", "1,5", "0x", "1e", "abc", "--1", "1e99999", "+.5", "0x1p", ".e1"])
    else:
        text = str(rng.randint(-10**20, 10**20))
    if text and text[0] not in "-+" and rng.random() < 0.3:
        text = "-" + text
    return text


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    sequences = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    ref_port, test_port, stop = start_servers(binary)
    commands, kinds = 0, {}
    try:
        a, b = Conn(ref_port), Conn(test_port)
        a.call(["FLUSHALL"]), b.call(["FLUSHALL"])
        for seq in range(sequences):
            key, current, history = "k%d" % seq, None, []
            steps = []
            if rng.random() < 0.4:
                steps.append(["SET", key, number(rng, None)])
            steps += [None] * rng.randint(1, 8)
            for step in steps:
                args = step or ["INCRBYFLOAT", key, number(rng, current)]
                ra, rb = a.call(args), b.call(args)
                commands += 1
                kinds[ra[0]] = kinds.get(ra[0], 0) + 1
                history.append(args)
                if ra != rb:
                    print("mismatch in sequence %d (seed %d):" % (seq, seed))
                    for h in history:
                        print("  %r" % (h,))
                    print("  redis:  %r\n  herald: %r" % (ra, rb))
                    sys.exit(1)
                if ra[0] == "$" and args[0] == "INCRBYFLOAT":
                    current = ra[1].decode()
        print("%d sequences, %d commands (replies by kind %r): no mismatch (seed %d)"
              % (sequences, commands, kinds, seed))
    finally:
        stop()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""DUMP / RESTORE across servers: every value type Herald serializes, DUMPed by redis-server 7.0 and
RESTOREd into Herald, and DUMPed by Herald and RESTOREd into redis-server; both must then hold the
same contents and report the same encoding. Usage: dump_cross.py HERALD_BINARY. Standard library only."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Conn, start_servers  # noqa: E402

BUILD = [
    ["SET", "s_short", "hello"],
    ["SET", "s_int", "42"],
    ["SET", "s_neg", "-2147483648"],
    ["SET", "s_long", "x" * 300],
    ["SET", "s_text", "the quick brown fox jumps over the lazy dog, again and again and again"],
    ["RPUSH", "l_small", "a", "1", "-5", "300", "70000", "9999999999", "text"],
    ["RPUSH", "l_big"] + ["element-%d-%s" % (i, "y" * (i % 50)) for i in range(3000)],
    ["SADD", "set_ints", "3", "-7", "100000", "5"],
    ["SADD", "set_words", "apple", "banana", "cherry"],
    ["SADD", "set_big"] + [str(i) for i in range(600)],
    ["HSET", "h_small", "f1", "v1", "n", "12", "neg", "-300", "e", ""],
    ["HSET", "h_big"] + sum([["field%d" % i, "value%d" % i] for i in range(600)], []),
    ["HSET", "h_longval", "f", "z" * 100],
    ["ZADD", "z_small", "1.5", "a", "-3", "b", "0", "c", "1e10", "d", "inf", "e"],
    ["ZADD", "z_big"] + sum([[str(i / 7), "member%d" % i] for i in range(300)], []),
    # Streams: explicit IDs (the same on both servers), nodes split at 100 entries, fields other than
    # the master's, tombstones, an emptied stream, and groups with pending entries and consumers.
    ["XADD", "x_small", "1-1", "name", "ada", "n", "7"],
    ["XADD", "x_small", "1-2", "name", "bob", "n", "-300"],
    ["XADD", "x_small", "5-0", "other", "field", "x", "y", "z", "12345678901"],
    ["XADD", "x_big", "1-1"] + ["f", "v" * 20, "n", "0"],
] + [["XADD", "x_big", "%d-0" % (i + 2), "f", "v%d" % i, "n", str(i)] for i in range(250)] + [
    ["XDEL", "x_big", "3-0", "50-0", "200-0"],
    ["XADD", "x_empty", "9-9", "a", "b"],
    ["XDEL", "x_empty", "9-9"],
    ["XGROUP", "CREATE", "x_big", "g1", "0"],
    ["XGROUP", "CREATE", "x_big", "g2", "$"],
    ["XGROUP", "CREATE", "x_big", "g3", "100-0"],
    ["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", "x_big", ">"],
    ["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "x_big", ">"],
    ["XACK", "x_big", "g1", "2-0"],
    ["XGROUP", "CREATECONSUMER", "x_big", "g2", "idle"],
]

KEYS = list(dict.fromkeys(cmd[1] for cmd in BUILD if cmd[0] != "XGROUP" and cmd[0] != "XREADGROUP"))


def read(conn, key):
    kind = conn.call(["TYPE", key])[1]
    if kind == "string":
        contents = conn.call(["GET", key])
    elif kind == "list":
        contents = conn.call(["LRANGE", key, "0", "-1"])
    elif kind == "set":
        contents = sorted(v for _, v in conn.call(["SMEMBERS", key])[1])
    elif kind == "hash":
        flat = [v for _, v in conn.call(["HGETALL", key])[1]]
        contents = sorted(zip(flat[::2], flat[1::2]))
    elif kind == "stream":
        contents = (conn.call(["XRANGE", key, "-", "+"]), conn.call(["XINFO", "STREAM", key, "FULL"]))
    else:
        contents = conn.call(["ZRANGE", key, "0", "-1", "WITHSCORES"])
    return kind, contents, conn.call(["OBJECT", "ENCODING", key])


def main():
    ref_port, test_port, stop = start_servers(sys.argv[1])
    failures = 0
    try:
        redis, herald = Conn(ref_port), Conn(test_port)
        for c in (redis, herald):
            c.call(["FLUSHALL"])
            for cmd in BUILD:
                c.call(cmd)
        for src, dst, direction in ((redis, herald, "redis -> herald"), (herald, redis, "herald -> redis")):
            for key in KEYS:
                kind, payload = src.call(["DUMP", key])
                back = key + ":restored"
                # The payload is binary: sent as raw bytes, not through Conn.call's text encoding.
                dst.sock.sendall(b"*4\r\n$7\r\nRESTORE\r\n$%d\r\n%s\r\n$1\r\n0\r\n$%d\r\n%s\r\n"
                                 % (len(back), back.encode(), len(payload), payload))
                reply = dst.reply()
                if reply != ("+", "OK"):
                    failures += 1
                    print("%s: RESTORE %s: %r" % (direction, key, reply))
                    continue
                want, got = read(src, key), read(dst, back)
                if want != got:
                    failures += 1
                    print("%s: %s differs\n  source:   %r\n  restored: %r" % (direction, key, want[:1] + (want[2],), got[:1] + (got[2],)))
                dst.call(["DEL", back])
        print("dump_cross: %d keys each way, %d failures" % (len(KEYS), failures))
    finally:
        stop()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

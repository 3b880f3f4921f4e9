#!/usr/bin/env python3
"""Side-by-side measurements of Herald and redis-server in one session on this machine.

    python3 bench/compare.py resp      # redis-benchmark: throughput, p99, server CPU per request
    python3 bench/compare.py memory    # used_memory and RSS for 1M keys of 100-byte values
    python3 bench/compare.py types     # HSET, SADD, ZADD, ZPOPMIN at -P 16: server CPU per request
    python3 bench/compare.py typesmem  # used_memory of a 1M-field hash, 1M-member set and sorted set
    python3 bench/compare.py board-memory  # used_memory per 1 KB bulletin item against the same JSON in a
                                       # Redis list (BL.PUBLISH vs RPUSH, 100k items)
    python3 bench/compare.py fanout    # pub-sub fan-out (target/release/fanout), throughput and latency
    python3 bench/compare.py fanout-p99 [RUNS]  # the 1,000-subscriber, 10/s latency row alone, alternating
    python3 bench/compare.py ws        # fan-out to WebSocket vs RESP subscribers (target/release/wsfanout),
                                       # CPU per delivery, latency, memory per idle connection
    python3 bench/compare.py durability  # persistence: everysec and always against redis-server's AOF,
                                       # p99 under a compaction of 1M keys, restart time for 1M keys
    python3 bench/compare.py xstreams  # Redis streams: XADD server CPU per request (-P 1 and 16), and
                                       # used_memory for a 1M-entry stream
    python3 bench/compare.py domains   # blackboard vs SET/GET, lists, BLPOP hand-off, jobs (both flows)
                                       # against the Redis-list idiom, bulletin boards against LMOVE/LREM

The resp, types, memory and typesmem modes also write their Herald/Redis ratios as bar charts
(docs/charts/<mode>-*.svg, hand-written SVG that docs/benchmarks.md embeds), so the charts are
regenerated with the figures.

Both servers are started here on free ports (herald from target/release/herald; build it first with
`cargo build --release -p herald-broker -p herald-bench`) and stopped afterwards. Server CPU is read from
/proc/PID/stat (user + system) around each run, so "us/req" is the server's own CPU per request,
independent of how fast the load generator is. Results print as markdown tables for docs/benchmarks.md.
Standard library only.
"""
import os, re, resource, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402  (bench/svg.py: the charts written beside the tables)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERALD = os.environ.get("HERALD", os.path.join(ROOT, "target", "release", "herald"))
FANOUT = os.path.join(ROOT, "target", "release", "fanout")
WSFANOUT = os.path.join(ROOT, "target", "release", "wsfanout")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("server on %d did not start" % port)


class Server:
    def __init__(self, name, argv, port, env=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_port(port)

    def cpu(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def info(self, section):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "INFO", section], capture_output=True, text=True).stdout
        return dict(l.split(":", 1) for l in out.splitlines() if ":" in l)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_both(herald_env=None):
    rport, hport = free_port(), free_port()
    redis = Server("redis", ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"], rport)
    if herald_env:
        os.environ.update(herald_env)
    herald = Server("herald", [HERALD, "--port", str(hport), "--http-port", "0"], hport)
    return redis, herald


def redis_benchmark(server, test, requests, clients, pipeline, keyspace=100000):
    cpu0 = server.cpu()
    spread = ["-r", str(keyspace)] if keyspace else []
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", test, "-n", str(requests),
                          "-c", str(clients), "-P", str(pipeline), "--csv"] + spread,
                         capture_output=True, text=True).stdout
    cpu = server.cpu() - cpu0
    row = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')][0]
    cols = [c.strip('"') for c in row.split(",")]
    rps, p99 = float(cols[1]), float(cols[6])
    return rps, p99, cpu * 1e6 / requests


def resp(args):
    requests = int(args[0]) if args else 200000
    redis, herald = start_both()
    print("redis-benchmark -n %d -c 50 -r 100000, both servers started by bench/compare.py\n" % requests)
    print("| test | -P | redis rps | herald rps | ratio | redis p99 ms | herald p99 ms | redis us/req | herald us/req | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cpu, p99 = [], []
    try:
        for pipeline in (1, 16):
            for test in ("set", "get", "incr", "mset"):
                r = redis_benchmark(redis, test, requests, 50, pipeline)
                h = redis_benchmark(herald, test, requests, 50, pipeline)
                print("| %s | %d | %.0f | %.0f | %.2fx | %.3f | %.3f | %.2f | %.2f | %.2fx |" % (
                    test, pipeline, r[0], h[0], h[0] / r[0], r[1], h[1], r[2], h[2], h[2] / r[2]))
                sys.stdout.flush()
                cpu.append(("%s -P %d" % (test.upper(), pipeline), h[2] / r[2]))
                p99.append(("%s -P %d" % (test.upper(), pipeline), h[1] / r[1] if r[1] else float("nan")))
    finally:
        redis.stop()
        herald.stop()
    print("\n" + svg.ratio_bars("resp-cpu", "Server CPU per request", cpu, subtitle="Herald / Redis, redis-benchmark -c 50 -r 100000, lower is better"))
    print(svg.ratio_bars("resp-p99", "p99 latency", p99, subtitle="Herald / Redis, redis-benchmark -c 50 -r 100000, lower is better"))


def types(args):
    """redis-benchmark -t hset,sadd,zadd,zpopmin -P 16 -c 50, as the issue states it (no -r: one field,
    member or element over and over) and with -r 100000 (100,000 distinct ones), with SET for scale."""
    requests = int(args[0]) if args else 1000000
    redis, herald = start_both()
    print("redis-benchmark -n %d -c 50 -P 16, both servers started by bench/compare.py\n" % requests)
    print("| test | -r | redis rps | herald rps | redis us/req | herald us/req | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    cpu = []
    try:
        for keyspace in (0, 100000):
            for test in ("set", "hset", "sadd", "zadd", "zpopmin"):
                r = redis_benchmark(redis, test, requests, 50, 16, keyspace)
                h = redis_benchmark(herald, test, requests, 50, 16, keyspace)
                print("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2fx |" % (
                    test, keyspace or "-", r[0], h[0], r[2], h[2], h[2] / r[2]))
                sys.stdout.flush()
                cpu.append(("%s%s" % (test.upper(), " -r 100000" if keyspace else ""), h[2] / r[2]))
    finally:
        redis.stop()
        herald.stop()
    print("\n" + svg.ratio_bars("types-cpu", "Server CPU per request, -P 16", cpu, subtitle="Herald / Redis, redis-benchmark -c 50 -P 16, lower is better"))


def types_memory(args):
    """used_memory for one hash of N fields, one set of N members, one sorted set of N members (the
    fields and members `element:%012d` as redis-benchmark writes them, hash values "xxx", scores a
    permutation of 0..N), loaded with redis-cli --pipe in HSET/SADD/ZADD batches of 100."""
    n = int(args[0]) if args else 1000000
    redis, herald = start_both()
    print("%d elements per key, loaded with redis-cli --pipe; bytes/element = used_memory growth / N\n" % n)
    print("| type | redis used_memory | herald used_memory | redis bytes/element | herald bytes/element | ratio |")
    print("|---|---|---|---|---|---|")
    ratios = []
    try:
        for kind, name in (("hash", b"HSET"), ("set", b"SADD"), ("zset", b"ZADD")):
            with tempfile.NamedTemporaryFile(delete=False) as f:
                for start in range(0, n, 100):
                    args = []
                    for j in range(start, min(n, start + 100)):
                        member = b"element:%012d" % j
                        args += {"hash": [member, b"xxx"], "set": [member], "zset": [b"%d" % (j * 7 % 1000003), member]}[kind]
                    parts = [name, b"big"] + args
                    f.write(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
                path = f.name
            grown = []
            for s in (redis, herald):
                subprocess.run(["redis-cli", "-p", str(s.port), "FLUSHALL"], capture_output=True, check=True)
                time.sleep(0.2)
                base = int(s.info("memory")["used_memory"])
                with open(path, "rb") as f:
                    subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], stdin=f, capture_output=True, check=True)
                grown.append(int(s.info("memory")["used_memory"]) - base)
            os.unlink(path)
            print("| %s | %d | %d | %.1f | %.1f | %.2fx |" % (kind, grown[0], grown[1], grown[0] / n, grown[1] / n, grown[1] / grown[0]))
            sys.stdout.flush()
            ratios.append(("%s of %d" % (kind, n), grown[1] / grown[0]))
    finally:
        redis.stop()
        herald.stop()
    print("\n" + svg.ratio_bars("types-memory", "used_memory per element", ratios, subtitle="Herald / Redis, one key of N elements, lower is better"))


def memory(args):
    n = int(args[0]) if args else 1000000
    redis, herald = start_both()
    value = b"x" * 100
    with tempfile.NamedTemporaryFile(delete=False) as f:
        for i in range(n):
            key = b"key:%012d" % i
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
        path = f.name
    print("%d keys of 100-byte values loaded with redis-cli --pipe\n" % n)
    print("| server | used_memory | used_memory_rss | bytes/key (RSS) |")
    print("|---|---|---|---|")
    try:
        rows = []
        for s in (redis, herald):
            base = int(s.info("memory")["used_memory_rss"])
            with open(path, "rb") as f:
                subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], stdin=f, capture_output=True, check=True)
            m = s.info("memory")
            used, rss = int(m["used_memory"]), int(m["used_memory_rss"])
            rows.append((used, rss))
            print("| %s | %d | %d | %.0f |" % (s.name, used, rss, (rss - base) / n))
        print("\nherald/redis: used_memory %.2fx, RSS %.2fx" % (rows[1][0] / rows[0][0], rows[1][1] / rows[0][1]))
    finally:
        os.unlink(path)
        redis.stop()
        herald.stop()
    ratios = [("used_memory", rows[1][0] / rows[0][0]), ("RSS", rows[1][1] / rows[0][1])]
    print(svg.ratio_bars("memory", "%d keys of 100-byte values" % n, ratios, subtitle="Herald / Redis, lower is better"))


def board_memory(args):
    n = int(args[0]) if args else 100000
    redis, herald = start_both()
    body = "x" * 1000
    # The same 1 KB JSON items as `workloads board` publishes, in one pipe per server.
    paths = {}
    for name, command in (("redis", b"RPUSH"), ("herald", b"BL.PUBLISH")):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            for i in range(n):
                item = ('{"n": %d, "kind": "other", "body": "%s"}' % (i, body)).encode()
                f.write(b"*3\r\n$%d\r\n%s\r\n$5\r\nitems\r\n$%d\r\n%s\r\n" % (len(command), command, len(item), item))
            paths[name] = f.name
    size = len('{"n": %d, "kind": "other", "body": "%s"}' % (n // 2, body))
    print("%d JSON items of about %d bytes: RPUSH items <json> (redis) vs BL.PUBLISH items <json> (herald), "
          "loaded with redis-cli --pipe; used_memory before and after\n" % (n, size))
    print("| server | used_memory before | after | bytes/item |")
    print("|---|---|---|---|")
    try:
        per = {}
        for s in (redis, herald):
            before = int(s.info("memory")["used_memory"])
            with open(paths[s.name], "rb") as f:
                subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], stdin=f, capture_output=True, check=True)
            after = int(s.info("memory")["used_memory"])
            per[s.name] = (after - before) / n
            print("| %s | %d | %d | %.0f |" % (s.name, before, after, per[s.name]))
        print("\nherald/redis per item: %.2fx" % (per["herald"] / per["redis"]))
    finally:
        for p in paths.values():
            os.unlink(p)
def command_benchmark(server, command, requests, clients, pipeline):
    """redis-benchmark running one given command (for tests it has no -t name for, as XADD in 7.0)."""
    cpu0 = server.cpu()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", str(clients),
                          "-P", str(pipeline), "--csv"] + command, capture_output=True, text=True).stdout
    cpu = server.cpu() - cpu0
    row = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')][0]
    cols = [c.strip('"') for c in row.split('","')]
    return float(cols[1]), float(cols[6]), cpu * 1e6 / requests


def xstreams(args):
    requests = int(args[0]) if args else 1000000
    entries = int(args[1]) if len(args) > 1 else 1000000
    command = ["XADD", "mystream", "*", "myfield", "xxx"]
    redis, herald = start_both()
    try:
        print("redis-benchmark -n %d -c 50 -P 1|16 %s (redis-benchmark 7.0 has no -t xadd; this is the command\n"
              "its later versions send, with the default 3-byte value), both servers started by bench/compare.py\n"
              % (requests, " ".join(command)))
        print("| -P | redis rps | herald rps | redis p99 ms | herald p99 ms | redis us/req | herald us/req | CPU ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for pipeline in (1, 16):
            for s in (redis, herald):
                subprocess.run(["redis-cli", "-p", str(s.port), "DEL", "mystream"], capture_output=True)
            r = command_benchmark(redis, command, requests, 50, pipeline)
            h = command_benchmark(herald, command, requests, 50, pipeline)
            print("| %d | %.0f | %.0f | %.3f | %.3f | %.2f | %.2f | %.2fx |" % (pipeline, r[0], h[0], r[1], h[1], r[2], h[2], h[2] / r[2]))
            sys.stdout.flush()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            for i in range(entries):
                f.write(b"*5\r\n$4\r\nXADD\r\n$3\r\nmem\r\n$1\r\n*\r\n$7\r\nmyfield\r\n$3\r\nxxx\r\n")
            path = f.name
        print("\nA %d-entry stream (`XADD mem * myfield xxx`, loaded with redis-cli --pipe)\n" % entries)
        print("| server | used_memory before | after | stream bytes | bytes/entry |")
        print("|---|---|---|---|---|")
        rows = []
        for s in (redis, herald):
            subprocess.run(["redis-cli", "-p", str(s.port), "FLUSHALL"], capture_output=True)
            time.sleep(0.5)
            before = int(s.info("memory")["used_memory"])
            with open(path, "rb") as f:
                subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], stdin=f, capture_output=True, check=True)
            after = int(s.info("memory")["used_memory"])
            rows.append((before, after))
            print("| %s | %d | %d | %d | %.1f |" % (s.name, before, after, after - before, (after - before) / entries))
        os.unlink(path)
        print("\nherald/redis: used_memory %.2fx, the stream alone %.2fx" % (
            rows[1][1] / rows[0][1], (rows[1][1] - rows[1][0]) / (rows[0][1] - rows[0][0])))
    finally:
        redis.stop()
        herald.stop()


def fanout_run(server, extra):
    cpu0 = server.cpu()
    out = subprocess.run([FANOUT, "--addr", "127.0.0.1:%d" % server.port] + extra, capture_output=True, text=True).stdout
    cpu = server.cpu() - cpu0
    found = dict(re.findall(r"(\w+)=(\d+)", out))
    return found, cpu


def fanout(args):
    duration = args[0] if args else "5"
    redis, herald = start_both()
    try:
        print("Fan-out, max throughput (1 publisher pipelining 64 PUBLISH, %s s)\n" % duration)
        print("| subscribers | size | redis deliveries/s | herald deliveries/s | ratio | redis CPU s | herald CPU s |")
        print("|---|---|---|---|---|---|---|")
        for subs in (1, 100, 1000):
            for size in (32, 1024):
                rf, rc = fanout_run(redis, ["--subscribers", str(subs), "--size", str(size), "--duration", duration])
                hf, hc = fanout_run(herald, ["--subscribers", str(subs), "--size", str(size), "--duration", duration])
                r, h = int(rf["deliveries_per_sec"]), int(hf["deliveries_per_sec"])
                print("| %d | %d | %d | %d | %.2fx | %.1f | %.1f |" % (subs, size, r, h, h / max(r, 1), rc, hc))
                sys.stdout.flush()
        print("\nFan-out latency at a fixed rate (publish-to-receive, microseconds)\n")
        print("| subscribers | rate/s | redis p50 | redis p99 | herald p50 | herald p99 | p99 ratio |")
        print("|---|---|---|---|---|---|---|")
        for subs, rate in ((1000, 10), (1000, 1000), (100, 10000)):
            extra = ["--subscribers", str(subs), "--mode", "rate", "--rate", str(rate), "--duration", duration]
            rf, _ = fanout_run(redis, extra)
            hf, _ = fanout_run(herald, extra)
            print("| %d | %d | %s | %s | %s | %s | %.2fx |" % (subs, rate, rf["p50"], rf["p99"], hf["p50"], hf["p99"],
                                                              int(hf["p99"]) / max(int(rf["p99"]), 1)))
            sys.stdout.flush()
        print("\nA stalled subscriber's cost to 100 healthy ones (32-byte messages)\n")
        print("| server | deliveries/s, no stalled | with 1 stalled | change |")
        print("|---|---|---|---|")
        for s in (redis, herald):
            a, _ = fanout_run(s, ["--subscribers", "100", "--duration", duration])
            b, _ = fanout_run(s, ["--subscribers", "100", "--stalled", "1", "--duration", duration])
            x, y = int(a["deliveries_per_sec"]), int(b["deliveries_per_sec"])
            print("| %s | %d | %d | %+.1f%% |" % (s.name, x, y, (y - x) * 100.0 / max(x, 1)))
    finally:
        redis.stop()
        herald.stop()


def fanout_p99(args):
    """Issue 13's fan-out latency row alone, redis-server and Herald alternating run by run: one run of
    it moves by 20% on this machine, so the ratio is read over several."""
    runs = int(args[0]) if args else 4
    redis, herald = start_both()
    extra = ["--subscribers", "1000", "--mode", "rate", "--rate", "10", "--duration", "5"]
    try:
        print("| run | redis p50 | redis p99 | herald p50 | herald p99 | p99 ratio |")
        print("|---|---|---|---|---|---|")
        for run in range(runs):
            rf, _ = fanout_run(redis, extra)
            hf, _ = fanout_run(herald, extra)
            print("| %d | %s | %s | %s | %s | %.2fx |" % (run + 1, rf["p50"], rf["p99"], hf["p50"], hf["p99"],
                                                        int(hf["p99"]) / max(int(rf["p99"]), 1)))
            sys.stdout.flush()
    finally:
        redis.stop()
        herald.stop()


MANY = 20000


def raise_nofile():
    """10,000 subscribers need 10,000 descriptors in the broker and in the load tool (both inherit this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MANY + 1000 if hard == resource.RLIM_INFINITY else min(hard, MANY + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < MANY:
        print("warning: open files limited to %d (hard limit); 10,000 subscribers may not fit" % want)


def start_herald_ws():
    """Herald with its HTTP port (the WebSocket endpoint) open and room for 20,000 clients."""
    port, http = free_port(), free_port()
    env = dict(os.environ, HERALD_LIMITS__MAXCLIENTS=str(MANY))
    herald = Server("herald", [HERALD, "--port", str(port), "--http-port", str(http)], port, env)
    wait_port(http)
    herald.url = "ws://127.0.0.1:%d/ws" % http
    return herald


def start_redis_many():
    port = free_port()
    return Server("redis", ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                            "--maxclients", str(MANY)], port)


def load_run(server, transport, extra):
    """One run of fanout (RESP subscribers) or wsfanout (WebSocket subscribers); the tool reads the
    server's CPU over its own measuring window (--pid), so connecting 10,000 clients is not counted."""
    argv = [FANOUT] if transport == "resp" else [WSFANOUT, "--url", server.url]
    argv += ["--addr", "127.0.0.1:%d" % server.port, "--pid", str(server.proc.pid)] + extra
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(argv), out.stderr.strip()[-500:]))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out.stdout)}


def ws(args):
    duration = args[0] if args else "5"
    raise_nofile()
    print("32-byte payloads, 1 RESP publisher; herald WS and RESP subscribers on the same herald, redis RESP "
          "for reference. ns/delivery = server CPU (user + system) over the measuring window / deliveries.\n")
    herald, redis = start_herald_ws(), start_redis_many()
    try:
        print("Fan-out, max throughput (1 publisher pipelining 64 PUBLISH, %s s)\n" % duration)
        print("| subscribers | redis RESP deliveries/s | herald RESP deliveries/s | herald WS deliveries/s "
              "| redis RESP ns/delivery | herald RESP ns/delivery | herald WS ns/delivery | WS/RESP CPU |")
        print("|---|---|---|---|---|---|---|---|")
        for subs in (1000, 10000):
            extra = ["--subscribers", str(subs), "--size", "32", "--duration", duration]
            r = load_run(redis, "resp", extra)
            h = load_run(herald, "resp", extra)
            w = load_run(herald, "ws", extra)
            print("| %d | %d | %d | %d | %d | %d | %d | %.2fx |" % (
                subs, r["deliveries_per_sec"], h["deliveries_per_sec"], w["deliveries_per_sec"],
                r["server_ns_per_delivery"], h["server_ns_per_delivery"], w["server_ns_per_delivery"],
                w["server_ns_per_delivery"] / max(h["server_ns_per_delivery"], 1)))
            sys.stdout.flush()
        print("\nFan-out at a fixed publish rate: publish-to-receive latency (us) and server CPU per delivery\n")
        print("| subscribers | rate/s | redis RESP p50 / p99 | herald RESP p50 / p99 | herald WS p50 / p99 "
              "| herald RESP ns/delivery | herald WS ns/delivery | WS/RESP CPU |")
        print("|---|---|---|---|---|---|---|---|")
        for subs, rate in ((1000, 100), (10000, 10)):
            extra = ["--subscribers", str(subs), "--size", "32", "--mode", "rate", "--rate", str(rate),
                     "--duration", duration]
            r = load_run(redis, "resp", extra)
            h = load_run(herald, "resp", extra)
            w = load_run(herald, "ws", extra)
            print("| %d | %d | %d / %d | %d / %d | %d / %d | %d | %d | %.2fx |" % (
                subs, rate, r["p50"], r["p99"], h["p50"], h["p99"], w["p50"], w["p99"],
                h["server_ns_per_delivery"], w["server_ns_per_delivery"],
                w["server_ns_per_delivery"] / max(h["server_ns_per_delivery"], 1)))
            sys.stdout.flush()
    finally:
        herald.stop()
        redis.stop()
    print("\nMemory per idle subscriber: RSS growth of a fresh server while 10,000 subscribers connect and "
          "subscribe to one channel\n")
    print("| server | transport | RSS before | RSS after | bytes/connection |")
    print("|---|---|---|---|---|")
    for name, transport in (("herald", "ws"), ("herald", "resp"), ("redis", "resp")):
        # A fresh server each time: memory freed by earlier connections would be reused and hide growth.
        server = start_herald_ws() if name == "herald" else start_redis_many()
        try:
            argv = [WSFANOUT, "--idle", "--transport", transport, "--subscribers", "10000",
                    "--addr", "127.0.0.1:%d" % server.port, "--pid", str(server.proc.pid)]
            if name == "herald":
                argv += ["--url", server.url]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            m = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out)}
            print("| %s | %s | %d | %d | %d |" % (name, transport, m["rss_before"], m["rss_after"],
                                                  m["bytes_per_connection"]))
            sys.stdout.flush()
        finally:
            server.stop()


def load_keys(server, n):
    """n keys of 100-byte values through redis-cli --pipe."""
    value = b"x" * 100
    with tempfile.NamedTemporaryFile(delete=False) as f:
        for i in range(n):
            key = b"key:%012d" % i
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
        path = f.name
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], stdin=f, capture_output=True, check=True)
    os.unlink(path)


def start_persistent(kind, directory, policy, port=None):
    port = port or free_port()
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "yes", "--appendfsync", policy,
                "--dir", directory, "--auto-aof-rewrite-percentage", "0"]
    else:
        argv = [HERALD, "--port", str(port), "--http-port", "0", "--data-dir", directory, "--appendfsync", policy]
    env = dict(os.environ, HERALD_PERSISTENCE__AUTO_REWRITE_PERCENTAGE="0")
    return Server(kind, argv, port, env)


def wait_loaded(port):
    """Seconds until the server on `port` answers PING with PONG (Redis answers -LOADING while it loads)."""
    start = time.time()
    while True:
        out = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip()
        if out == "PONG":
            return time.time() - start
        time.sleep(0.01)


def durability(args):
    requests = int(args[0]) if args else 200000
    keys = int(args[1]) if len(args) > 1 else 1000000
    tmp = tempfile.mkdtemp(prefix="herald-bench-")
    print("redis-benchmark -t set -n %d -r 100000 against each server in turn, data directories under %s "
          "(the same disk); us/req = server CPU (user + system) per request.\n" % (requests, tmp))
    print("| server | appendfsync | -c | -P | rps | p99 ms | us/req |")
    print("|---|---|---|---|---|---|---|")
    rows = {}

    def run(label, server, policy, clients, pipeline, n=requests):
        r = redis_benchmark(server, "set", n, clients, pipeline)
        rows[(label, policy, clients, pipeline)] = r
        print("| %s | %s | %d | %d | %.0f | %.3f | %.2f |" % (label, policy, clients, pipeline, r[0], r[1], r[2]))
        sys.stdout.flush()
        return r

    try:
        port = free_port()
        memory_herald = Server("herald", [HERALD, "--port", str(port), "--http-port", "0"], port)
        for pipeline in (1, 16):
            run("herald (memory)", memory_herald, "-", 50, pipeline)
        memory_herald.stop()
        for policy in ("everysec", "always"):
            for kind in ("redis", "herald"):
                d = tempfile.mkdtemp(dir=tmp)
                s = start_persistent(kind, d, policy)
                try:
                    if policy == "always":
                        run(kind, s, policy, 1, 1, n=max(requests // 50, 2000))
                    for pipeline in (1, 16):
                        run(kind, s, policy, 50, pipeline)
                finally:
                    s.stop()
        m = rows
        print("\neverysec: herald rps %.2fx herald in memory (-P 1), %.2fx (-P 16); CPU per SET %.2fx redis "
              "everysec (-P 1), %.2fx (-P 16)" % (
                  m[("herald", "everysec", 50, 1)][0] / m[("herald (memory)", "-", 50, 1)][0],
                  m[("herald", "everysec", 50, 16)][0] / m[("herald (memory)", "-", 50, 16)][0],
                  m[("herald", "everysec", 50, 1)][2] / m[("redis", "everysec", 50, 1)][2],
                  m[("herald", "everysec", 50, 16)][2] / m[("redis", "everysec", 50, 16)][2]))
        print("always: 50 clients get %.1fx the throughput of 1 client (one fsync per write); herald %.2fx redis "
              "always (-P 1), %.2fx (-P 16)" % (
                  m[("herald", "always", 50, 1)][0] / m[("herald", "always", 1, 1)][0],
                  m[("herald", "always", 50, 1)][0] / m[("redis", "always", 50, 1)][0],
                  m[("herald", "always", 50, 16)][0] / m[("redis", "always", 50, 16)][0]))

        print("\nA compaction of %d keys (100-byte values) under a steady SET load (-c 50 -P 1, everysec)\n" % keys)
        print("| server | load alone p99 ms | load during compaction p99 ms | ratio | compaction s |")
        print("|---|---|---|---|---|")
        for kind in ("redis", "herald"):
            d = tempfile.mkdtemp(dir=tmp)
            s = start_persistent(kind, d, "everysec")
            try:
                load_keys(s, keys)
                alone = redis_benchmark(s, "set", requests, 50, 1)
                started = time.time()
                subprocess.run(["redis-cli", "-p", str(s.port), "BGREWRITEAOF"], capture_output=True, check=True)
                during = redis_benchmark(s, "set", requests, 50, 1)
                while "aof_rewrite_in_progress:1" in subprocess.run(["redis-cli", "-p", str(s.port), "INFO", "persistence"],
                                                                    capture_output=True, text=True).stdout:
                    time.sleep(0.05)
                took = time.time() - started
                print("| %s | %.3f | %.3f | %.2fx | %.1f |" % (kind, alone[1], during[1], during[1] / alone[1], took))
                sys.stdout.flush()
            finally:
                s.stop()

        print("\nRestart with %d keys: from process start to answering PING (everysec)\n" % keys)
        print("| server | log only s | snapshot + empty log s |")
        print("|---|---|---|")
        for kind in ("redis", "herald"):
            d = tempfile.mkdtemp(dir=tmp)
            port = free_port()
            s = start_persistent(kind, d, "everysec", port)
            load_keys(s, keys)
            s.stop()
            started = time.time()
            s = start_persistent(kind, d, "everysec", port)
            wait_loaded(port)
            log_only = time.time() - started
            subprocess.run(["redis-cli", "-p", str(port), "BGREWRITEAOF"], capture_output=True, check=True)
            while "aof_rewrite_in_progress:1" in subprocess.run(["redis-cli", "-p", str(port), "INFO", "persistence"],
                                                                capture_output=True, text=True).stdout:
                time.sleep(0.05)
            time.sleep(0.5)
            s.stop()
            started = time.time()
            s = start_persistent(kind, d, "everysec", port)
            wait_loaded(port)
            snap = time.time() - started
            s.stop()
            print("| %s | %.2f | %.2f |" % (kind, log_only, snap))
            sys.stdout.flush()
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)

WORKLOADS = os.path.join(ROOT, "target", "release", "workloads")


def workload(server, args, duration, redis_idiom=False, runs=3):
    """Median ops/s of `runs` runs of target/release/workloads against `server`, and the server's CPU
    per operation over those runs (us)."""
    rates, cpu0, ops = [], server.cpu(), 0
    for _ in range(runs):
        argv = [WORKLOADS, "--addr", "127.0.0.1:%d" % server.port, "--duration", str(duration)] + args
        if redis_idiom:
            argv.append("--redis")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        m = re.search(r"ops=(\d+) ops_per_sec=(\d+)", out)
        ops += int(m.group(1))
        rates.append(float(m.group(2)))
    cpu = server.cpu() - cpu0
    return sorted(rates)[len(rates) // 2], cpu * 1e6 / max(ops, 1)


def domains(args):
    """The domain tables of docs/benchmarks.md (issues 4-7, 13): every figure from this one command."""
    duration = int(args[0]) if args else 4
    requests = 200000
    redis, herald = start_both()
    try:
        print("Blackboard against plain keys on Herald: redis-benchmark -n %d -c 50 -r 100000 at -P 1 and -P 16\n" % requests)
        print("| command | -P | requests/s | server us/request |")
        print("|---|---|---|---|")
        for pipeline in (1, 16):
            for command in (["SET", "key:__rand_int__", "xxx"], ["BB.SET", "s", "key:__rand_int__", "xxx"],
                            ["GET", "key:__rand_int__"], ["BB.GET", "s", "key:__rand_int__"]):
                rps, _, us = command_benchmark(herald, ["-r", "100000"] + command, requests, 50, pipeline)
                print("| `%s` | %d | %.0f | %.2f |" % (" ".join(command), pipeline, rps, us))
                sys.stdout.flush()

        print("\nLists and hand-off (redis-benchmark -t lpush,rpop -c 50; `workloads handoff`, median of 3 runs of %d s)\n" % duration)
        print("| workload | -P | redis | herald | ratio | redis us/op | herald us/op | CPU ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for pipeline in (1, 16):
            for test in ("lpush", "rpop"):
                r = redis_benchmark(redis, test, requests, 50, pipeline, keyspace=0)
                h = redis_benchmark(herald, test, requests, 50, pipeline, keyspace=0)
                print("| %s | %d | %.0f | %.0f | %.2fx | %.2f | %.2f | %.2fx |" % (
                    test, pipeline, r[0], h[0], h[0] / r[0], r[2], h[2], h[2] / r[2]))
                sys.stdout.flush()
        r = workload(redis, ["handoff"], duration)
        h = workload(herald, ["handoff"], duration)
        print("| BLPOP hand-off | 1 | %.0f | %.0f | %.2fx | %.2f | %.2f | %.2fx |" % (r[0], h[0], h[0] / r[0], r[1], h[1], h[1] / r[1]))

        print("\nJobs (`workloads jobs`, median of 3 runs of %d s): Herald's two flows against the Redis-list idiom "
              "(LPUSH jobs, BRPOP jobs, LPUSH result:<id>, BRPOP result:<id>)\n" % duration)
        print("| in flight | Redis lists | Herald, 4 round trips | ratio | Herald `--combined`, 2 round trips | ratio | "
              "CPU/job redis | herald | herald combined |")
        print("|---|---|---|---|---|---|---|---|---|")
        for clients, workers in ((1, 1), (8, 8)):
            shape = ["jobs", "--clients", str(clients), "--workers", str(workers)]
            r = workload(redis, shape, duration, redis_idiom=True)
            h = workload(herald, shape, duration)
            c = workload(herald, shape + ["--combined"], duration)
            print("| %d clients, %d workers | %.0f/s | %.0f/s | %.2fx | %.0f/s | %.2fx | %.2f us | %.2f us | %.2f us |" % (
                clients, workers, r[0], h[0], h[0] / r[0], c[0], c[0] / r[0], r[1], h[1], c[1]))
            sys.stdout.flush()

        print("\nBulletin boards (`workloads board --workers 8`: retrieve with a lease + remove, 100,000 items of 1 KB) "
              "against `workloads board --redis` (LMOVE to a processing list + LREM)\n")
        print("| workload | Herald | Redis idiom | ratio |")
        print("|---|---|---|---|")
        r = workload(redis, ["board", "--workers", "8"], duration, redis_idiom=True, runs=1)
        h = workload(herald, ["board", "--workers", "8"], duration, runs=1)
        f = workload(herald, ["board", "--workers", "8", "--filtered"], duration, runs=1)
        print("| retrieve-with-lease + remove, 8 workers | %.0f items/s | %.0f items/s | %.2fx |" % (h[0], r[0], h[0] / r[0]))
        print("| the same with `WHERE kind = wanted` matching 1%% | %.0f items/s | (no Redis equivalent) | |" % f[0])
    finally:
        redis.stop()
        herald.stop()


if __name__ == "__main__":
    commands = {"resp": resp, "memory": memory, "types": types, "typesmem": types_memory, "board-memory": board_memory,
                "fanout": fanout, "fanout-p99": fanout_p99, "ws": ws, "durability": durability, "xstreams": xstreams,
                "domains": domains}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])

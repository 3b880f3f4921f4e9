#!/usr/bin/env python3
"""Side-by-side measurements of Herald and redis-server in one session on this machine.

    python3 bench/compare.py resp      # redis-benchmark: throughput, p99, server CPU per request
    python3 bench/compare.py memory    # used_memory and RSS for 1M keys of 100-byte values
    python3 bench/compare.py fanout    # pub-sub fan-out (target/release/fanout), throughput and latency

Both servers are started here on free ports (herald from target/release/herald; build it first with
`cargo build --release -p herald-broker -p herald-bench`) and stopped afterwards. Server CPU is read from
/proc/PID/stat (user + system) around each run, so "us/req" is the server's own CPU per request,
independent of how fast the load generator is. Results print as markdown tables for docs/benchmarks.md.
Standard library only.
"""
import os, re, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERALD = os.path.join(ROOT, "target", "release", "herald")
FANOUT = os.path.join(ROOT, "target", "release", "fanout")
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
    def __init__(self, name, argv, port):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def redis_benchmark(server, test, requests, clients, pipeline):
    cpu0 = server.cpu()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", test, "-n", str(requests),
                          "-c", str(clients), "-P", str(pipeline), "-r", "100000", "--csv"],
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
    try:
        for pipeline in (1, 16):
            for test in ("set", "get", "incr", "mset"):
                r = redis_benchmark(redis, test, requests, 50, pipeline)
                h = redis_benchmark(herald, test, requests, 50, pipeline)
                print("| %s | %d | %.0f | %.0f | %.2fx | %.3f | %.3f | %.2f | %.2f | %.2fx |" % (
                    test, pipeline, r[0], h[0], h[0] / r[0], r[1], h[1], r[2], h[2], h[2] / r[2]))
                sys.stdout.flush()
    finally:
        redis.stop()
        herald.stop()


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


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("resp", "memory", "fanout"):
        sys.exit(__doc__)
    {"resp": resp, "memory": memory, "fanout": fanout}[sys.argv[1]](sys.argv[2:])

#!/usr/bin/env python3
"""Scrape load for `mcpops watch`: one process serving many scrape targets
(default 1,000 targets x 1,000 series, each target on a port of its own so
that each has its own `instance`), the watch.toml that scrapes them all,
and optionally a timed run of `mcpops watch` with its CPU share.

    scripts/scrape-load.py --out DIR [--targets 1000] [--series 1000]
        [--interval 15s] [--run path/to/mcpops] [--prometheus /usr/bin/prometheus]
        [--seconds 180] [--warmup 30]

Writes DIR/watch.toml (`store = DIR/store` and one [[scrape]] table per
target: url, job, interval) and serves the targets until interrupted. With
--run, it also starts `mcpops watch --config DIR/watch.toml`, lets it warm
up, then reads the process's CPU time (/proc/PID/stat) over --seconds and
prints the share of the machine's cores it used and the scrapes served.
With --prometheus, Prometheus then scrapes the same targets (DIR/prometheus.yml,
the same interval) and is measured the same way: the peer, in the same run.

Bodies are OpenMetrics: counters with `_created`, gauges and a histogram,
values moving with each scrape of a target. Python serves them from one
asyncio loop; it runs on the same cores, so its own CPU is printed too.
"""

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import time


def series_lines(n):
    """`n` series as (prefix, factor): the value is factor x scrape count."""
    lines = []
    tool = 0
    while len(lines) < n:
        # A histogram of 8 buckets, _sum, _count per tool, then counters and gauges.
        for i, le in enumerate(["0.005", "0.01", "0.05", "0.1", "0.5", "1.0", "5.0", "+Inf"]):
            lines.append((f'mcp_latency_seconds_bucket{{tool="tool_{tool}",le="{le}"}} ', i + 1))
        lines.append((f'mcp_latency_seconds_sum{{tool="tool_{tool}"}} ', 0.037))
        lines.append((f'mcp_latency_seconds_count{{tool="tool_{tool}"}} ', 8))
        lines.append((f'mcp_calls_total{{tool="tool_{tool}"}} ', 3))
        lines.append((f'mcp_sessions{{tool="tool_{tool}"}} ', 1))
        tool += 1
    return lines[:n]


HEAD = (
    "# TYPE mcp_latency_seconds histogram\n"
    "# TYPE mcp_calls counter\n"
    "# TYPE mcp_sessions gauge\n"
)


class Targets:
    def __init__(self, series):
        self.lines = series_lines(series)
        self.scrapes = 0

    def body(self, count):
        self.scrapes += 1
        # Keep the families together: histogram lines, then the rest, as the
        # format wants each family's samples contiguous.
        hist = [p + repr(float(f * count)) for p, f in self.lines if p.startswith("mcp_latency")]
        calls = [p + repr(float(f * count)) for p, f in self.lines if p.startswith("mcp_calls")]
        sess = [p + repr(float(f * (count % 7))) for p, f in self.lines if p.startswith("mcp_sessions")]
        return (HEAD + "\n".join(hist + calls + sess) + "\n# EOF\n").encode()


async def handle(reader, writer, targets, counts, index):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"GET "):
                break
            counts[index] += 1
            body = targets.body(counts[index])
            writer.write(
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for watch.toml and the store")
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--interval", default="15s")
    ap.add_argument("--job", default="load")
    ap.add_argument("--run", help="an mcpops binary to run `watch --config` with")
    ap.add_argument("--prometheus", help="also run this Prometheus binary over the same "
                    "targets (prometheus.yml beside watch.toml), measured the same way after watch")
    ap.add_argument("--seconds", type=float, default=180.0, help="measured time with --run")
    ap.add_argument("--warmup", type=float, default=30.0, help="unmeasured time with --run")
    args = ap.parse_args()

    # One listening socket per target, plus the connections watch keeps open.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * args.targets + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * args.targets + 64:
        sys.exit(f"the open-file limit ({hard}) is too low for {args.targets} targets")

    os.makedirs(args.out, exist_ok=True)
    targets = Targets(args.series)
    counts = [0] * args.targets
    servers = []
    for i in range(args.targets):
        server = await asyncio.start_server(
            lambda r, w, i=i: handle(r, w, targets, counts, i), "127.0.0.1", 0
        )
        servers.append(server)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    config = os.path.join(args.out, "watch.toml")
    with open(config, "w") as f:
        f.write(f'store = "{os.path.abspath(os.path.join(args.out, "store"))}"\n')
        for port in ports:
            f.write(
                f'\n[[scrape]]\nurl = "http://127.0.0.1:{port}/metrics"\n'
                f'job = "{args.job}"\ninterval = "{args.interval}"\n'
            )
    print(f"{args.targets} targets x {args.series} series on 127.0.0.1; config: {config}", flush=True)

    prom_config = os.path.join(args.out, "prometheus.yml")
    with open(prom_config, "w") as f:
        f.write(f"global:\n  scrape_interval: {args.interval}\n  scrape_timeout: 10s\n"
                f"scrape_configs:\n  - job_name: {args.job}\n    static_configs:\n"
                "      - targets:\n")
        for port in ports:
            f.write(f"          - 127.0.0.1:{port}\n")

    if not args.run and not args.prometheus:
        print(f"run: mcpops watch --config {config}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        return 0

    runs = []
    if args.run:
        runs.append(("mcpops watch", [args.run, "watch", "--config", config]))
    if args.prometheus:
        runs.append(("prometheus", [
            args.prometheus, f"--config.file={prom_config}",
            f"--storage.tsdb.path={os.path.abspath(os.path.join(args.out, 'prometheus-data'))}",
            "--web.listen-address=127.0.0.1:0", "--log.level=warn",
        ]))
    cores = os.cpu_count() or 1
    for name, argv in runs:
        await measure(name, argv, args, counts, cores)
    return 0


async def measure(name, argv, args, counts, cores):
    """Runs `argv`, lets it warm up, and prints its CPU share over --seconds."""
    child = subprocess.Popen(argv)
    try:
        await asyncio.sleep(args.warmup)
        if child.poll() is not None:
            sys.exit(f"{name} exited with {child.returncode} during the warm-up")
        c0, s0, t0 = cpu_seconds(child.pid), sum(counts), time.monotonic()
        py0 = time.process_time()
        await asyncio.sleep(args.seconds)
        if child.poll() is not None:
            sys.exit(f"{name} exited with {child.returncode} during the run")
        c1, s1, t1 = cpu_seconds(child.pid), sum(counts), time.monotonic()
        py1 = time.process_time()
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    wall = t1 - t0
    cpu = c1 - c0
    print(f"== {name}: wall {wall:.1f} s, {cores} cores", flush=True)
    print(f"scrapes served: {s1 - s0} ({(s1 - s0) / wall:.1f}/s; "
          f"{(s1 - s0) * args.series / wall:.0f} samples/s)")
    print(f"{name} CPU: {cpu:.1f} s = {100 * cpu / wall:.1f}% of one core, "
          f"{100 * cpu / (wall * cores):.1f}% of the machine")
    print(f"this script's CPU: {100 * (py1 - py0) / wall:.1f}% of one core", flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

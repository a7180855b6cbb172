#!/usr/bin/env python3
"""Writes an OpenMetrics 1.0 text file shaped like a week of MCP fleet scrapes:
gauges and counters per server at a 1-minute interval, families contiguous,
timestamps in seconds, ending in `# EOF`. Used to compare mcpops ingest and
storage with `promtool tsdb create-blocks-from openmetrics` on the same file.

usage: make-openmetrics.py OUT [--servers N] [--days D] [--seed S]
"""
import argparse
import math
import random

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--servers", type=int, default=20)
p.add_argument("--days", type=int, default=4)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
rng = random.Random(a.seed)
start = 1763251200  # 2025-11-16T00:00:00Z
steps = a.days * 1440
servers = [f"mcp-{i:02d}" for i in range(a.servers)]

families = [
    ("process_cpu_utilization_ratio", "gauge", "ratio"),
    ("process_memory_usage_bytes", "gauge", "bytes"),
    ("mcp_server_sessions_open", "gauge", None),
    ("mcp_server_requests_in_flight", "gauge", None),
    ("disk_free_bytes", "gauge", "bytes"),
    ("mcp_server_calls", "counter", None),
    ("mcp_server_errors", "counter", None),
]

with open(a.out, "w") as f:
    samples = 0
    for name, kind, unit in families:
        f.write(f"# TYPE {name} {kind}\n")
        if unit:
            f.write(f"# UNIT {name} {unit}\n")
        f.write(f"# HELP {name} synthetic MCP fleet metric\n")
        for s in servers:
            level = rng.uniform(0.5, 2.0)
            total = 0
            mem = 2e8 * level
            disk = 5e10 * level
            for i in range(steps):
                t = start + i * 60
                day = 0.6 + 0.4 * math.sin(2 * math.pi * (i % 1440) / 1440)
                if name == "process_cpu_utilization_ratio":
                    v = round(min(1.0, 0.3 * day * level + rng.gauss(0, 0.02)), 4)
                elif name == "process_memory_usage_bytes":
                    mem += rng.gauss(1000, 50000)
                    v = int(mem)
                elif name == "mcp_server_sessions_open":
                    v = int(40 * day * level + rng.randint(0, 5))
                elif name == "mcp_server_requests_in_flight":
                    v = int(rng.expovariate(1 / (3 * day * level)))
                elif name == "disk_free_bytes":
                    disk -= rng.randint(0, 200000)
                    v = int(disk)
                elif name == "mcp_server_calls":
                    total += int(rng.expovariate(1 / (60 * day * level)))
                    v = total
                else:
                    total += rng.random() < 0.05
                    v = total
                suffix = "_total" if kind == "counter" else ""
                f.write(f'{name}{suffix}{{server="{s}"}} {v} {t}\n')
                samples += 1
    f.write("# EOF\n")
print(f"wrote {samples} samples to {a.out}")

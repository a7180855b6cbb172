#!/usr/bin/env python3
"""p95 latency per server per hour from a Prometheus-shaped histogram, in DuckDB's SQL.

usage: python3 scripts/histogram-duckdb.py STORE_DIR FROM_MS TO_MS [--out FILE.csv]

The same computation as the rule language's

    histogram_quantile(0.95, sum by (le, instance) (
        rate(mcp_server_operation_duration_seconds_bucket[1h])))

at every hour from FROM_MS to TO_MS (epoch milliseconds, on the hour), over
the store's Parquet segments as they are (`segments/*/*.parquet`):

1. each bucket series' samples in each window (T - 1h, T], their increase
   with counter resets added back, extrapolated to the window's edges as
   Prometheus's rate does (never below the counter's zero), per second;
2. the rates summed per server, hour and bound;
3. per server and hour, cumulative counts raised where they decrease, the
   rank 0.95 x total, and linear interpolation within the first finite
   bucket that reaches it (from 0 for the lowest bucket), or the highest
   finite bound when only +Inf does.

Prints the best wall time of 5 runs in seconds (after one warm run, which
reads the metadata), and with --out writes `instance,hour_ms,p95` rows
sorted by server and hour, for comparing with the engine
(`cargo bench --bench histogram` runs this script and does). Needs
`pip install duckdb`.
"""

import argparse
import time

import duckdb

METRIC = "mcp_server_operation_duration_seconds_bucket"
HOUR = 3_600_000
PHI = 0.95

SQL = """
WITH s AS (
  SELECT instance, mcp_method_name AS method, gen_ai_tool_name AS tool, le,
         epoch_ms(timestamp) AS t, value AS v
  FROM read_parquet('{store}/segments/*/*.parquet', hive_partitioning = true, union_by_name = true)
  WHERE metric = '{metric}' AND epoch_ms(timestamp) > {lo} AND epoch_ms(timestamp) <= {hi}
),
-- Each sample in the one window (step - 1h, step] that holds it.
w AS (
  SELECT *, (t + {hour} - 1) // {hour} * {hour} AS step FROM s
),
d AS (
  SELECT *, lag(v) OVER (PARTITION BY instance, method, tool, le, step ORDER BY t) AS prev FROM w
),
per AS (
  SELECT instance, method, tool, le, step, count(*) AS n, min(t) AS t0, max(t) AS t1,
         arg_min(v, t) AS v0,
         sum(CASE WHEN prev IS NULL THEN 0 WHEN v < prev THEN v ELSE v - prev END) AS inc
  FROM d GROUP BY ALL HAVING count(*) >= 2
),
ex AS (
  SELECT *, (t1 - t0) / 1000.0 AS sampled, (t0 - (step - {hour})) / 1000.0 AS to_start0,
         (step - t1) / 1000.0 AS to_end
  FROM per
),
ex2 AS (
  SELECT *, sampled / (n - 1) AS gap,
         CASE WHEN inc > 0 AND v0 >= 0 AND sampled * (v0 / inc) < to_start0
              THEN sampled * (v0 / inc) ELSE to_start0 END AS to_start
  FROM ex
),
rates AS (
  SELECT instance, le, step,
         inc * (sampled + CASE WHEN to_start < gap * 1.1 THEN to_start ELSE gap / 2 END
                        + CASE WHEN to_end < gap * 1.1 THEN to_end ELSE gap / 2 END)
             / sampled / {hour_s} AS r
  FROM ex2
),
sums AS (
  SELECT instance, step, CAST(replace(le, '+Inf', 'inf') AS DOUBLE) AS ub, sum(r) AS c
  FROM rates GROUP BY ALL
),
mono AS (
  SELECT *, max(c) OVER (PARTITION BY instance, step ORDER BY ub ROWS UNBOUNDED PRECEDING) AS cum
  FROM sums
),
lagged AS (
  SELECT *,
         lag(ub) OVER (PARTITION BY instance, step ORDER BY ub) AS prev_ub,
         lag(cum) OVER (PARTITION BY instance, step ORDER BY ub) AS prev_cum,
         {phi} * max(cum) FILTER (WHERE isinf(ub)) OVER (PARTITION BY instance, step) AS rank
  FROM mono
),
hit AS (
  SELECT instance, step,
         arg_min(CASE WHEN prev_ub IS NULL AND ub <= 0 THEN ub
                      ELSE coalesce(prev_ub, 0) + (ub - coalesce(prev_ub, 0))
                           * (rank - coalesce(prev_cum, 0)) / (cum - coalesce(prev_cum, 0)) END,
                 ub) FILTER (WHERE NOT isinf(ub) AND cum >= rank) AS q,
         max(ub) FILTER (WHERE NOT isinf(ub)) AS highest
  FROM lagged GROUP BY ALL
)
SELECT instance, step, coalesce(q, highest) AS p95 FROM hit ORDER BY instance, step
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("from_ms", type=int)
    ap.add_argument("to_ms", type=int)
    ap.add_argument("--out")
    args = ap.parse_args()
    sql = SQL.format(store=args.store, metric=METRIC, lo=args.from_ms - HOUR, hi=args.to_ms,
                     hour=HOUR, hour_s=HOUR / 1000, phi=PHI)
    con = duckdb.connect()
    rows = con.execute(sql).fetchall()  # warm: metadata
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        rows = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - start)
    if args.out:
        with open(args.out, "w") as f:
            for instance, step, p95 in rows:
                f.write("%s,%d,%r\n" % (instance, step, p95))
    print("%.4f" % best)


if __name__ == "__main__":
    main()

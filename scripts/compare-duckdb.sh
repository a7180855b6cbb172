#!/usr/bin/env bash
# The engine's range query beside DuckDB's SQL on the same Parquet segments:
# p95 latency per server per hour over a generated 20-server, 7-day fleet.
#
#   mcpops: p95(mcp.server.operation.duration[1h]) by (server), 1h step
#   DuckDB: quantile_cont(value, 0.95) grouped by server and hour
#
# Both run in the same script on the same store; each is timed over 5 runs
# (best of 5), DuckDB's load of its extension excluded.
# usage: scripts/compare-duckdb.sh [STORE_DIR]   (needs: pip install duckdb)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/mcpops-duckdb}
mkdir -p "$work"

cargo build --release --quiet --bin mcpops
bin=./target/release/mcpops
if [ ! -f "$work/store/manifest.json" ]; then
  $bin --quiet generate --servers 20 --days 7 --seed 11 --no-gzip --out "$work/fleet" >/dev/null
  $bin --quiet --store "$work/store" ingest "$work/fleet" >/dev/null
fi
from=$($bin --store "$work/store" info --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["first"])')
to=$($bin --store "$work/store" info --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["last"])')
hour=3600000
from=$(( (from / hour + 1) * hour )); to=$(( (to / hour + 1) * hour ))

best() { # best wall time of 5 runs, in seconds
  local b=999 s e d
  for _ in 1 2 3 4 5; do
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    d=$(awk -v d=$((e - s)) 'BEGIN { printf "%.4f", d / 1e9 }')
    b=$(awk -v a="$b" -v d="$d" 'BEGIN { print (d < a) ? d : a }')
  done
  echo "$b"
}

ours=$(best $bin --quiet --store "$work/store" query 'p95(mcp.server.operation.duration[1h]) by (server)' \
  --from "$((from / 1000))" --to "$((to / 1000))" --step 1h --format csv)
duck=$(python3 - "$work/store" "$from" "$to" <<'PY'
import duckdb, sys, time
store, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
sql = f"""
SELECT server, time_bucket(INTERVAL 1 hour, timestamp) AS hour,
       quantile_cont(value, 0.95) AS p95
FROM read_parquet('{store}/segments/*/*.parquet', hive_partitioning = true)
WHERE metric = 'mcp.server.operation.duration'
  AND timestamp > make_timestamp({lo - 3600000} * 1000) AND timestamp <= make_timestamp({hi} * 1000)
GROUP BY ALL ORDER BY ALL
"""
con.execute(sql).fetchall()  # warm: metadata and extension
best = min((lambda: (lambda s: (con.execute(sql).fetchall(), time.perf_counter() - s)[1])(time.perf_counter()))() for _ in range(5))
print(f"{best:.4f}")
PY
)
awk -v o="$ours" -v d="$duck" 'BEGIN {
  printf "mcpops query (process start to CSV out)  %.3f s\n", o
  printf "duckdb SQL (in process, warm)            %.3f s\n", d
  printf "ratio duckdb/mcpops                      %.2fx\n", d / o
}'

#!/usr/bin/env bash
# Saves the outputs that a refactoring must leave unchanged, byte for byte:
# `query` (table and JSON), `backtest --format json`, `analyze --format json`
# and `report.json`, on the sample fleet in data/fleet and on a generated
# 20-server week. Run it before a change and after, then compare:
#
#   scripts/golden-outputs.sh /tmp/before
#   ... change ...
#   scripts/golden-outputs.sh /tmp/after && diff -r /tmp/before /tmp/after
#
# MCPOPS_BIN names the binary to run (default: a release build of this tree).
# Each store is built once per output directory and reused on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/golden-outputs.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -z "${MCPOPS_BIN:-}" ]; then
  cargo build --release --quiet
  MCPOPS_BIN="$PWD/target/release/mcpops"
fi
bin="$MCPOPS_BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The queries span the language's families: windows, quantiles, aggregation,
# arithmetic and matching, sets, offsets, absent, forecasts.
queries=(
  'p95(mcp.server.operation.duration[1h]) by (server)'
  'count(mcp.server.operation.duration{error.type!=""}[1h]) by (server) / count(mcp.server.operation.duration[1h]) by (server)'
  'avg(process.cpu.utilization[15m]) by (server) > 0.5'
  'max(mcp.server.sessions.open[1h]) by (server) / on (server) mcp.server.sessions.limit'
  'rate(mcp.server.operation.duration[5m]) by (server, gen_ai.tool.name)'
  'p99(mcp.server.operation.duration{mcp.method.name="tools/call"}[30m]) by (gen_ai.tool.name) - p99(mcp.server.operation.duration{mcp.method.name="tools/call"}[30m] offset 1d) by (gen_ai.tool.name)'
  'topk(3, avg(process.memory.usage[1h]) by (server))'
  'time_to(disk.free_bytes[6h], 0)'
  'predict(process.memory.usage[2h], 1h) / process.memory.limit'
  'changes(mcp.server.sessions.open[10m]) by (server)'
  'sum(count(mcp.server.operation.duration[5m]) by (server, gen_ai.tool.name)) by (server)'
  'absent(mcp.server.operation.duration{server="nope"}[5m])'
  'count(mcp.server.operation.duration[1h]) by (server) unless count(mcp.server.operation.duration{error.type!=""}[1h]) by (server)'
)

run_set() {
  local name="$1" data="$2" from="$3" to="$4"
  local store="$work/$name-store" dir="$out/$name"
  mkdir -p "$dir"
  "$bin" --quiet --store "$store" ingest "$data" > /dev/null
  local i=0
  for q in "${queries[@]}"; do
    i=$((i + 1))
    {
      echo "# $q"
      "$bin" --quiet --store "$store" query "$q" --from "$from" --to "$to" --step 1h --format json 2>&1 || echo "exit $?"
      "$bin" --quiet --store "$store" query "$q" --at "$to" 2>&1 || echo "exit $?"
    } > "$dir/query-$i.txt"
  done
  "$bin" --quiet --store "$store" backtest --rules rules/mcp.rules --format json > "$dir/backtest.json" 2>&1 || echo "exit $?" >> "$dir/backtest.json"
  "$bin" --quiet --store "$store" analyze --rules rules/mcp.rules --format json > "$dir/analyze.json" 2>&1 || echo "exit $?" >> "$dir/analyze.json"
  "$bin" --quiet --store "$store" report --rules rules/mcp.rules --out "$work/$name-report" > /dev/null 2>&1 || true
  # The two fields that name the run rather than the data.
  sed -e 's/^  "generated_at": ".*",$/  "generated_at": "(normalised)",/' \
      -e 's/^  "store": ".*",$/  "store": "(normalised)",/' \
      "$work/$name-report/report.json" > "$dir/report.json"
}

run_set fleet data/fleet 2026-11-16T00:00:00Z 2026-11-19T00:00:00Z
"$bin" --quiet generate --servers 20 --days 7 --seed 11 --out "$work/week" > /dev/null
run_set week "$work/week" 2026-11-16T00:00:00Z 2026-11-23T00:00:00Z
echo "outputs in $out"

#!/usr/bin/env bash
# Peak memory and wall time of backtest, report and analyze with their
# default period, on the shipped fleet plus one sample at 1970-01-01 and one
# at 9999-12-31 (a broken exporter clock): the default period is where the
# data is dense, so both should cost what the fleet alone costs.
#
# usage: scripts/outlier-periods.sh [MCPOPS_BINARY] [WORK_DIR]
# Virtual memory is capped at 16 GiB (ulimit -v) so that a binary that tries
# to allocate tens of gigabytes fails instead of swapping the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./target/release/mcpops}
work=${2:-/tmp/mcpops-outliers}
rm -rf "$work"
mkdir -p "$work"
store="$work/store"

$bin --quiet --store "$store" ingest data/fleet >/dev/null
cat >"$work/far.om" <<'EOF'
# TYPE process.memory.usage gauge
process.memory.usage{server="mcp-01"} 1 0
process.memory.usage{server="mcp-01"} 1 253402300799
# EOF
EOF
$bin --quiet --store "$store" ingest "$work/far.om" >/dev/null

measure() { # name, then the command line; prints peak RSS, wall time, exit code
  local name=$1
  shift
  local log="$work/$name.time"
  local code=0
  (ulimit -v $((16 * 1024 * 1024)); /usr/bin/time -v "$@" >"$work/$name.out" 2>"$log") || code=$?
  local rss wall
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
  printf '%-9s peak RSS %8s kB  wall %8s  exit %s\n' "$name" "$rss" "$wall" "$code"
  grep -m1 '^mcpops:' "$log" || true
}

measure backtest $bin --quiet --store "$store" backtest --rules rules/mcp.rules --format json
measure report $bin --quiet --store "$store" report --rules rules/mcp.rules --out "$work/report"
measure analyze $bin --quiet --store "$store" analyze --format json

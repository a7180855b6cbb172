#!/usr/bin/env bash
# Ingest and storage, side by side with Prometheus on the same OpenMetrics
# file: `promtool tsdb create-blocks-from openmetrics` against
# `mcpops ingest`, both timed in the same run, both sizes on disk.
#
# usage: scripts/compare-promtool.sh [SERVERS] [DAYS]   (needs promtool: apt-get install prometheus)
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-25}
days=${2:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin mcpops
python3 scripts/make-openmetrics.py "$work/fleet.om" --servers "$servers" --days "$days"
samples=$(grep -c -v '^#' "$work/fleet.om")

secs() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); awk -v d=$((e - s)) 'BEGIN { printf "%.3f", d / 1e9 }'; }

prom_s=$(secs promtool tsdb create-blocks-from openmetrics "$work/fleet.om" "$work/prom")
ours_s=$(secs ./target/release/mcpops --quiet --store "$work/store" ingest "$work/fleet.om")
prom_b=$(du -sb "$work/prom" | cut -f1)
ours_b=$(find "$work/store/segments" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')

awk -v n="$samples" -v ps="$prom_s" -v os="$ours_s" -v pb="$prom_b" -v ob="$ours_b" 'BEGIN {
  printf "samples                 %d\n", n
  printf "promtool ingest         %.2f s  (%.0f samples/s)\n", ps, n / ps
  printf "mcpops ingest           %.2f s  (%.0f samples/s)\n", os, n / os
  printf "ingest speed ratio      %.1fx\n", ps / os
  printf "prometheus blocks       %d bytes  (%.3f B/sample)\n", pb, pb / n
  printf "mcpops segments         %d bytes  (%.3f B/sample)\n", ob, ob / n
  printf "size ratio              %.2f\n", ob / pb
}'

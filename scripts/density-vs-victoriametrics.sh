#!/usr/bin/env bash
# Storage density and ingest time, side by side with VictoriaMetrics on the
# same input in the same run: VictoriaMetrics (Debian's `victoria-metrics`, on
# loopback, fresh data dir) imports it through /api/v1/import/prometheus, is
# flushed and force-merged, and its data/ and indexdb/ directories are
# measured; `mcpops ingest` loads the same input into a fresh store, `mcpops
# compact` settles it, and its segments are measured. Each side's bytes are
# divided by the samples it stored (VictoriaMetrics' counted by exporting them
# back), and samples it dropped are reported, not hidden. A full scan is
# timed on each side as every sample exported as JSON lines
# (/api/v1/export; `mcpops export --format jsonl`).
#
# usage: scripts/density-vs-victoriametrics.sh [INPUT...]
#   INPUT: an OpenMetrics/Prometheus text file, or a directory of them
#   (.om, .prom, .txt, optionally .gz), ingested as `mcpops ingest` takes it.
#   Default: two runs, (1) a day of one Prometheus-shaped MCP server scraped
#   every 15s (histograms, counters, gauges: 1,516,820 samples, made with
#   `mcpops generate --shape prometheus`), (2) data/fleet/metrics (gauges).
#
# The mcpops binary: $MCPOPS_BIN, else target/release/mcpops, else
# target/debug/mcpops (never built here; the table says which one ran: ingest
# time of a debug build is not comparable, its density is).
# Needs victoria-metrics (apt-get install victoria-metrics), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { if [ -t 2 ]; then echo "$@" >&2; fi; }
die() { echo "density-vs-victoriametrics: $*" >&2; exit 1; }

if [ -n "${MCPOPS_BIN:-}" ]; then
  bin=$MCPOPS_BIN
elif [ -x target/release/mcpops ]; then
  bin=target/release/mcpops
elif [ -x target/debug/mcpops ]; then
  bin=target/debug/mcpops
else
  die "no mcpops binary: set MCPOPS_BIN or build target/release/mcpops"
fi
[ -x "$bin" ] || die "$bin is not an executable"
case "$bin" in
  */release/*) build=release ;;
  */debug/*) build="debug (ingest time not comparable)" ;;
  *) build="unknown build" ;;
esac
# A binary built before the last change to the store or ingest code measures
# that older code: say so (it is not rebuilt here).
stale=""
if git rev-parse --git-dir >/dev/null 2>&1; then
  newer=$(git log -1 --format=%h --since="@$(stat -c %Y "$bin")" -- src/store src/ingest || true)
  [ -n "$newer" ] && stale=", STALE: built before $newer changed src/store or src/ingest"
fi
command -v victoria-metrics >/dev/null || die "victoria-metrics is missing: apt-get install victoria-metrics"
command -v curl >/dev/null || die "curl is missing"
vm_version=$(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown)

work=$(mktemp -d)
vm_pid=""
stop_vm() {
  [ -n "$vm_pid" ] || return 0
  kill -TERM "$vm_pid" 2>/dev/null || true
  # VictoriaMetrics flushes and closes its parts on SIGTERM: give it 30s.
  for _ in $(seq 300); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$vm_pid" 2>/dev/null || true
  wait "$vm_pid" 2>/dev/null || true
  vm_pid=""
}
trap 'stop_vm; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
secs() { # seconds between two `date +%s%N`
  awk -v d=$(($2 - $1)) 'BEGIN { printf "%.3f", d / 1e9 }'
}
metric_sum() { # sum of a metric's series (name or name{...} prefix) in a /metrics dump
  awk -v m="$2" 'index($0, m) == 1 && (substr($0, length(m) + 1, 1) ~ /[{ ]/) { s += $NF } END { printf "%.0f", s }' "$1"
}

# The input's sample lines as Prometheus text with millisecond timestamps, the
# import API's unit: OpenMetrics writes seconds (told apart by magnitude, as
# mcpops does), and `# EOF` and other comments go.
to_prometheus_ms() {
  local files=()
  if [ -d "$1" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(find "$1" -type f \( -name '*.om' -o -name '*.om.gz' -o -name '*.prom' -o -name '*.prom.gz' -o -name '*.txt' -o -name '*.txt.gz' \) | sort)
    [ "${#files[@]}" -gt 0 ] || die "$1 holds no .om/.prom/.txt files"
  else
    files=("$1")
  fi
  zcat -f -- "${files[@]}" | awk '
    /^#/ || NF == 0 { next }
    {
      if (match($0, /[ \t][0-9.eE+-]+[ \t]*$/) && NF >= 3) {
        head = substr($0, 1, RSTART); ts = substr($0, RSTART + 1) + 0
        if (ts < 1e11) ts *= 1000
        printf "%s%.0f\n", head, ts
      } else print
      n++
    }
    END { print n > "/dev/stderr" }' 2>"$work/lines"
}

rows=()
run() {
  local input=$1 name=$2 vmdir="$work/vm-$2" store="$work/store-$2" port t0 t1
  say "== $name: $input"
  to_prometheus_ms "$input" >"$work/$name.prom"
  local lines
  lines=$(cat "$work/lines")

  # VictoriaMetrics: retention of 100 years, so old timestamps are kept.
  port=$(free_port)
  victoria-metrics -storageDataPath "$vmdir" -httpListenAddr "127.0.0.1:$port" \
    -retentionPeriod 100y -loggerLevel ERROR >"$work/vm-$name.log" 2>&1 &
  vm_pid=$!
  local url="http://127.0.0.1:$port" up=""
  for _ in $(seq 200); do
    if curl -sf "$url/health" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$vm_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$up" ] || { cat "$work/vm-$name.log" >&2; die "victoria-metrics did not start on $url"; }
  say "   victoria-metrics importing $lines lines"
  t0=$(date +%s%N)
  curl -sSf --max-time 600 -X POST -T "$work/$name.prom" "$url/api/v1/import/prometheus"
  curl -sSf --max-time 120 "$url/internal/force_flush"
  t1=$(date +%s%N)
  local vm_s
  vm_s=$(secs "$t0" "$t1")
  curl -sSf --max-time 10 "$url/internal/force_merge" >/dev/null
  # The forced merge runs in the background: wait (at most 5 min) until no
  # merge is active and the parts on disk stop changing.
  local prev="" cur
  for _ in $(seq 300); do
    sleep 1
    curl -sSf --max-time 10 "$url/metrics" >"$work/vm-metrics"
    cur=$(du -sb "$vmdir/data" "$vmdir/indexdb" | awk '{s += $1} END {print s}')
    if [ "$(metric_sum "$work/vm-metrics" vm_active_force_merges)" = 0 ] &&
      [ "$(metric_sum "$work/vm-metrics" vm_active_merges)" = 0 ] && [ "$cur" = "$prev" ]; then
      break
    fi
    prev=$cur
  done
  local vm_n ignored vm_scan
  # A full scan: every sample exported as JSON lines (timed on its own,
  # then counted).
  t0=$(date +%s%N)
  curl -sSf --max-time 600 -G "$url/api/v1/export" --data-urlencode 'match[]={__name__=~".+"}' \
    --data-urlencode start=0 -o "$work/vm-export.jsonl"
  t1=$(date +%s%N)
  vm_scan=$(secs "$t0" "$t1")
  vm_n=$(python3 -c 'import json, sys; print(sum(len(json.loads(l)["timestamps"]) for l in open(sys.argv[1]) if l.strip()))' "$work/vm-export.jsonl")
  rm -f "$work/vm-export.jsonl"
  ignored=$(grep -E '^vm_(rows_ignored_total|rows_invalid_total|too_long_lines_skipped_total|protoparser_read_errors_total)' "$work/vm-metrics" |
    awk '$NF != 0 { printf "%s%s=%s", sep, $1, $NF; sep = ", " }')
  stop_vm
  local vm_data vm_index
  vm_data=$(du -sb "$vmdir/data" | cut -f1)
  vm_index=$(du -sb "$vmdir/indexdb" | cut -f1)

  # mcpops: a fresh store, ingest timed, then compact (what a settled store is).
  say "   mcpops ingest"
  t0=$(date +%s%N)
  "$bin" --quiet --store "$store" ingest "$input" >/dev/null
  t1=$(date +%s%N)
  local ours_s
  ours_s=$(secs "$t0" "$t1")
  "$bin" --quiet --store "$store" compact >/dev/null
  t0=$(date +%s%N)
  "$bin" --quiet --store "$store" export --format jsonl >/dev/null
  t1=$(date +%s%N)
  local ours_scan
  ours_scan=$(secs "$t0" "$t1")
  "$bin" --quiet --store "$store" info --format json >"$work/info.json"
  local ours_n ours_b ours_segs
  read -r ours_n ours_b ours_segs < <(python3 -c 'import json, sys; i = json.load(open(sys.argv[1])); print(i["samples"], i["bytes"], i["segments"])' "$work/info.json")
  local ours_du
  ours_du=$(find "$store/segments" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')

  rows+=("$name|$lines|victoria-metrics $vm_version|$vm_n|$((vm_data + vm_index))|$vm_s|$vm_scan|data $vm_data + indexdb $vm_index${ignored:+; dropped: $ignored}")
  rows+=("$name|$lines|mcpops $build|$ours_n|$ours_b|$ours_s|$ours_scan|$ours_segs segment(s), $ours_du bytes under segments/")
  if [ "$vm_n" != "$lines" ] || [ "$ours_n" != "$lines" ]; then
    echo "warning: $name: input has $lines samples, victoria-metrics stored $vm_n, mcpops $ours_n" >&2
  fi
  rm -rf "$vmdir" "$store" "$work/$name.prom"
}

if [ "$#" -eq 0 ]; then
  say "== making the 15s Prometheus-shaped input"
  "$bin" --quiet generate --servers 1 --days 1 --rate 0.5 --scrape-interval 15s \
    --shape prometheus --no-gzip --out "$work/gen" >/dev/null
  run "$work/gen/metrics/mcp-01.om" prom15s
  [ -d data/fleet/metrics ] || die "data/fleet/metrics is missing"
  run data/fleet/metrics fleet
else
  i=0
  for input in "$@"; do
    [ -e "$input" ] || die "$input: no such file or directory"
    i=$((i + 1))
    run "$input" "input$i"
  done
fi

echo "mcpops binary: $bin ($build)$stale; victoria-metrics $vm_version; $(nproc) CPU(s)"
printf '%s\n' "${rows[@]}" | awk -F'|' '
  BEGIN { printf "%-8s %-44s %9s %10s %9s %9s %7s  %s\n", "input", "engine", "samples", "bytes", "B/sample", "ingest s", "scan s", "detail" }
  {
    bps = $4 > 0 ? $5 / $4 : 0
    printf "%-8s %-44s %9.0f %10.0f %9.3f %9.2f %7.2f  %s\n", $1, substr($3, 1, 44), $4, $5, bps, $6, $7, $8
    if (NR % 2 == 1) { vb = bps; vs = $6; vx = $7 } else {
      printf "%-8s mcpops/VM: size %.2fx per sample, ingest time %.2fx (mcpops %.2fx as fast), full scan time %.2fx\n", $1, bps / vb, $6 / vs, vs / $6, $7 / vx
    }
  }'

#!/usr/bin/env bash
# A store on object storage against the same store in a directory, in one
# run: `mcpops ingest` of the same input into a fresh directory and into a
# fresh prefix of a local S3 server (moto_server on loopback, started and
# stopped here), then a full scan of each (every sample exported as JSON
# lines), each timed RUNS times, alternating. Prints the times and the
# ratios, and checks that both exports are the same bytes.
#
# usage: scripts/s3-vs-local.sh [INPUT] [RUNS]
#   INPUT: what `mcpops ingest` takes (default: a day of one Prometheus-shaped
#   MCP server scraped every 15 s, 1,516,820 samples, made with `mcpops
#   generate --shape prometheus`); RUNS: default 3.
#
# The mcpops binary: $MCPOPS_BIN, else target/release/mcpops, else
# target/debug/mcpops (never built here). Needs moto_server
# (pip install "moto[server]>=5.2.1"), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { if [ -t 2 ]; then echo "$@" >&2; fi; }
die() { echo "s3-vs-local: $*" >&2; exit 1; }

if [ -n "${MCPOPS_BIN:-}" ]; then
  bin=$MCPOPS_BIN
elif [ -x target/release/mcpops ]; then
  bin=target/release/mcpops
elif [ -x target/debug/mcpops ]; then
  bin=target/debug/mcpops
else
  die "no mcpops binary: set MCPOPS_BIN or build target/release/mcpops"
fi
command -v moto_server >/dev/null || die "moto_server is missing: pip install \"moto[server]>=5.2.1\""
command -v curl >/dev/null || die "curl is missing"

work=$(mktemp -d)
moto_pid=""
stop_moto() {
  [ -n "$moto_pid" ] || return 0
  kill -TERM "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  moto_pid=""
}
trap 'stop_moto; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

secs() { awk -v d=$(($2 - $1)) 'BEGIN { printf "%.3f", d / 1e9 }'; }

input=${1:-}
runs=${2:-3}
if [ -z "$input" ]; then
  say "== making the 15s Prometheus-shaped input"
  "$bin" --quiet generate --servers 1 --days 1 --rate 0.5 --scrape-interval 15s \
    --shape prometheus --no-gzip --out "$work/gen" >/dev/null
  input="$work/gen/metrics/mcp-01.om"
fi
[ -e "$input" ] || die "$input: no such file or directory"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
endpoint="http://127.0.0.1:$port"
for _ in $(seq 300); do
  curl -sf "$endpoint/" >/dev/null 2>&1 && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; die "moto_server exited"; }
  sleep 0.1
done
curl -sf -X PUT "$endpoint/bench" >/dev/null || die "cannot create the bucket"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN

rows=()
for run in $(seq "$runs"); do
  local_store="$work/local-$run"
  s3_store="s3://bench/run-$run"
  for side in local s3; do
    if [ "$side" = local ]; then store=$local_store; else store=$s3_store; fi
    say "== run $run: $side"
    t0=$(date +%s%N)
    "$bin" --quiet --store "$store" --s3-endpoint "$endpoint" ingest "$input" >/dev/null
    t1=$(date +%s%N)
    ingest=$(secs "$t0" "$t1")
    t0=$(date +%s%N)
    "$bin" --quiet --store "$store" --s3-endpoint "$endpoint" export --format jsonl >"$work/$side.jsonl"
    t1=$(date +%s%N)
    scan=$(secs "$t0" "$t1")
    rows+=("$run|$side|$ingest|$scan")
  done
  cmp -s "$work/local.jsonl" "$work/s3.jsonl" || die "run $run: the exports differ"
  samples=$(wc -l <"$work/local.jsonl")
  rm -rf "$local_store" "$work/local.jsonl" "$work/s3.jsonl"
done

echo "binary: $bin; input: $input ($samples samples); S3: moto_server $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?') on loopback"
echo
echo "| run | store | ingest s | full scan s |"
echo "|---|---|---|---|"
for r in "${rows[@]}"; do
  IFS='|' read -r run side ingest scan <<<"$r"
  echo "| $run | $side | $ingest | $scan |"
done
echo
printf '%s\n' "${rows[@]}" | awk -F'|' '
  $2 == "local" { li[$1] = $3; ls[$1] = $4 }
  $2 == "s3" { si[$1] = $3; ss[$1] = $4 }
  END {
    for (r in li) printf "run %s: S3 ingest %.2fx local time, S3 scan %.2fx local time\n", r, si[r] / li[r], ss[r] / ls[r]
  }' | sort

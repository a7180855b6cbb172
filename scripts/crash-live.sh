#!/usr/bin/env bash
# The live store's crash test at full length: a child writer (the test
# binary run again) appends numbered batches from two threads and prints an
# acknowledgement after each; it is killed with SIGKILL at a random moment
# (0-300 ms after its first acknowledgement, with flushes every 30-150
# samples so that kills land in appends, flushes and manifest writes), and
# the reopened store must hold every acknowledged sample bit for bit,
# nothing half-visible, and verify clean. Prints one line per kill.
#
# usage: scripts/crash-live.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export MCPOPS_CRASH_KILLS=${1:-20}
export MCPOPS_CRASH_SEED=${2:-537395240}
exec cargo test --test it -- --ignored --exact live_store::kill_9_twenty_times --nocapture

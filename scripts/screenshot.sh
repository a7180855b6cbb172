#!/usr/bin/env bash
# Renders a report's HTML dashboard to PNG with headless Chromium (Debian's
# `chromium` package: apt-get install chromium), for the README and for
# looking at what the dashboard really shows.
#
#   scripts/screenshot.sh [REPORT.html] [OUT.png]
#
# Defaults: mcpops-report/report.html -> docs/report.png, at 1280 px wide
# (a laptop's browser window). WIDTH and HEIGHT set the window (the page is
# cut at HEIGHT). Chromium runs with a throwaway profile and without any
# network activity of its own.
set -euo pipefail
html=${1:-mcpops-report/report.html}
png=${2:-docs/report.png}
width=${WIDTH:-1280}
height=${HEIGHT:-3400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "screenshot.sh: needs Chromium (apt-get install chromium)" >&2
  exit 1
fi
[ -f "$html" ] || { echo "screenshot.sh: no $html (run: cargo run --release -- report)" >&2; exit 1; }
mkdir -p "$(dirname "$png")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars \
  --window-size="$width,$height" \
  --screenshot="$(realpath -m "$png")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $png"

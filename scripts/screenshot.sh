#!/usr/bin/env bash
# Renders a report's HTML dashboard to PNG with headless Chromium (Debian's
# `chromium` package: apt-get install chromium), for the README and for
# looking at what the dashboard really shows.
#
#   scripts/screenshot.sh [REPORT.html] [OUT.png]
#
# Defaults: mcpops-report/report.html -> docs/report.png. WIDTH and HEIGHT
# set the window (the page is cut at HEIGHT).
set -euo pipefail
html=${1:-mcpops-report/report.html}
png=${2:-docs/report.png}
width=${WIDTH:-1240}
height=${HEIGHT:-3400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "screenshot.sh: needs Chromium (apt-get install chromium)" >&2
  exit 1
fi
[ -f "$html" ] || { echo "screenshot.sh: no $html (run: cargo run --release -- report)" >&2; exit 1; }
mkdir -p "$(dirname "$png")"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$width,$height" \
  --screenshot="$(realpath -m "$png")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $png"

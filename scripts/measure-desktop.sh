#!/usr/bin/env bash
# Measures the release desktop app: binary size, and idle memory (PSS, all processes: the app
# plus its WebKit web and network processes) after it has settled, under a private Xvfb.
# Usage: scripts/measure-desktop.sh [SECONDS_TO_SETTLE]   (default 15)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
settle="${1:-15}"

ensure_toolchains
ensure_apt "${APP_PACKAGES[@]}" xvfb xauth imagemagick
ensure_npm "$ROOT/ui"
build_ui
say "building the release app"
(cd "$ROOT" && cargo build --release --locked -p sotto-desktop)
bin="$TARGET_DIR/release/sotto-desktop"

display=":$((200 + RANDOM % 100))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
profile="$(mktemp -d)"
trap 'kill "$app" "$xvfb" 2>/dev/null || true; rm -rf "$profile"' EXIT
sleep 1
DISPLAY="$display" SOTTO_PROFILE="$profile" "$bin" >/dev/null 2>&1 &
app=$!
sleep "$settle"

pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
total=0
for pid in $(tree "$app"); do
  kib=$(pss_kib "$pid")
  printf '  %-8s %-28s %8s KiB PSS\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null)" "$kib"
  total=$((total + kib))
done
mkdir -p "$ROOT/tests/e2e/artifacts"
DISPLAY="$display" import -window root "$ROOT/tests/e2e/artifacts/release-window.png" 2>/dev/null || true
printf 'binary: %s bytes (%s MiB)\n' "$(stat -c %s "$bin")" "$(( $(stat -c %s "$bin") / 1048576 ))"
printf 'idle memory, all processes: %s MiB PSS\n' "$((total / 1024))"
printf 'screenshot: tests/e2e/artifacts/release-window.png\n'

#!/usr/bin/env bash
# Measures the release desktop app on this machine and prints the figures quoted in notes:
#   1. start-up: launch to first painted frame and to the first usable screen (median of runs;
#      the first run follows a page-cache drop when the system allows it);
#   2. idle memory: PSS of the app with all its WebKit processes, next to an empty Tauri window
#      (src-tauri/examples/empty_window.rs, same Tauri, features and profile) measured the same way;
#   3. scrolling a 100,000-message conversation in the real window (tests/e2e/measure/scroll.mjs);
#   4. the gzipped UI bundle.
# Usage: scripts/measure-desktop.sh [--runs N] [--settle SECONDS] [--messages N] [--skip-scroll]
#                                   [--no-build]
# --no-build measures the release binaries already in the target directory as they are.
# Everything runs under a private Xvfb display with throwaway profiles and a throwaway relay.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# A desktop session always has a D-Bus session bus. Without one (a bare Xvfb, CI) GLib starts
# one through dbus-launch in every process that asks, which adds a few hundred milliseconds to
# each start and is not what people see; so measure inside a session bus like theirs.
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-run-session >/dev/null; then
  exec dbus-run-session -- bash "$0" "$@"
fi

runs=5 settle=15 messages=100000 scroll=1 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --settle) settle="$2"; shift 2 ;;
    --messages) messages="$2"; shift 2 ;;
    --skip-scroll) scroll=0; shift ;;
    --no-build) build=0; shift ;;
    *) die "unknown option $1 (see the header of $0)" ;;
  esac
done

ensure_toolchains
ensure_apt "${APP_PACKAGES[@]}" xvfb xauth webkit2gtk-driver
ensure_npm "$ROOT/ui"
ensure_npm "$ROOT/tests/e2e"
if [ "$scroll" = 1 ] && ! command -v tauri-driver >/dev/null; then
  say "installing tauri-driver (once)"
  cargo install --locked --quiet tauri-driver --version 2.1.0
fi
if [ "$build" = 1 ]; then
  build_ui
  say "building the release app, the empty-window baseline, the relay, the CLI and the seeder"
  (cd "$ROOT" && cargo build --release --locked -p sotto-desktop --bin sotto-desktop --example empty_window \
    && cargo build --release --locked -p sotto -p sotto-relay --bins --example seed_conversation)
fi
release="$TARGET_DIR/release"
for bin in sotto-desktop examples/empty_window sotto sotto-relay examples/seed_conversation; do
  [ -x "$release/$bin" ] || die "$release/$bin is missing: run without --no-build"
done
app_bin="$release/sotto-desktop"
empty_bin="$release/examples/empty_window"

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

display=":$((200 + RANDOM % 100))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
export DISPLAY="$display"

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# --- 1. start-up --------------------------------------------------------------------------
# Launches a program with SOTTO_STARTUP_REPORT=1 and stderr to LOG, waits (at most 30 s) until
# it reports STAGE, stops it, and sets `t0` to the launch time in epoch ms.
launch_until() {
  local stage="$1" log="$2"; shift 2
  t0=$(now_ms)
  env SOTTO_STARTUP_REPORT=1 "$@" 2>"$log" >/dev/null &
  local pid=$!
  for _ in $(seq 1 300); do
    grep -q "stage=$stage" "$log" && break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# The epoch ms a LOG reports for STAGE (empty if none).
stage_at() { sed -n "s/.*stage=$2 epoch_ms=\([0-9]*\).*/\1/p" "$1" | head -1; }

say "start-up: $runs launches on fresh profiles"
paint=() screen=()
for i in $(seq 1 "$runs"); do
  note=""
  if [ "$i" = 1 ]; then
    if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then note=" (page cache dropped)"; else
      note=" (page cache could not be dropped here)"; fi
  fi
  log="$work/startup-$i.log"
  launch_until first-screen "$log" SOTTO_PROFILE="$work/startup-$i" "$app_bin"
  p=$(stage_at "$log" first-paint) s=$(stage_at "$log" first-screen)
  [ -n "$p" ] && [ -n "$s" ] || die "launch $i reported no start-up stages: $(cat "$log")"
  paint+=($((p - t0))) screen+=($((s - t0)))
  printf '  launch %s: first paint %4s ms, first screen %4s ms (%s ms of it after main)%s\n' "$i" \
    "$((p - t0))" "$((s - t0))" "$(sed -n 's/.*stage=first-paint .*since_run_ms=\([0-9?]*\).*/\1/p' "$log" | head -1)" "$note"
done
paint_median=$(printf '%s\n' "${paint[@]}" | median)
screen_median=$(printf '%s\n' "${screen[@]}" | median)

say "start-up of the empty Tauri window: $runs launches"
blank=()
for i in $(seq 1 "$runs"); do
  log="$work/empty-$i.log"
  launch_until page-loaded "$log" "$empty_bin"
  b=$(stage_at "$log" page-loaded)
  [ -n "$b" ] || die "the empty window reported no page load: $(cat "$log")"
  blank+=($((b - t0)))
  printf '  launch %s: blank page loaded %4s ms\n' "$i" "$((b - t0))"
done
blank_median=$(printf '%s\n' "${blank[@]}" | median)

# --- 2. idle memory -----------------------------------------------------------------------
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
# Starts a program, lets it settle, prints each of its processes and returns the PSS total.
idle_pss() {
  local label="$1"; shift
  "$@" >/dev/null 2>&1 &
  local pid=$! total=0
  sleep "$settle"
  for p in $(tree "$pid"); do
    local kib
    kib=$(pss_kib "$p")
    printf '  %-14s %-8s %-26s %8s KiB\n' "$label" "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" "$kib" >&2
    total=$((total + kib))
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$total"
}
say "idle memory after ${settle} s (PSS of every process)"
app_pss=$(idle_pss sotto env SOTTO_PROFILE="$work/idle" "$app_bin")
empty_pss=$(idle_pss empty-window "$empty_bin")

# --- 3. scrolling -------------------------------------------------------------------------
if [ "$scroll" = 1 ]; then
  say "scrolling: a conversation of $messages messages"
  relay_dir="$work/relay"
  port=$((20000 + RANDOM % 20000))
  "$release/sotto-relay" --listen "127.0.0.1:$port" --data-dir "$relay_dir" >/dev/null 2>&1 &
  pids+=($!)
  sleep 1
  export SOTTO_PASSPHRASE="measure passphrase 1"
  sotto() { "$release/sotto" --profile "$work/$1" "${@:2}" >/dev/null; }
  sotto alice init --relay "ws://127.0.0.1:$port" --username alice
  sotto bob init --relay "ws://127.0.0.1:$port" --username bob
  sotto alice send bob "hello"
  "$release/examples/seed_conversation" "$work/alice" bob "$messages"
  (cd "$ROOT/tests/e2e" && SOTTO_DESKTOP_BIN="$app_bin" SOTTO_MEASURE_PROFILE="$work/alice" \
    SOTTO_MEASURE_CONTACT=bob node measure/scroll.mjs) || say "scroll measurement failed"
  unset SOTTO_PASSPHRASE
fi

# --- 4. bundle ----------------------------------------------------------------------------
js=0 css=0
for f in "$ROOT"/ui/dist/assets/*.js; do js=$((js + $(gzip -9 -c "$f" | wc -c))); done
for f in "$ROOT"/ui/dist/assets/*.css; do css=$((css + $(gzip -9 -c "$f" | wc -c))); done

say "results"
printf 'start-up (median of %s): first paint %s ms, first usable screen %s ms; empty Tauri window: blank page loaded %s ms\n' \
  "$runs" "$paint_median" "$screen_median" "$blank_median"
printf 'idle memory: Sotto %s MiB PSS, empty Tauri window %s MiB PSS, ratio %s\n' \
  "$((app_pss / 1024))" "$((empty_pss / 1024))" "$(awk -v a="$app_pss" -v b="$empty_pss" 'BEGIN {printf "%.2f", a / b}')"
printf 'UI bundle, gzip -9: JS %s bytes, CSS %s bytes, total %s KiB\n' "$js" "$css" "$(((js + css) / 1024))"
printf 'binary: %s MiB\n' "$(( $(stat -c %s "$app_bin") / 1048576 ))"

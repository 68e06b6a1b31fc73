#!/usr/bin/env bash
# README command one: install what is missing, then build and open the Sotto desktop app.
# Arguments are passed to the app, e.g. `scripts/run.sh --profile ~/sotto-second`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_toolchains
ensure_apt "${APP_PACKAGES[@]}"
ensure_npm "$ROOT/ui"
build_ui
say "building and starting Sotto (the first build takes several minutes)"
cd "$ROOT"
exec cargo run --release --quiet -p sotto-desktop -- "$@"

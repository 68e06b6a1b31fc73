#!/usr/bin/env bash
# README command two: install what is missing, then run every check and test Sotto has.
# Exits non-zero if any step fails. `scripts/test.sh --list` prints the steps;
# `scripts/test.sh STEP...` runs only those (after the set-up).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TAURI_DRIVER_VERSION=2.1.0
CARGO_DENY_VERSION=0.20.2

setup() {
  ensure_toolchains
  ensure_apt "${APP_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  ensure_npm "$ROOT/ui"
  ensure_npm "$ROOT/tests/e2e"
  ensure_cargo_tool tauri-driver tauri-driver "$TAURI_DRIVER_VERSION"
  ensure_cargo_tool cargo-deny cargo-deny "$CARGO_DENY_VERSION"
  ensure_venv
}

# The independent Double Ratchet implementation (PyPI doubleratchet) the protocol is tested
# against runs from a private virtual environment.
ensure_venv() {
  local req="$ROOT/tests/interop/requirements.txt" stamp="$ROOT/.venv/.requirements"
  if [ ! -x "$ROOT/.venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    say "installing the Python interop peer"
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
  export SOTTO_PYTHON="$ROOT/.venv/bin/python"
}

step_ui_build() { build_ui; }
step_fmt() { cargo fmt --all --check; }
step_clippy() { cargo clippy --workspace --all-targets --locked -- -D warnings; }
# The RustSec advisory database is a git repository outside the registries this machine can
# reach, so advisories are checked only where it can be fetched (SOTTO_DENY_ADVISORIES=1).
step_deny() {
  if [ "${SOTTO_DENY_ADVISORIES:-0}" = 1 ]; then cargo deny --locked check; else
    cargo deny --locked check licenses bans sources; fi
}
# The store's keyring tests talk to a real Secret Service: a private D-Bus session with an
# unlocked gnome-keyring whose files live in a throwaway folder.
step_rust_tests() {
  local keyring_data rc=0
  keyring_data="$(mktemp -d)"
  # The client's tests run the relay binary that this same workspace build produces.
  SOTTO_RELAY_BIN="$TARGET_DIR/debug/sotto-relay" \
  XDG_DATA_HOME="$keyring_data" dbus-run-session -- bash -c '
    printf sotto-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1
    cargo nextest run --workspace --locked --no-fail-fast' || rc=$?
  rm -rf "$keyring_data"
  return "$rc"
}
step_doc_tests() { cargo test --workspace --locked --doc --quiet; }
step_ui_check() { (cd "$ROOT/ui" && npm run --silent check); }
step_ui_lint() { (cd "$ROOT/ui" && npm run --silent lint); }
step_ui_test() { (cd "$ROOT/ui" && npm run --silent test); }
step_e2e() {
  # Same target set as the nextest step, so the same features and no rebuild of dependencies.
  cargo build --workspace --locked --bins --tests
  # The camera permission handler is checked outside WebDriver by this small window.
  cargo build --locked -p sotto-desktop --example camera_probe
  (cd "$ROOT/tests/e2e" && SOTTO_DESKTOP_BIN="$TARGET_DIR/debug/sotto-desktop" \
    SOTTO_CAMERA_PROBE_BIN="$TARGET_DIR/debug/examples/camera_probe" npm run --silent test)
}

# Order matters: the desktop crate embeds ui/dist, so the UI is built before any cargo step.
STEPS=(ui_build fmt clippy deny rust_tests doc_tests ui_check ui_lint ui_test e2e)

if [ "${1:-}" = --list ]; then printf '%s\n' "${STEPS[@]}"; exit 0; fi
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${STEPS[@]}")

cd "$ROOT"
started=$SECONDS
setup
failed=()
for step in "${selected[@]}"; do
  declare -F "step_$step" >/dev/null || die "unknown step '$step' (see --list)"
  say "step $step"
  t0=$SECONDS
  if "step_$step"; then
    say "step $step ok ($((SECONDS - t0)) s)"
  else
    say "step $step FAILED ($((SECONDS - t0)) s)"
    failed+=("$step")
  fi
done

say "finished in $((SECONDS - started)) s"
if [ ${#failed[@]} -ne 0 ]; then
  printf 'FAILED steps: %s\n' "${failed[*]}" >&2
  exit 1
fi
say "every step passed"

# Shared helpers for run.sh and test.sh: install only what is missing, quietly and idempotently.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# Where cargo puts build output (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export TARGET_DIR

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else
    command -v sudo >/dev/null || die "installing system packages needs root or sudo: $*"
    sudo "$@"
  fi
}

# Debian/Ubuntu packages the desktop app needs to build and run (Tauri 2 on WebKitGTK 4.1).
APP_PACKAGES=(libwebkit2gtk-4.1-dev build-essential curl file pkg-config libssl-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev libdbus-1-dev)
# What the test suite needs on top: a virtual display and WebDriver for the real window, a
# Secret Service daemon for the keyring, PostgreSQL for the multi-node relay, Python for the
# independent Double Ratchet peer, imagemagick for screenshots.
TEST_PACKAGES=(xvfb xauth webkit2gtk-driver gnome-keyring dbus dbus-x11 libsecret-tools
  postgresql python3-venv imagemagick)

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get: install them with your package manager"
  say "installing system packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_toolchains() {
  command -v cargo >/dev/null || die "Rust is missing: install it from https://rustup.rs (stable), then rerun"
  if ! command -v node >/dev/null; then ensure_apt nodejs npm; fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is needed (found $(node --version))"
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  fi
}

# npm packages: `npm ci` when node_modules is missing or older than the lock file.
ensure_npm() {
  local dir="$1"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing npm packages in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# A cargo-installed tool at an exact version (built once, then reused).
ensure_cargo_tool() {
  local bin="$1" crate="$2" version="$3"
  if ! command -v "$bin" >/dev/null || ! cargo install --list | grep -qx "$crate v$version:"; then
    say "installing $crate $version (once)"
    cargo install --locked --quiet "$crate" --version "$version"
  fi
}

build_ui() {
  say "building the UI"
  (cd "$ROOT/ui" && npm run --silent build)
}

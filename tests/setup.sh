#!/usr/bin/env bash
# Installs whatever is missing on a fresh machine; quick when everything is there already.
#
#   tests/setup.sh build   what `npm start` needs: the wasm32 Rust target and wasm-bindgen's CLI
#   tests/setup.sh test    that, plus what `npm test` needs: rustfmt, clippy, node_modules (playwright-core) and,
#                          as root, Debian's Chromium, Mesa's lavapipe and Fashion-MNIST
#
# SETUP_DRY_RUN=1 prints each step it would take ("setup: would run: ...") and changes nothing;
# tests/setup.test.mjs runs it that way with each tool hidden from PATH.
#
# Every check is written so that a missing tool makes the check say "missing", never end the
# script: under `set -euo pipefail`, `$(tool --version | awk ...)` exits when `tool` is absent.
set -euo pipefail

mode=${1:-test}
case "$mode" in build | test) ;; *) echo "usage: tests/setup.sh [build|test]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
dry=${SETUP_DRY_RUN:-0}

has() { command -v "$1" >/dev/null 2>&1; }

# One step of the plan: run it, or in a dry run only say it.
step() {
  if [ "$dry" = 1 ]; then
    echo "setup: would run: $*"
  else
    echo "setup: $*"
    "$@"
  fi
}

if ! has cargo || ! has rustc; then
  echo "setup: Rust is required: install it with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi

# The browser build's target.
if has rustup; then
  targets=$(rustup target list --installed 2>/dev/null || true)
  grep -qx 'wasm32-unknown-unknown' <<<"$targets" || step rustup target add wasm32-unknown-unknown
elif [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]; then
  echo "setup: the wasm32-unknown-unknown target is missing and there is no rustup to add it;" \
    "install Rust with rustup (https://rustup.rs) or add the target for your toolchain" >&2
  exit 1
fi

# wasm-bindgen's CLI must equal the wasm-bindgen crate in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")
have=""
if has wasm-bindgen; then
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
fi
if [ -z "$want" ]; then
  echo "setup: Cargo.lock names no wasm-bindgen version" >&2
  exit 1
fi
if [ "$have" != "$want" ]; then
  # Not --locked: a dependency pinned in its own lock file is not always in the crates index.
  # --force: cargo remembers what it installed (~/.cargo/.crates.toml), so without it a CLI whose
  # binary was deleted counts as installed and nothing is done.
  step cargo install -q --force wasm-bindgen-cli --version "$want"
  if [ "$dry" != 1 ] && [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)" != "$want" ]; then
    echo "setup: wasm-bindgen $want was installed, but \`wasm-bindgen --version\` does not answer $want:" \
      "put cargo's bin folder (usually ~/.cargo/bin) first on PATH, then run this again" >&2
    exit 1
  fi
fi

[ "$mode" = build ] && exit 0

# The format and lint checks of `npm test` (in rustup's default profile, but not in minimal ones).
for tool in fmt clippy; do
  cargo "$tool" --version >/dev/null 2>&1 || step rustup component add "$([ "$tool" = fmt ] && echo rustfmt || echo clippy)"
done

# playwright-core drives the system Chromium (it cannot download browsers here).
[ -f "$root/node_modules/playwright-core/package.json" ] ||
  step npm ci --prefix "$root" --no-audit --no-fund --loglevel=error

# Debian packages: Chromium for the browser tests (its SwiftShader gives WebGPU), Mesa's
# lavapipe (a Vulkan driver on the CPU, so the WGSL shaders are tested without a GPU),
# Fashion-MNIST, and fonts for Thai and the CJK scripts (the page uses the system's fonts; the
# language tests render and screenshot every language).
installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [ "$status" = "install ok installed" ]
}
missing=()
has chromium || missing+=(chromium)
for p in mesa-vulkan-drivers libvulkan1 dataset-fashion-mnist fonts-noto-cjk fonts-tlwg-loma-otf; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && has apt-get; then
    step apt-get update -qq
    step env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "setup: cannot install ${missing[*]} (needs root and apt-get); install them to run every test" \
      "(without them the GPU and browser tests say they were skipped)"
  fi
fi

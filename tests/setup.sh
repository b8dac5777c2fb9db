#!/usr/bin/env bash
# Installs what the tests need on a fresh machine; quick when everything is there already.
set -euo pipefail

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Debian packages: Mesa's lavapipe (a Vulkan driver on the CPU, so the WGSL shaders are tested
# on machines without a GPU), Chromium for the browser tests (its own SwiftShader gives WebGPU)
# and Fashion-MNIST. Needs root; skipped otherwise.
apt_packages=(mesa-vulkan-drivers libvulkan1 dataset-fashion-mnist chromium)
missing=()
for p in "${apt_packages[@]}"; do have_pkg "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not root; skipping ${missing[*]} (some tests will say they were skipped)"
  fi
fi

command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "setup: rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must match the wasm-bindgen crate in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$(dirname "$0")/../Cargo.lock")
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ -n "$want" ] && [ "$have" != "$want" ]; then
  echo "setup: cargo install wasm-bindgen-cli --version $want (a few minutes, once)"
  cargo install -q wasm-bindgen-cli --version "$want"
fi

# playwright-core drives the system Chromium (it cannot download browsers here).
cd "$(dirname "$0")/.."
if [ ! -d node_modules/playwright-core ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

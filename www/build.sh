#!/usr/bin/env bash
# `npm run build`: builds the wasm library for the page.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh >/dev/null
cargo build --release --target wasm32-unknown-unknown --lib

#!/usr/bin/env bash
# `npm run build`: the wasm module and its JS glue into www/pkg. www/ is then a static site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh build >&2
cargo build --locked --profile wasm-release --target wasm32-unknown-unknown --lib
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
  target/wasm32-unknown-unknown/wasm-release/latent_explorer.wasm
wasm=www/pkg/latent_explorer_bg.wasm
echo "built www/pkg: wasm $(wc -c <"$wasm") bytes ($(gzip -9c "$wasm" | wc -c) gzipped), glue $(gzip -9c www/pkg/latent_explorer.js | wc -c) bytes gzipped" >&2

#!/usr/bin/env bash
# `npm test`: every test of the project. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh

# The tests read MNIST from here; the product itself never looks at ../shared.
export MNIST_DIR="${MNIST_DIR:-$PWD/../shared/data/mnist}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "== cargo test"
cargo test --release --locked

echo "== the library builds for wasm32"
cargo build --release --locked --target wasm32-unknown-unknown --lib

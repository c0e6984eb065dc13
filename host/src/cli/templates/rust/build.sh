#!/usr/bin/env bash
# Build {{name}} into {{snake}}.wasm. Needs Rust and its WebAssembly target: rustup target add wasm32-wasip2
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
target_dir="$(cargo metadata --no-deps --format-version 1 | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')"
cp "$target_dir/wasm32-wasip2/release/{{snake}}.wasm" {{snake}}.wasm
echo "built {{snake}}.wasm"

#!/usr/bin/env bash
# Builds the example plugins into ./plugins (with their manifests) and starts the chat server with them.
# webhook-bridge is left out: it needs a webhook consumer (see its manifest).
# Extra arguments go to `chathooks serve` (e.g. `scripts/run.sh --listen 0.0.0.0:8787`); see
# `cargo run -p chathooks -- serve --help`. Data goes to ./data; the first start prints the admin key.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
guest_dir="${target_dir:-target}/guest"
echo "building the example plugins (plugins-examples/) ..." >&2
cargo build --release --target wasm32-wasip2 --manifest-path plugins-examples/Cargo.toml \
  --target-dir "$guest_dir"
mkdir -p plugins
for wasm in logger profanity_filter message_stats push_notify welcome_bot command_bot reminder; do
  cp "$guest_dir/wasm32-wasip2/release/$wasm.wasm" plugins/
  # The example's manifest (its grants and config), if it has one.
  manifest="plugins-examples/rust/${wasm//_/-}/$wasm.toml"
  if [[ -f $manifest ]]; then cp "$manifest" plugins/; fi
done
echo "plugins: $(ls plugins)" >&2
exec cargo run -p chathooks -- serve "$@"

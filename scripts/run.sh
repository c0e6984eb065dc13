#!/usr/bin/env bash
# Builds the example plugins into ./plugins (with their manifests) and starts the chat server with them.
#
# The examples of every language whose toolchain is installed are built by scripts/build-plugins.sh (Rust
# always; Python, JavaScript and C when their toolchains are there, otherwise skipped with a message saying
# what to install). webhook-bridge is left out unless plugins/webhook_bridge.toml has been edited: it needs
# a webhook consumer (see its manifest).
# Extra arguments go to `chathooks serve` (e.g. `scripts/run.sh --listen 0.0.0.0:8787`); see
# `cargo run -p chathooks -- serve --help`. Data goes to ./data; the first start prints the admin key.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
echo "building the example plugins (scripts/build-plugins.sh) ..." >&2
scripts/build-plugins.sh --out plugins >&2
# webhook-bridge posts every event to the URL in its manifest: left out until that manifest is yours.
if cmp -s plugins/webhook_bridge.toml plugins-examples/rust/webhook-bridge/webhook_bridge.toml; then
  rm -f plugins/webhook_bridge.wasm plugins/webhook_bridge.toml
  echo "webhook_bridge left out: edit its manifest (see plugins-examples/rust/webhook-bridge) to use it" >&2
fi
echo "plugins: $(cd plugins && echo *.wasm)" >&2
exec cargo run -p chathooks -- serve "$@"

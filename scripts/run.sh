#!/usr/bin/env bash
# Builds the example plugins into ./plugins (with their manifests) and starts the chat server, a release
# build of this checkout, with them; data in ./data (SQLite), and the first start prints the admin key.
#
# The examples of every language whose toolchain is installed are built by scripts/build-plugins.sh (Rust
# always; Python, JavaScript and C when their toolchains are there, otherwise skipped with a message saying
# what to install), each only when its sources changed (--changed-only), so a restart finds the same files
# and the server's compile cache. webhook-bridge is left out unless plugins/webhook_bridge.toml has been
# edited: it needs a webhook consumer (see its manifest).
#
# Nothing tracked changes: ./plugins, ./data and target/ are ignored by git, cargo runs with --locked and
# JavaScript's tools are installed with `npm ci`, which never rewrites package-lock.json.
# Extra arguments go to `chathooks serve` (e.g. `scripts/run.sh --listen 0.0.0.0:8787`; see
# `chathooks serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
echo "building the example plugins (scripts/build-plugins.sh --changed-only) ..." >&2
scripts/build-plugins.sh --changed-only --out plugins >&2
# webhook-bridge posts every event to the URL in its manifest: left out until that manifest is yours.
if cmp -s plugins/webhook_bridge.toml plugins-examples/rust/webhook-bridge/webhook_bridge.toml; then
  rm -f plugins/webhook_bridge.wasm plugins/webhook_bridge.toml
  echo "webhook_bridge left out: edit its manifest (see plugins-examples/rust/webhook-bridge) to use it" >&2
fi
echo "plugins: $(cd plugins && echo *.wasm)" >&2

# The server of this checkout, in release mode (what `cargo install --path host --locked` builds, in the
# same target folder, so after the README's set-up this is up to date at once).
echo "building the server (cargo build --release --locked -p chathooks) ..." >&2
cargo build --release --locked -p chathooks --bin chathooks >&2
target="$(cargo metadata --no-deps --format-version 1 | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')"
exec "$target/release/chathooks" serve "$@"

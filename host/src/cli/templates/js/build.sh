#!/usr/bin/env bash
# Build {{name}} into {{snake}}.wasm. Needs node (>= 20) and npm; installs jco into node_modules first.
set -euo pipefail
cd "$(dirname "$0")"
[[ -x node_modules/.bin/jco ]] || npm install --no-audit --no-fund
# QuickJS: far cheaper per event than the default StarlingMonkey engine. Synchronous: hooks are plain calls.
node_modules/.bin/jco componentize plugin.js --wit wit --world-name {{name}} \
    --backend qjs --backend-qjs-disable-async -o {{snake}}.wasm

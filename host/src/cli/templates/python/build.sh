#!/usr/bin/env bash
# Build {{name}} into {{snake}}.wasm. Needs componentize-py: pip install componentize-py=={{componentize_py}}
set -euo pipefail
cd "$(dirname "$0")"
componentize-py -d wit -w {{name}} componentize app -o {{snake}}.wasm

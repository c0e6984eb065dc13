#!/usr/bin/env bash
# Build {{name}} into {{snake}}.wasm. Needs clang with a WebAssembly target and wasi-libc (Debian:
# apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc), wit-bindgen and wasm-tools
# (cargo install --locked wit-bindgen-cli@{{wit_bindgen}} wasm-tools@{{wasm_tools}}).
# CLANG and WASI_SYSROOT select another clang and sysroot (a wasi-sdk, say); CFLAGS adds flags.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf gen && mkdir gen
wit-bindgen c wit --world {{name}} --rename-world plugin --out-dir gen
"${CLANG:-clang-19}" --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -mexec-model=reactor -Os -s \
    -Wall -Wextra ${CFLAGS:-} -I gen -o gen/module.wasm {{snake}}.c gen/plugin.c gen/plugin_component_type.o
wasm-tools component new gen/module.wasm -o {{snake}}.wasm
echo "built {{snake}}.wasm"

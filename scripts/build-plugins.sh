#!/usr/bin/env bash
# Build every example plugin, in every language, into one folder of components ready for the server.
#
#     scripts/build-plugins.sh [--require-all] [--changed-only] [--out DIR] [LANGUAGE...]
#
# LANGUAGE is any of rust, python, js, c (default: all four). Components land in DIR (default ./plugins):
# the Rust examples under their crate names (profanity_filter.wasm, ...), the others prefixed with their
# language (python_profanity_filter.wasm, js_message_stats.wasm, c_profanity_filter.wasm, ...), so that all
# of them can be loaded side by side. A Rust example's manifest (welcome_bot.toml, ...) is copied beside it
# unless the output folder already has one.
#
# --changed-only (scripts/run.sh uses it) builds a Python, JavaScript or C example only when its output is
# missing or older than one of its sources, the WIT in wit/ or this script: their builds take seconds and
# their output differs from one build to the next, which would make the server compile it again. (Rust's
# builds are cargo's, incremental anyway; an unchanged component is not copied again.)
#
# A language whose toolchain is missing is skipped with a message saying what to install, unless
# --require-all is given (or CHATHOOKS_REQUIRE_ALL_LANGS=1 is set, as CI does): then it is an error, and so
# is a toolchain of another version than the pinned one below. Exit status: 0 when everything asked for was
# built (or skipped), 1 when a build failed or a required toolchain is missing.
#
# Toolchains, pinned (`.ci/run` installs exactly these; each kit's README says how):
#   rust    rustup target wasm32-wasip2
#   python  componentize-py (PyPI)
#   js      node >= 20 and npm; jco with its QuickJS backend, pinned by plugins-examples/js/package-lock.json
#           (installed here with `npm ci` when node_modules is missing or older than the lock file: `npm ci`
#           installs exactly the lock file and never rewrites it)
#   c       clang-19 + lld-19 + wasi-libc (Debian: clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc),
#           wit-bindgen-cli and wasm-tools (crates.io)
# Tools installed by `cargo install --root ~/.cache/chathooks/tools` are found without being on PATH
# (CHATHOOKS_TOOLS overrides that folder).
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
WIT_BINDGEN_VERSION=0.63.0
WASM_TOOLS_VERSION=1.263.0
CLANG=${CLANG:-clang-19}
# Where wasi-libc's headers and libraries are: Debian's package puts them under /usr; a wasi-sdk install
# has its own sysroot (point WASI_SYSROOT at it).
WASI_SYSROOT=${WASI_SYSROOT:-/usr}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLES="$ROOT/plugins-examples"
TOOLS="${CHATHOOKS_TOOLS:-$HOME/.cache/chathooks/tools}/bin"
export PATH="$TOOLS:$PATH"

require_all=${CHATHOOKS_REQUIRE_ALL_LANGS:-0}
changed_only=0
[[ $require_all == 1 || $require_all == true ]] && require_all=1 || require_all=0
out="$ROOT/plugins"
langs=()
while (($#)); do
  case $1 in
    --require-all) require_all=1 ;;
    --changed-only) changed_only=1 ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    rust | python | js | c) langs+=("$1") ;;
    *) echo "build-plugins: unknown argument '$1' (languages: rust python js c; see --help)" >&2; exit 1 ;;
  esac
  shift
done
((${#langs[@]})) || langs=(rust python js c)
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

built=() skipped=() failed=()

# missing LANG WHY: the toolchain of LANG is absent or of the wrong version. Fails in --require-all mode.
missing() {
  if ((require_all)); then
    echo "build-plugins: $1: $2 (required: --require-all / CHATHOOKS_REQUIRE_ALL_LANGS=1)" >&2
    failed+=("$1 (toolchain)")
  else
    echo "build-plugins: skipping $1: $2" >&2
    skipped+=("$1")
  fi
}

# version_of TOOL: the second word of `TOOL --version` (e.g. `wasm-tools 1.263.0` -> 1.263.0).
version_of() { "$1" --version 2>/dev/null | head -n1 | awk '{print $2}'; }

# check_version LANG TOOL WANTED: true when TOOL has the pinned version; otherwise reports LANG missing
# (in --require-all mode) or warns and carries on with the version there is.
check_version() {
  local have
  have="$(version_of "$2")"
  [[ $have == "$3" ]] && return 0
  if ((require_all)); then
    missing "$1" "$2 is $have, the pinned version is $3"
    return 1
  fi
  echo "build-plugins: warning: $2 is $have, the examples are tested with $3" >&2
}

# with_wit DIR: give the plugin folder DIR a complete WIT folder: its own wit/world.wit plus the server's
# package in wit/deps/chathooks-plugin (a copy of the repository's wit/, ignored by git).
with_wit() {
  rm -rf "$1/wit/deps"
  mkdir -p "$1/wit/deps/chathooks-plugin"
  cp "$ROOT"/wit/*.wit "$1/wit/deps/chathooks-plugin/"
}

# up_to_date OUT DIR [FILE...]: true in --changed-only mode when OUT exists and nothing in DIR (its wit/deps
# copy and node_modules aside), the repository's wit/*.wit, this script or FILE is newer than it.
up_to_date() {
  local out=$1 dir=$2
  shift 2
  ((changed_only)) && [[ -f $out ]] || return 1
  [[ -z "$(find "$dir" \( -path "$dir/wit/deps" -o -name node_modules \) -prune -o -type f -newer "$out" -print -quit)" ]] &&
    [[ -z "$(find "$ROOT"/wit/*.wit "${BASH_SOURCE[0]}" "$@" -newer "$out" -print -quit)" ]]
}

# plugins LANG: the example plugin folders of one language (one per folder with a wit/world.wit).
plugins() {
  local dir
  for dir in "$EXAMPLES/$1"/*/; do
    [[ -f $dir/wit/world.wit ]] && basename "$dir"
  done
}

# quiet COMMAND...: run COMMAND, showing its output only if it fails.
quiet() {
  local log="$work/quiet.log"
  "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}

# step LANG NAME COMMAND...: run one build command, recording a failure instead of stopping.
step() {
  local lang=$1 name=$2
  shift 2
  if ! "$@"; then
    echo "build-plugins: $lang/$name failed" >&2
    failed+=("$lang/$name")
    return 1
  fi
}

build_rust() {
  if ! command -v cargo >/dev/null || ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    missing rust "needs cargo and the wasm32-wasip2 target (rustup target add wasm32-wasip2)"
    return
  fi
  # The guest target folder the end-to-end tests use too: beside the host's (wherever cargo puts it).
  local target
  target="$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/guest"
  echo "== rust: plugins-examples (cargo build --target wasm32-wasip2 --release)"
  step rust examples env -u CARGO_TARGET_DIR -u RUSTFLAGS cargo build --quiet --release --locked \
    --target wasm32-wasip2 --manifest-path "$EXAMPLES/Cargo.toml" --target-dir "$target" || return
  local wasm
  for wasm in "$target"/wasm32-wasip2/release/*.wasm; do
    # Only the examples' own components (a fixture built into the same target folder is not one).
    local crate
    crate="$(basename "$wasm" .wasm)"
    [[ -d $EXAMPLES/rust/${crate//_/-} ]] || continue
    # Copied only when it changed: the server reloads a plugin whose file is written.
    if cmp -s "$wasm" "$out/$crate.wasm" || cp "$wasm" "$out/"; then built+=("$out/$crate.wasm"); fi
    # Its manifest (grants and config) too, if it has one: without its grants a power plugin fails. A
    # manifest already in the output folder is kept: it may hold the user's own config.
    local manifest="$EXAMPLES/rust/${crate//_/-}/$crate.toml"
    if [[ -f $manifest && ! -f $out/$crate.toml ]]; then cp "$manifest" "$out/"; fi
  done
}

build_python() {
  if ! command -v componentize-py >/dev/null; then
    missing python "needs componentize-py (pip install componentize-py==$COMPONENTIZE_PY_VERSION)"
    return
  fi
  check_version python componentize-py "$COMPONENTIZE_PY_VERSION" || return
  local name
  for name in $(plugins python); do
    local dir="$EXAMPLES/python/$name" wasm="$out/python_${name//-/_}.wasm"
    if up_to_date "$wasm" "$dir"; then built+=("$wasm"); continue; fi
    echo "== python: $name (componentize-py)"
    with_wit "$dir"
    step python "$name" componentize-py -q -d "$dir/wit" -w "$name" componentize -p "$dir" app -o "$wasm" &&
      built+=("$wasm")
  done
}

build_js() {
  local kit="$EXAMPLES/js"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing js "needs node (>= 20) and npm"
    return
  fi
  if [[ ! -x $kit/node_modules/.bin/jco || $kit/package-lock.json -nt $kit/node_modules/.package-lock.json ]]; then
    echo "== js: npm ci (the versions pinned by package-lock.json, into plugins-examples/js/node_modules)"
    if ! (cd "$kit" && npm ci --no-audit --no-fund --loglevel=error); then
      missing js "npm ci in plugins-examples/js failed"
      return
    fi
  fi
  local name
  for name in $(plugins js); do
    local dir="$kit/$name" wasm="$out/js_${name//-/_}.wasm"
    if up_to_date "$wasm" "$dir" "$kit/package-lock.json"; then built+=("$wasm"); continue; fi
    echo "== js: $name (jco componentize --backend qjs)"
    with_wit "$dir"
    # QuickJS rather than StarlingMonkey: ~5x cheaper per event, 1/8 the size, 6x faster to compile (see
    # plugins-examples/js/README.md). Synchronous: hooks are plain calls, and the async ABI needs an engine
    # feature the server does not enable.
    step js "$name" quiet "$kit/node_modules/.bin/jco" componentize "$dir/plugin.js" --wit "$dir/wit" \
      --world-name "$name" --backend qjs --backend-qjs-disable-async -o "$wasm" &&
      built+=("$wasm")
  done
}

build_c() {
  local tool
  for tool in "$CLANG" wit-bindgen wasm-tools; do
    if ! command -v "$tool" >/dev/null; then
      missing c "needs $tool (apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc; cargo install --locked wit-bindgen-cli@$WIT_BINDGEN_VERSION wasm-tools@$WASM_TOOLS_VERSION)"
      return
    fi
  done
  if [[ ! -f $WASI_SYSROOT/lib/wasm32-wasi/libc.a ]]; then
    missing c "needs wasi-libc in $WASI_SYSROOT (apt-get install wasi-libc, or set WASI_SYSROOT)"
    return
  fi
  check_version c wit-bindgen "$WIT_BINDGEN_VERSION" || return
  check_version c wasm-tools "$WASM_TOOLS_VERSION" || return
  local name
  for name in $(plugins c); do
    local dir="$EXAMPLES/c/$name" gen="$work/c/$name" wasm="$out/c_${name//-/_}.wasm"
    if up_to_date "$wasm" "$dir"; then built+=("$wasm"); continue; fi
    echo "== c: $name (wit-bindgen c, $CLANG, wasm-tools component new)"
    with_wit "$dir"
    mkdir -p "$gen"
    step c "$name" quiet wit-bindgen c "$dir/wit" --world "$name" --rename-world plugin --out-dir "$gen" &&
      step c "$name" "$CLANG" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor -Os -s \
        -Wall -Wextra -Werror -I "$gen" -o "$gen/module.wasm" "$dir"/*.c "$gen/plugin.c" \
        "$gen/plugin_component_type.o" &&
      step c "$name" wasm-tools component new "$gen/module.wasm" -o "$wasm" &&
      built+=("$wasm")
  done
}

for lang in "${langs[@]}"; do
  "build_$lang"
done

echo
for wasm in "${built[@]}"; do
  echo "built   ${wasm#"$ROOT"/}"
done
((${#skipped[@]})) && echo "skipped ${skipped[*]} (toolchain missing; see above)"
if ((${#failed[@]})); then
  echo "FAILED  ${failed[*]}" >&2
  exit 1
fi
echo "${#built[@]} components in ${out#"$ROOT"/}"

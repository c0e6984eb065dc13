#!/usr/bin/env bash
# Copy the WIT package in wit/ (the one source of truth) into the SDK crate that carries it, so the SDK
# builds from crates.io or any folder without this repository around it.
#
#     scripts/sync-sdk-wit.sh           copy wit/*.wit into sdk/macros/wit/ (run after changing the WIT)
#     scripts/sync-sdk-wit.sh --check   exit 1, naming the files, when the copy differs from wit/
#
# Only the current version is copied (wit/versions/ holds frozen older ones the SDK does not build
# against). CI runs --check; sdk/macros/tests/wit_copy.rs checks the same in `cargo test`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$ROOT/wit" copy="$ROOT/sdk/macros/wit"

case ${1:-} in
  --check)
    # diff -r without recursing into wit/versions/: compare the file lists, then each file.
    status=0
    if ! diff <(cd "$src" && ls -1 -- *.wit) <(cd "$copy" && ls -1 -- *.wit 2>/dev/null); then
      status=1
    fi
    for file in "$src"/*.wit; do
      name="$(basename "$file")"
      if [[ -f $copy/$name ]] && ! cmp -s "$file" "$copy/$name"; then
        echo "sdk/macros/wit/$name differs from wit/$name" >&2
        status=1
      fi
    done
    if ((status)); then
      echo "sdk/macros/wit/ is not a copy of wit/: run scripts/sync-sdk-wit.sh" >&2
    fi
    exit "$status"
    ;;
  "") ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac

mkdir -p "$copy"
rm -f "$copy"/*.wit
cp "$src"/*.wit "$copy/"
echo "copied wit/*.wit to sdk/macros/wit/"

#!/usr/bin/env bash
# Formats the C++ sources with clang-format and the repository's .clang-format (the style the
# code is written in), or checks them.
#   scripts/format.sh             formats every source git knows of (tracked, or new and not
#                                 ignored) in place
#   scripts/format.sh --check     changes nothing; lists the files clang-format would change
#                                 and exits 1 if there are any
#   scripts/format.sh [--check] FILE...   only those files
# CLANG_FORMAT: the program to run (default: clang-format, from scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
case "${1:-}" in -*) echo "usage: scripts/format.sh [--check] [FILE...]" >&2; exit 2 ;; esac
cf=${CLANG_FORMAT:-clang-format}
command -v "$cf" >/dev/null || { echo "scripts/format.sh: $cf not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  # New files too, so that a check before `git add` sees what a commit will hold.
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.cc')
fi
if [ "$check" = 0 ]; then
  "$cf" -i --style=file "${files[@]}"
  exit 0
fi
differ=0
for f in "${files[@]}"; do
  if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
    echo "$f"
    differ=1
  fi
done
[ "$differ" = 0 ] || echo "scripts/format.sh --check: the files above are not formatted (scripts/format.sh FILE formats one)" >&2
exit "$differ"

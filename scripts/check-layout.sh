#!/usr/bin/env bash
# Checks the layering of lib/ (lib/README.md) and that the build names every source:
# - a folder of lib/ includes headers only from itself and the folders it builds on;
# - no public header includes anything from lib/;
# - every lib/*/*.cpp, test/*_test.cpp, bench/*_workloads.cpp, bench/micro_*.cpp and
#   fuzz/*_fuzz.cpp is listed in its CMakeLists.txt (the lists are explicit, not globbed).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

# folder: the folders it may include from (besides itself)
declare -A allowed=(
  [runtime]=""
  [compose]="runtime"
  [sync]="runtime"
  [bridge]="runtime"
  [io]="runtime bridge"
)
for dir in lib/*/; do
  folder=$(basename "$dir")
  if [ -z "${allowed[$folder]+set}" ]; then
    echo "lib/$folder/: not a known layer (add it to scripts/check-layout.sh and lib/README.md)"
    fail=1
    continue
  fi
  # Every quoted include that names a folder: "folder/file.hpp".
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "([^/"]+)\/.*/\1/' <<<"$text")
    ok=0
    for a in ${allowed[$folder]}; do [ "$target" = "$a" ] && ok=1; done
    if [ "$ok" = 0 ]; then
      echo "$file:$line: lib/$folder/ may not include from lib/$target/: $text"
      fail=1
    fi
  done < <(grep -nE '#include "[^"/]+/' "$dir"* /dev/null || true)
done

if grep -rnE '#include "[^"]*lib/|#include "\.\./' include/; then
  echo "a public header includes an internal one (above)"
  fail=1
fi

listed() {  # cmake file, source path relative to it
  grep -qE "(^|[[:space:](/])$2([[:space:])]|$)" "$1"
}
for f in lib/*/*.cpp; do
  listed CMakeLists.txt "$f" || { echo "$f is not in CMakeLists.txt's source list"; fail=1; }
done
for f in test/*_test.cpp; do
  name=$(basename "$f" .cpp)
  listed test/CMakeLists.txt "$name" || { echo "$f is not in test/CMakeLists.txt"; fail=1; }
done
for f in bench/*_workloads.cpp bench/micro_*.cpp; do
  listed bench/CMakeLists.txt "$(basename "$f")" || { echo "$f is not in bench/CMakeLists.txt"; fail=1; }
done
for f in fuzz/*_fuzz.cpp; do
  name=$(basename "$f" .cpp)
  listed fuzz/CMakeLists.txt "$name" || { echo "$f is not in fuzz/CMakeLists.txt"; fail=1; }
done

[ "$fail" = 0 ] && echo "layout: ok"
exit "$fail"

#!/usr/bin/env bash
# The examples under Valgrind memcheck, task stacks registered with Valgrind
# (-DASYNCFIBER_VALGRIND=ON). Any error fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 0; }
dir=build-ci-valgrind
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNCFIBER_VALGRIND=ON \
      -DASYNCFIBER_BUILD_TESTS=OFF -DASYNCFIBER_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" -j "$(nproc)"
for exe in $(find "$dir/example" -maxdepth 1 -type f -executable | sort); do
  echo "--- $exe"
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
           --show-leak-kinds=definite,indirect --quiet "$exe" >/dev/null
done

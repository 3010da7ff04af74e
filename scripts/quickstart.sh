#!/usr/bin/env bash
# Installs what is missing, builds asyncfiber and runs the two seed examples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target seed_fetch_data seed_gather
echo "--- seed_fetch_data"; time ./build/example/seed_fetch_data
echo "--- seed_gather"; time ./build/example/seed_gather

#!/usr/bin/env bash
# Checks the source layout (scripts/check-layout.sh), that every repository path the docs
# name exists (scripts/check-doc-paths.sh) and that the C++ sources are formatted as
# .clang-format says (scripts/format.sh --check), then builds and runs every test: g++ with C++14
# and g++ with C++20 (warnings are errors; C++20 is where g++ deprecates what C++14 code
# writes, e.g. [=] capturing this), then checks that an installed asyncfiber works with
# find_package and pkg-config, then runs the extra checks in .ci/extra/: clang++ with C++17
# under AddressSanitizer + UBSan (every test), Valgrind, clang++ with ThreadSanitizer (the
# tests that involve other threads), fuzzing.
#   ASYNCFIBER_QUICK=1 scripts/test.sh    only the g++ C++14 build and its tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-layout.sh
scripts/check-doc-paths.sh
scripts/format.sh --check
jobs=$(nproc)

started=$SECONDS
step_started=$SECONDS
step() {  # prints how long the previous step took, then the next step's title
  echo "=== ($((SECONDS - step_started)) s; $((SECONDS - started)) s in all) $*"
  step_started=$SECONDS
}

build_and_test() {  # name compiler standard [cmake options...]
  local dir="build-ci-$1" name=$1 cxx=$2 std=$3
  shift 3
  step "$name: $cxx, C++$std"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_CXX_STANDARD="$std" -DASYNCFIBER_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300)
}

build_and_test gcc-cxx14 g++ 14
[ "${ASYNCFIBER_QUICK:-0}" = 1 ] && exit 0
# Task stacks registered with Valgrind (a few instructions per stack when not under it): the
# Valgrind step runs this build's examples rather than building the library once more.
build_and_test gcc-cxx20 g++ 20 -DASYNCFIBER_VALGRIND=ON

step "install + find_package + pkg-config"
prefix="$(pwd)/build-ci-install/prefix"
rm -rf build-ci-install && mkdir -p build-ci-install
cmake --install build-ci-gcc-cxx14 --prefix "$prefix" >/dev/null
cmake -S test/install -B build-ci-install/consumer -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build-ci-install/consumer
./build-ci-install/consumer/consumer
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ -std=c++14 test/install/consumer.cpp \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs asyncfiber) -o build-ci-install/consumer-pc
./build-ci-install/consumer-pc

for extra in .ci/extra/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra"
  bash "$extra"
done
step "all passed"

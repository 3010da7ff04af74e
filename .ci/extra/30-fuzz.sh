#!/usr/bin/env bash
# A short libFuzzer run of every fuzz/*_fuzz.cpp target (ASan + UBSan, fiber switches
# announced to ASan), starting from the committed seed corpora. FUZZ_SECONDS: total budget,
# shared equally; FUZZ_TARGETS: the targets to run (default: all).
set -euo pipefail
cd "$(dirname "$0")/../.."
total=${FUZZ_SECONDS:-180}
dir=build-ci-fuzz
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNCFIBER_WERROR=ON -DCMAKE_CXX_COMPILER=clang++ \
      -DASYNCFIBER_FUZZ=ON -DASYNCFIBER_SANITIZE=address,undefined \
      -DASYNCFIBER_BUILD_TESTS=OFF -DASYNCFIBER_BUILD_EXAMPLES=OFF -DASYNCFIBER_BUILD_BENCH=OFF >/dev/null
targets=${FUZZ_TARGETS:-$(cd fuzz && ls *_fuzz.cpp | sed 's/\.cpp$//')}
cmake --build "$dir" -j "$(nproc)" --target $targets
n=$(echo "$targets" | wc -w)
per=$(( total / n ))
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in $targets; do
  corpus="fuzz/corpus/${t%_fuzz}"
  work="$dir/corpus-$t"
  rm -rf "$work" && mkdir -p "$work"
  [ -d "$corpus" ] && cp "$corpus"/* "$work"/ 2>/dev/null || true
  echo "--- $t: ${per}s"
  "$dir/fuzz/$t" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/$t-" "$work"
done

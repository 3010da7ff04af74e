#!/usr/bin/env bash
# A short libFuzzer run of every fuzz/*_fuzz.cpp target (in the ASan + UBSan build of
# asan-build.inc), starting from the committed seed corpora. FUZZ_SECONDS: total budget,
# shared equally; FUZZ_TARGETS: the targets to run (default: all).
set -euo pipefail
cd "$(dirname "$0")/../.."
total=${FUZZ_SECONDS:-180}
source .ci/extra/asan-build.inc  # the ASan step's build: its library is compiled already
configure_asan_build
dir=$asan_dir
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

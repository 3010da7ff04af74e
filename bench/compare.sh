#!/usr/bin/env bash
# Runs asyncfiber's workloads and the Python asyncio anchor back to back, in one go, and
# prints each figure with the ratio (asyncio / asyncfiber for times, the inverse for rates).
#   bench/compare.sh [build-dir] [workload...]      RUNS=n (default 3): runs per figure
# Each workload runs in its own process, ours then the anchor, alternately RUNS times, and each
# side's median is printed (the anchors' README quotes medians too): the machines are shared
# and noisy, and the first process after an idle spell runs slow (about 1.4x here, asyncio's
# too), so compare ratios of medians, not single figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shift || true
ours="$build/bench/asyncfiber_workloads"
anchor="$here/../../shared/anchors/asyncio_bench.py"
[ -x "$ours" ] || { echo "build $ours first (cmake --build $build --target asyncfiber_workloads)"; exit 1; }
[ -f "$anchor" ] || anchor="${ASYNCIO_ANCHOR:?set ASYNCIO_ANCHOR to asyncio_bench.py}"
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  # The anchors' workloads, then ours only: the same bursts again in one process (stacks
  # resident) and the cost of a fresh page, which bounds the first burst from below.
  workloads=(spawn_ns_per_task sleep50ms_100k_wall_ms yield_ns pingpong_ns_per_roundtrip
             skynet1M_ms echo_msgs_per_s mem_bytes_per_blocked_task
             sleep50ms_100k_warm_wall_ms skynet1M_warm_ms page_fault_ns)
fi
runs=${RUNS:-3}
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
printf "%-28s %14s %14s %10s\n" workload asyncfiber asyncio ratio
for w in "${workloads[@]}"; do
  as=() ps=()
  for ((r = 0; r < runs; r++)); do
    as+=("$("$ours" "$w" 2>/dev/null | awk -v w="$w" '$1==w {print $2}')") || true
    [ -n "${as[-1]}" ] || break
    ps+=("$(python3 "$anchor" "$w" | awk -v w="$w" '$1==w {print $2}')")
  done
  a=$(echo "${as[*]}" | median)
  [ -n "$a" ] || { printf "%-28s %14s\n" "$w" "(not built)"; continue; }
  p=$(echo "${ps[*]}" | median)
  [ -n "$p" ] || { printf "%-28s %14s %14s %10s\n" "$w" "$a" "(ours only)" "-"; continue; }
  ratio=$(python3 -c "import sys; a,p=float('$a'),float('$p'); print(f'{(a/p if \"per_s\" in \"$w\" else p/a):.1f}x')")
  printf "%-28s %14s %14s %10s\n" "$w" "$a" "$p" "$ratio"
done

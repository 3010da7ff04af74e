#!/usr/bin/env bash
# Runs asyncfiber's workloads and the Python asyncio anchor back to back, in one go, and
# prints each figure with the ratio (asyncio / asyncfiber for times, the inverse for rates).
# Workloads that have a callback-style Boost.Asio anchor (echo, TLS echo, TLS handshakes) run
# it too, and get its figure and our ratio to it; the anchor is built on first use into
# <build-dir>/anchors with the command the anchors' README gives.
#   bench/compare.sh [build-dir] [workload...]      RUNS=n (default 3): runs per figure
# Each workload runs in its own process, ours then the anchors, alternately RUNS times, and each
# side's median is printed (the anchors' README quotes medians too): the machines are shared
# and noisy, and the first process after an idle spell runs slow (about 1.4x here, asyncio's
# too), so compare ratios of medians, not single figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shift || true
ours="$build/bench/asyncfiber_workloads"
anchors="$here/../../shared/anchors"
anchor="$anchors/asyncio_bench.py"
[ -x "$ours" ] || { echo "build $ours first (cmake --build $build --target asyncfiber_workloads)"; exit 1; }
[ -f "$anchor" ] || anchor="${ASYNCIO_ANCHOR:?set ASYNCIO_ANCHOR to asyncio_bench.py}"
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  # The anchors' workloads, then ours only: the same bursts again in one process (stacks
  # resident) and the cost of a fresh page, which bounds the first burst from below.
  workloads=(spawn_ns_per_task sleep50ms_100k_wall_ms yield_ns pingpong_ns_per_roundtrip
             skynet1M_ms echo_msgs_per_s tls_echo_msgs_per_s tls_handshakes_per_s
             mem_bytes_per_blocked_task sleep50ms_100k_warm_wall_ms skynet1M_warm_ms page_fault_ns)
fi
runs=${RUNS:-3}
# The Asio anchor of a workload, built if need be: prints its command line, or nothing.
asio_anchor() {
  local src libs arg=""
  case "$1" in
    echo_msgs_per_s) src=asio_echo.cpp libs="-pthread" ;;
    tls_echo_msgs_per_s) src=asio_tls_echo.cpp libs="-lssl -lcrypto -pthread" ;;
    tls_handshakes_per_s) src=asio_tls_echo.cpp libs="-lssl -lcrypto -pthread" arg=handshakes ;;
    *) return 0 ;;
  esac
  [ -f "$anchors/$src" ] || return 0
  local exe="$build/anchors/${src%.cpp}"
  if [ ! -x "$exe" ] || [ "$anchors/$src" -nt "$exe" ]; then
    mkdir -p "$build/anchors"
    g++ -O2 -std=c++14 "$anchors/$src" $libs -o "$exe" 2>/dev/null || return 0
  fi
  echo "$exe $arg"
}
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
ratio() {  # ours theirs workload
  python3 -c "import sys; a,p=float('$1'),float('$2'); print(f'{(a/p if \"per_s\" in \"$3\" else p/a):.2f}x')"
}
printf "%-28s %14s %14s %10s %14s %10s\n" workload asyncfiber asyncio ratio "asio" "vs asio"
for w in "${workloads[@]}"; do
  as=() ps=() xs=()
  asio=$(asio_anchor "$w")
  for ((r = 0; r < runs; r++)); do
    as+=("$("$ours" "$w" 2>/dev/null | awk -v w="$w" '$1==w {print $2}')") || true
    [ -n "${as[-1]}" ] || break
    ps+=("$(python3 "$anchor" "$w" | awk -v w="$w" '$1==w {print $2}')")
    # shellcheck disable=SC2086  # the anchor's command line is words
    [ -z "$asio" ] || xs+=("$($asio | awk -v w="$w" '$1==w {print $2}')")
  done
  a=$(echo "${as[*]}" | median)
  [ -n "$a" ] || { printf "%-28s %14s\n" "$w" "(not built)"; continue; }
  p=$(echo "${ps[*]}" | median)
  x=$(echo "${xs[*]}" | median)
  rp="-" rx="-"
  [ -n "$p" ] && rp=$(ratio "$a" "$p" "$w")
  [ -n "$x" ] && rx=$(ratio "$a" "$x" "$w")
  printf "%-28s %14s %14s %10s %14s %10s\n" "$w" "$a" "${p:-(ours only)}" "$rp" "${x:--}" "$rx"
done

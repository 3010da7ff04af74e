#!/usr/bin/env bash
# Runs asyncfiber's workloads and the Python asyncio anchor back to back, in one go, and
# prints each figure with the ratio (asyncio / asyncfiber for times, the inverse for rates).
# Workloads with a callback-style Boost.Asio anchor (the anchors' asio_*.cpp: the TCP, UDP
# and TLS echoes, TLS handshakes) run it too, built here with g++ into the build directory,
# and get a second ratio (ours / Asio's; the echoes' goal is >= 1.0).
#   ASYNCFIBER_ANCHORS=dir bench/compare.sh [build-dir] [workload...]
#     dir: the benchmark anchors (asyncio_bench.py, asio_*.cpp), kept outside this repository
#     RUNS=n (default 3): runs per figure
# Each workload runs in its own process, ours then the anchors, alternately RUNS times, and
# each side's median is printed (the anchors' README quotes medians too): the machines are
# shared and noisy, and the first process after an idle spell runs slow (about 1.4x here,
# asyncio's too), so compare ratios of medians, not single figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shift || true
ours="$build/bench/asyncfiber_workloads"
[ -x "$ours" ] || { echo "build $ours first (cmake --build $build --target asyncfiber_workloads)"; exit 1; }
anchors_dir=${ASYNCFIBER_ANCHORS:-}
if [ -z "$anchors_dir" ] || [ ! -f "$anchors_dir/asyncio_bench.py" ]; then
  echo "bench/compare.sh: set ASYNCFIBER_ANCHORS to the directory of the benchmark anchors" \
       "(the one holding asyncio_bench.py and asio_*.cpp)${anchors_dir:+; $anchors_dir has no asyncio_bench.py}" >&2
  exit 2
fi
anchor="$anchors_dir/asyncio_bench.py"
# The Asio anchor of a workload, if it has one: its source in the anchors' directory.
asio_source() {
  case "$1" in
    echo_msgs_per_s) echo asio_echo.cpp ;;
    udp_echo_msgs_per_s) echo asio_udp_echo.cpp ;;
    tls_echo_msgs_per_s | tls_handshakes_per_s) echo asio_tls_echo.cpp ;;
  esac
}
# What its command line adds for the workload (asio_tls_echo.cpp runs one of two).
asio_argument() {
  [ "$1" = tls_handshakes_per_s ] && echo handshakes || true
}
# Builds it (once, as the anchors' README says) and prints the program's path; nothing if it
# cannot be built.
asio_program() {
  local src; src=$(asio_source "$1")
  [ -n "$src" ] && [ -f "$anchors_dir/$src" ] || return 0
  local exe="$build/bench/anchor_${src%.cpp}" libs=""
  case "$src" in asio_tls_*) libs="-lssl -lcrypto" ;; esac
  if [ ! -x "$exe" ] || [ "$anchors_dir/$src" -nt "$exe" ]; then
    # shellcheck disable=SC2086  # no libraries or two words
    g++ -O2 -std=c++14 "$anchors_dir/$src" $libs -pthread -o "$exe" 2>/dev/null || return 0
  fi
  echo "$exe"
}
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  # The anchors' workloads, then ours only: the same bursts again in one process (stacks
  # resident) and the cost of a fresh page, which bounds the first burst from below.
  workloads=(spawn_ns_per_task spawn_eager_ns_per_task sleep50ms_100k_wall_ms yield_ns
             pingpong_ns_per_roundtrip skynet1M_ms echo_msgs_per_s udp_echo_msgs_per_s
             tls_echo_msgs_per_s tls_handshakes_per_s mem_bytes_per_blocked_task
             sleep50ms_100k_warm_wall_ms skynet1M_warm_ms page_fault_ns
             embedded_spawn_ns_per_task embedded_yield_ns embedded_echo_msgs_per_s)
fi
runs=${RUNS:-3}
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
printf "%-28s %14s %14s %10s %14s %10s\n" workload asyncfiber asyncio ratio "Asio" "vs Asio"
for w in "${workloads[@]}"; do
  as=() ps=() xs=()
  asio=$(asio_program "$w")
  arg=$(asio_argument "$w")
  for ((r = 0; r < runs; r++)); do
    as+=("$("$ours" "$w" 2>/dev/null | awk -v w="$w" '$1==w {print $2}')") || true
    [ -n "${as[-1]}" ] || break
    ps+=("$(python3 "$anchor" "$w" | awk -v w="$w" '$1==w {print $2}')")
    # shellcheck disable=SC2086  # $arg: no word or one
    [ -z "$asio" ] || xs+=("$("$asio" $arg | awk -v w="$w" '$1==w {print $2}')")
  done
  a=$(echo "${as[*]}" | median)
  [ -n "$a" ] || { printf "%-28s %14s\n" "$w" "(not built)"; continue; }
  p=$(echo "${ps[*]}" | median)
  x=$(echo "${xs[*]}" | median)
  xcols=$(python3 -c "a,x='$a','$x'; print(f'{x:>14} {float(a)/float(x):>9.2f}x' if x else f'{\"-\":>14} {\"-\":>10}')")
  [ -n "$p" ] || { printf "%-28s %14s %14s %10s %s\n" "$w" "$a" "(ours only)" "-" "$xcols"; continue; }
  ratio=$(python3 -c "import sys; a,p=float('$a'),float('$p'); print(f'{(a/p if \"per_s\" in \"$w\" else p/a):.1f}x')")
  printf "%-28s %14s %14s %10s %s\n" "$w" "$a" "$p" "$ratio" "$xcols"
done

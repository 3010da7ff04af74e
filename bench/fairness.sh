#!/usr/bin/env bash
# Fairness under a fast peer, ours beside asyncio in the same run: a client streams 200 MiB
# over loopback to a server while a 10 ms timer in the server's loop measures its worst
# lateness and another client counts its round trips with that loop (servers and timer:
# bench/fairness_workloads.cpp, bench/asyncio_fairness.py; the clients, the same process for
# both: bench/fairness_clients.py). Each side runs RUNS times (default 3), alternately; every
# run is printed, then each figure's median.
#   bench/fairness.sh [build-dir]            FAIR_MB=n sets the size (default 200)
# Goal (issue 12): lateness <= 20 ms, round trips >= asyncio's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
ours="$build/bench/asyncfiber_workloads"
[ -x "$ours" ] || { echo "build $ours first (cmake --build $build --target asyncfiber_workloads)"; exit 1; }
runs=${RUNS:-3}
names=(stream200M_timer_late_ms stream200M_roundtrips stream200M_s)
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
declare -A a p
for ((r = 0; r < runs; r++)); do
  o=$("$ours" stream200M_timer_late_ms)
  q=$(python3 "$here/asyncio_fairness.py")
  for n in "${names[@]}"; do
    a[$n]+="$(echo "$o" | awk -v n="$n" '$1==n {print $2}') "
    p[$n]+="$(echo "$q" | awk -v n="$n" '$1==n {print $2}') "
  done
  echo "run $((r + 1)): asyncfiber $(echo "$o" | tr '\n' ' ')| asyncio $(echo "$q" | tr '\n' ' ')"
done
printf "%-28s %14s %14s\n" figure asyncfiber asyncio
for n in "${names[@]}"; do
  printf "%-28s %14s %14s\n" "$n" "$(echo "${a[$n]}" | median)" "$(echo "${p[$n]}" | median)"
done

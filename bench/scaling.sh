#!/usr/bin/env bash
# Two loops on two cores, beside one loop and beside Go in the same run: the echo workload
# sharded over 2 loops (echo_2loops_msgs_per_s / echo_msgs_per_s, goal >= 1.7), a skynet tree
# on each of 2 loops (2 * skynet1M_ms / skynet1M_2loops_ms, goal >= 1.85), the 2-loop echo
# over Go's echo with GOMAXPROCS=2 (goal > 1), and a ping-pong between tasks of two loops
# (crossloop_pingpong_ns) beside Go's pingpong_ns_per_roundtrip with GOMAXPROCS=2; and the
# floor under skynet's scaling: fresh pages faulted by 2 threads at once against 1
# (page_fault_ns / page_fault_2threads_ns).
#   ASYNCFIBER_ANCHORS=dir bench/scaling.sh [build-dir]      RUNS=n (default 5)
# dir: the benchmark anchors (its go/ holds Go's; scripts/install-deps.sh --anchors installs
# the Go toolchain). Each program runs in its own process, in turns, RUNS times; medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
runs=${RUNS:-5}
ours="$build/bench/asyncfiber_workloads"
[ -x "$ours" ] || { echo "build $ours first (cmake --build $build --target asyncfiber_workloads)" >&2; exit 1; }
anchors_dir=${ASYNCFIBER_ANCHORS:-}
if [ -z "$anchors_dir" ] || [ ! -f "$anchors_dir/go/main.go" ]; then
  echo "bench/scaling.sh: set ASYNCFIBER_ANCHORS to the directory of the benchmark anchors" \
       "(the one holding go/main.go)" >&2
  exit 2
fi
command -v go >/dev/null || { echo "bench/scaling.sh: no Go toolchain (scripts/install-deps.sh --anchors)" >&2; exit 2; }
goanchor="$build/bench/anchor_go"
if [ ! -x "$goanchor" ] || [ "$anchors_dir/go/main.go" -nt "$goanchor" ]; then
  (cd "$anchors_dir/go" && go build -o "$goanchor" .)
fi
ours_workloads="echo_msgs_per_s echo_2loops_msgs_per_s skynet1M_ms skynet1M_2loops_ms pingpong_ns_per_roundtrip crossloop_pingpong_ns page_fault_ns page_fault_2threads_ns"
go_workloads="echo_msgs_per_s pingpong_ns_per_roundtrip"
out=$(mktemp)
trap 'rm -f "$out" "$out.a" "$out.b"' EXIT
for _ in $(seq "$runs"); do
  for w in $ours_workloads; do "$ours" "$w" | awk -v w="$w" '$1 == w { print "ours", w, $2 }' >> "$out"; done
  # The machine's own ceiling for two of anything: two processes of the one-loop workload at
  # once (nothing shared but the kernel and the hardware). Scored as the 2-loop figures are:
  # by the slower of the two (the 2-loop run ends when its last loop does).
  for w in echo_msgs_per_s skynet1M_ms; do
    "$ours" "$w" > "$out.a" & "$ours" "$w" > "$out.b"; wait
    cat "$out.a" "$out.b" | awk -v w="$w" '$1 == w { print $2 }' | sort -g | \
      awk -v w="$w" 'NR == 1 { lo = $1 } END { print "pair", w, (w ~ /_ms$/ ? $1 : lo) }' >> "$out"
  done
  for w in $go_workloads; do GOMAXPROCS=2 "$goanchor" "$w" | awk -v w="$w" '$1 == w { print "go", w, $2 }' >> "$out"; done
done
python3 - "$out" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    who, w, v = line.split()
    vals.setdefault((who, w), []).append(float(v))
m = {k: statistics.median(v) for k, v in vals.items()}
for (who, w), v in sorted(m.items()):
    print(f"{who:4} {w:28} {v:12.1f}   runs {sorted(vals[(who, w)])}")
o = lambda w: m[("ours", w)]
g = lambda w: m[("go", w)]
print()
print(f"echo, 2 loops / 1 loop:             {o('echo_2loops_msgs_per_s') / o('echo_msgs_per_s'):.2f}x   (goal >= 1.7)")
print(f"skynet work, 2 loops / 1 loop:      {2 * o('skynet1M_ms') / o('skynet1M_2loops_ms'):.2f}x   (goal >= 1.85)")
p = lambda w: m[("pair", w)]  # per pair, the slower process's figure
print(f"two processes at once / one:        echo {2 * p('echo_msgs_per_s') / o('echo_msgs_per_s'):.2f}x, "
      f"skynet {2 * o('skynet1M_ms') / p('skynet1M_ms'):.2f}x   (the machine's ceiling for 2 loops)")
pf = o('page_fault_ns') / o('page_fault_2threads_ns')
print(f"fresh pages, 2 threads / 1 thread:  {pf:.2f}x   (the ceiling of a page-bound workload's scaling)")
print(f"skynet scaling / that ceiling:      {2 * o('skynet1M_ms') / o('skynet1M_2loops_ms') / pf:.2f}")
print(f"echo, 2 loops / Go (GOMAXPROCS=2):  {o('echo_2loops_msgs_per_s') / g('echo_msgs_per_s'):.2f}x   (goal > 1)")
print(f"cross-loop ping-pong / Go ping-pong (GOMAXPROCS=2): {o('crossloop_pingpong_ns') / g('pingpong_ns_per_roundtrip'):.1f}x the time")
print(f"one-loop ping-pong / Go ping-pong:  {o('pingpong_ns_per_roundtrip') / g('pingpong_ns_per_roundtrip'):.2f}x the time")
PY

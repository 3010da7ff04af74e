#!/usr/bin/env bash
# What including each public header costs a translation unit: lines after preprocessing
# (non-blank) and seconds of `$CXX -std=c++14 -fsyntax-only` on a file that includes only
# that header, beside <functional>, <functional>+<chrono>+<memory> and <boost/asio.hpp>
# measured in the same run. Two kinds of seconds, each the median of RUNS runs taken in turns
# (so that a busy moment spreads over every item): the compiler's CPU time (user + system;
# other load on the machine disturbs it far less) and wall time. Compare figures of one run
# only; a ratio is a time over that of <functional>+<chrono>+<memory>. The goals below are
# checked on CPU time.
#
#   bench/header_weight.sh [label=include_dir ...]
#
# Without arguments it measures this tree's include/. To compare with an older tree:
#   git worktree add /tmp/hw-old <commit>
#   bench/header_weight.sh old=/tmp/hw-old/include new=include
#
# Goals, checked for the last tree given (the exit status is 1 when one is missed):
# - every header that does not bring in Boost.Asio on purpose (include it, or include a
#   header that does) costs at most 1.3x <functional>+<chrono>+<memory>;
# - asyncfiber/core.hpp (the umbrella without networking, processes, datagrams and the Asio
#   token) costs at most 40 % of the first tree's asyncfiber.hpp, when two trees are given.
# Environment: CXX (default g++), RUNS (default 7), CXXFLAGS (default -std=c++14).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 0 ] && set -- "this=include"
exec python3 - "$@" <<'PY'
import os, re, resource, shlex, subprocess, sys, tempfile, time

cxx = os.environ.get("CXX", "g++")
runs = int(os.environ.get("RUNS", "7"))
flags = shlex.split(os.environ.get("CXXFLAGS", "-std=c++14"))
work = tempfile.mkdtemp(prefix="header_weight.")

items = []  # (label, header shown, include dir or None, translation unit)

def add(label, shown, incdir, includes):
    tu = os.path.join(work, "tu%d.cpp" % len(items))
    with open(tu, "w") as f:
        f.writelines("#include <%s>\n" % h for h in includes)
    items.append((label, shown, incdir, tu))

add("", "<functional>", None, ["functional"])
add("", "<functional>+<chrono>+<memory>", None, ["functional", "chrono", "memory"])
add("", "<boost/asio.hpp>", None, ["boost/asio.hpp"])
REF = 1
trees = []
for arg in sys.argv[1:]:
    label, _, d = arg.partition("=")
    if not d:
        label, d = arg, arg
    d = os.path.abspath(d)
    if not os.path.isdir(os.path.join(d, "asyncfiber")):
        sys.exit("%s: no asyncfiber/ headers there" % d)
    trees.append((label, d))
    for h in sorted(os.listdir(os.path.join(d, "asyncfiber"))):
        if h.endswith(".hpp"):
            add(label, "asyncfiber/" + h, d, ["asyncfiber/" + h])

def command(incdir, tu, *extra):
    return [cxx] + flags + (["-I" + incdir] if incdir else []) + list(extra) + [tu]

lines, asio = [], []
for label, shown, incdir, tu in items:
    out = subprocess.run(command(incdir, tu, "-E", "-P"), check=True, capture_output=True,
                         text=True).stdout
    lines.append(sum(1 for l in out.splitlines() if l.strip()))
    deps = subprocess.run(command(incdir, tu, "-M"), check=True, capture_output=True,
                          text=True).stdout
    asio.append("boost/asio" in deps)

def seconds(cmd):  # (CPU, wall)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall

cpu_samples = [[] for _ in items]
wall_samples = [[] for _ in items]
for it in items:  # once to warm the file cache
    seconds(command(it[2], it[3], "-fsyntax-only"))
for _ in range(runs):
    for i, (label, shown, incdir, tu) in enumerate(items):
        c, w = seconds(command(incdir, tu, "-fsyntax-only"))
        cpu_samples[i].append(c)
        wall_samples[i].append(w)
def median(s):
    return sorted(s)[len(s) // 2]
med = [median(s) for s in cpu_samples]
wall = [median(s) for s in wall_samples]
ref = med[REF]

print("%s %s -fsyntax-only, median of %d runs; ratio = seconds / those of "
      "<functional>+<chrono>+<memory>" % (cxx, " ".join(flags), runs))
print("%-44s %7s %7s %6s %7s %6s %5s" % ("header", "lines", "CPU s", "ratio", "wall s", "ratio",
                                         "Asio"))
for i, (label, shown, incdir, tu) in enumerate(items):
    name = (label + ": " if label else "") + shown
    print("%-44s %7d %7.3f %6.2f %7.3f %6.2f %5s" % (
        name, lines[i], med[i], med[i] / ref, wall[i], wall[i] / wall[REF],
        "yes" if asio[i] else "no"))

# Goals for the last tree.
last, lastdir = trees[-1]
def includes(header):
    with open(os.path.join(lastdir, header)) as f:
        return re.findall(r"^\s*#\s*include\s*<([^>]+)>", f.read(), re.M)
public = [s for (l, s, _, _) in items if l == last]
wants_asio = set()
changed = True
while changed:  # a header that includes Asio, or a header that does, may bring it in
    changed = False
    for h in public:
        if h not in wants_asio and any(x.startswith("boost/asio") or x in wants_asio
                                       for x in includes(h)):
            wants_asio.add(h)
            changed = True
status = 0
print("\ngoals for '%s', on CPU time (headers that bring in Asio on purpose: %s):" %
      (last, ", ".join(sorted(wants_asio)) or "none"))
for i, (label, shown, incdir, tu) in enumerate(items):
    if label != last or shown in wants_asio:
        continue
    if med[i] / ref > 1.3:
        print("  MISSED %s: %.2fx > 1.3x" % (shown, med[i] / ref))
        status = 1
if status == 0:
    print("  every other header within 1.3x")
first = trees[0][0]
try:
    core = next(i for i, it in enumerate(items) if it[0] == last and it[1] == "asyncfiber/core.hpp")
    umbrella = next(i for i, it in enumerate(items)
                    if it[0] == first and it[1] == "asyncfiber/asyncfiber.hpp")
    if first != last:
        pct = 100 * med[core] / med[umbrella]
        print("  %s core.hpp = %.0f %% of %s asyncfiber.hpp (goal: <= 40 %%)" % (last, pct, first))
        if pct > 40:
            status = 1
except StopIteration:
    pass
subprocess.run(["rm", "-rf", work])
sys.exit(status)
PY

#!/usr/bin/env bash
# Runs tools/asyncfiber-gdb.py on test/gdb/gdb_target: af-tasks must list the suspended tasks
# by name and state, af-bt must show a suspended task's own frames, and af-pstree must print
# the await graph (root gathers mid and other, mid awaits leaf) on the live process and on a
# core file of it.
#   check_gdb_script.sh <gdb> <gdb_target> <asyncfiber-gdb.py>
# Exits 77 (skipped) where the debugger cannot run programs here (no ptrace).
set -u
gdb=$1 target=$(readlink -f "$2") script=$(readlink -f "$3")
if ! "$gdb" -q -batch -ex run /bin/true >/dev/null 2>&1; then
  echo "gdb cannot run programs here; skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
quiet() { grep -v "RTTI symbol not found"; }
# First look: the tasks, and the id of the named one; second look: its stack and the tree.
list=$("$gdb" -q -batch -ex run -ex "source $script" -ex af-tasks "$target" 2>&1)
id=$(awk '/^#[0-9]+ +sleeper /{sub(/^#/, "", $1); print $1}' <<<"$list")
out=$("$gdb" -q -batch -ex run -ex "source $script" -ex af-tasks -ex "af-bt ${id:-0}" \
        -ex af-pstree "$target" 2>&1 | quiet)
echo "$out"
fail=0
expect() {  # text regex [what]
  grep -qE "$2" <<<"$1" || { echo "MISSING${3:+ ($3)}: $2"; fail=1; }
}
expect_tree() {  # text what: the await graph, line by line, in this order
  local tree
  tree=$(grep -E "^  [ │├└]" <<<"$1")
  expect "$tree" "^  ├── #[0-9]+ 'main' running$" "$2"
  expect "$tree" "^  ├── #[0-9]+ 'sleeper' sleeping$" "$2"
  expect "$tree" "^  └── #[0-9]+ 'root' waiting on gather$" "$2"
  local body
  body=$(sed -n "/'root' waiting on gather/,\$p" <<<"$tree")
  expect "$(sed -n 2p <<<"$body")" "^      ├── #[0-9]+ 'mid' waiting on a task$" "$2"
  expect "$(sed -n 3p <<<"$body")" "^      │   └── #[0-9]+ 'leaf' waiting on Event$" "$2"
  expect "$(sed -n 4p <<<"$body")" "^      └── #[0-9]+ 'other' waiting on Event$" "$2"
}
expect "$out" '^#[0-9]+ +main +running'
expect "$out" '^#[0-9]+ +sleeper +suspended sleep'
expect "$out" '^#[0-9]+ +Task-[0-9]+ +suspended sleep'
expect "$out" 'asyncfiber::sleep_until'
expect "$out" 'napping_in_a_named_task'
expect_tree "$out" "live process"

# A core file: gdb's gcore first. On Linux 6.13+ it cannot read a slab of task stacks (its
# reads fail at the guard markers between the stacks, and it drops whole chunks), so then a
# core dumped by the kernel, which leaves the markers out.
core_tree() {  # core
  "$gdb" -q -batch -ex "source $script" -ex "thread 1" -ex af-pstree "$target" "$1" 2>&1 | quiet
}
(cd "$tmp" && "$gdb" -q -batch -ex run -ex "gcore $tmp/gcore" "$target" >"$tmp/gcore.log" 2>&1)
core=""
if [ -s "$tmp/gcore" ] && ! grep -q "Memory read failed" "$tmp/gcore.log"; then
  core="$tmp/gcore"
else
  echo "gcore could not read all of the task stacks; trying a core dumped by the kernel"
  (cd "$tmp" && ulimit -c unlimited && "$gdb" -q -batch -ex run -ex "signal SIGABRT" "$target" \
     >/dev/null 2>&1)
  core=$(ls "$tmp"/core* 2>/dev/null | head -1)
fi
if [ -z "$core" ]; then
  echo "no core file could be made here (core_pattern: $(cat /proc/sys/kernel/core_pattern)): core part skipped"
else
  tree=$(core_tree "$core")
  echo "af-pstree on the core file $(basename "$core"):"
  echo "$tree"
  expect_tree "$tree" "core file"
fi
exit $fail

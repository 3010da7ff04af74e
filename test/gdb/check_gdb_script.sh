#!/usr/bin/env bash
# Runs tools/asyncfiber-gdb.py on test/gdb/gdb_target: af-tasks must list the suspended tasks
# by name and state, and af-bt must show a suspended task's own frames.
#   check_gdb_script.sh <gdb> <gdb_target> <asyncfiber-gdb.py>
# Exits 77 (skipped) where the debugger cannot run programs here (no ptrace).
set -u
gdb=$1 target=$2 script=$3
if ! "$gdb" -q -batch -ex run /bin/true >/dev/null 2>&1; then
  echo "gdb cannot run programs here; skipped"
  exit 77
fi
# First look: the tasks, and the id of the named one; second look: its stack.
list=$("$gdb" -q -batch -ex run -ex "source $script" -ex af-tasks "$target" 2>&1)
id=$(awk '/^#[0-9]+ +sleeper /{sub(/^#/, "", $1); print $1}' <<<"$list")
out=$("$gdb" -q -batch -ex run -ex "source $script" -ex af-tasks -ex "af-bt ${id:-0}" \
        "$target" 2>&1 | grep -v "RTTI symbol not found")
echo "$out"
fail=0
expect() { grep -qE "$1" <<<"$out" || { echo "MISSING: $1"; fail=1; }; }
expect '^#[0-9]+ +main +running'
expect '^#[0-9]+ +sleeper +suspended sleep'
expect '^#[0-9]+ +Task-[0-9]+ +suspended sleep'
expect 'asyncfiber::sleep_until'
expect 'napping_in_a_named_task'
exit $fail

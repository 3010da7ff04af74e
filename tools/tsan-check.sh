#!/usr/bin/env bash
# The tests that run loops on several threads, under ThreadSanitizer (each task is a TSan
# fiber, see lib/fiber_switch.hpp). Any report fails the run.
#
# Not yet a CI step: with clang 14 a task that is cancelled while suspended in af::sleep and
# then awaited makes TSan crash later in __tsan_func_entry on the thread's own stack (its
# shadow call stack is out of balance after the switches). Move this file back to
# .ci/extra/20-tsan.sh once that is understood and fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-ci-tsan
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DASYNCFIBER_SANITIZE=thread -DASYNCFIBER_BUILD_BENCH=OFF -DASYNCFIBER_BUILD_EXAMPLES=OFF >/dev/null
# Thread-related tests: every test file that starts std::threads.
tests=$(grep -l "std::thread" test/*_test.cpp | xargs -n1 basename | sed 's/\.cpp$//')
cmake --build "$dir" -j "$(nproc)" --target $tests
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for t in $tests; do
  echo "--- $t"
  "$dir/test/$t" --gtest_filter='*Thread*:*thread*:*Threadsafe*:*CrossThread*'
done

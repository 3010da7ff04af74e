#!/usr/bin/env bash
# The thread bridge (Promise/Future, await_callback, to_thread, run_coroutine_threadsafe,
# use_await, Channel, Runtime), loops used from other threads (loop_threads_test) and task-local state across
# threads (context_test: contexts, bindings made and ended on other threads) under ThreadSanitizer:
# clang++, -DASYNCFIBER_SANITIZE=thread, only the tests that involve other threads, plus the
# eager tasks (eager_test), whose first switch goes from the spawner's fiber, not the
# scheduler's. Any TSan report fails the step.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=build-ci-tsan
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNCFIBER_WERROR=ON -DCMAKE_CXX_COMPILER=clang++ \
      -DASYNCFIBER_SANITIZE=thread -DASYNCFIBER_BUILD_EXAMPLES=OFF -DASYNCFIBER_BUILD_BENCH=OFF \
      >/dev/null
tests="bridge_test bridge_stress_test bridge_asio_test cancel_test task_test loop_threads_test eager_test context_test future_test channel_test multiloop_test"
cmake --build "$dir" -j "$(nproc)" --target $tests
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(pwd)/.ci/extra/tsan.supp"
for t in $tests; do
  echo "--- $t (ThreadSanitizer)"
  filter="*"
  # task_test: only the test with two loops on two threads (100 000-task tests exhaust
  # TSan's shadow memory and say nothing about threads).
  [ "$t" = task_test ] && filter="Scheduling.TwoLoopsOnTwoThreads"
  # cancel_test: not the SIGINT test. TSan defers an asynchronous signal to a safe point of
  # the fiber that received it (each task is a TSan fiber with its own pending signals), so
  # a SIGINT raised in main, which then suspends, can wait there until main runs again.
  # The same holds for the child programs of Sigint.Interrupted* (built with TSan here).
  [ "$t" = cancel_test ] && filter="-Cancel.SigintCancelsMain:Sigint.Interrupted*"
  [ "$t" = multiloop_test ] && filter="-Runtime.SigintCancelsTheMainsAndRunThrowsKeyboardInterrupt"
  "./$dir/test/$t" --gtest_brief=1 --gtest_filter="$filter"
done

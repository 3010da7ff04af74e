#!/usr/bin/env bash
# The examples under Valgrind memcheck, task stacks registered with Valgrind
# (-DASYNCFIBER_VALGRIND=ON). Any error fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 0; }
# scripts/test.sh's g++ C++20 build, configured as it configures it (so that, after it, this
# configures and builds nothing again).
dir=build-ci-gcc-cxx20
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
      -DCMAKE_CXX_STANDARD=20 -DASYNCFIBER_WERROR=ON -DASYNCFIBER_VALGRIND=ON >/dev/null
cmake --build "$dir" -j "$(nproc)"
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --quiet)
# Every example that runs on its own; the echo pair runs together below.
for exe in $(find "$dir/example" -maxdepth 1 -type f -executable ! -name 'echo_*' | sort); do
  echo "--- $exe"
  "${vg[@]}" "$exe" >/dev/null
done
# The echo server under valgrind, the client (also under valgrind) against it, then SIGINT
# stops the server, which must exit cleanly.
port=$((20000 + RANDOM % 20000))
echo "--- echo_server + echo_client (port $port)"
# A background job of a script starts with SIGINT ignored; give the server the default back.
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  "${vg[@]}" "$dir/example/echo_server" "$port" >/dev/null &
server=$!
for _ in $(seq 50); do
  "$dir/example/echo_client" probe "$port" >/dev/null 2>&1 && break
  sleep 0.2
done
"${vg[@]}" "$dir/example/echo_client" "hello" "$port" >/dev/null
kill -INT "$server"
wait "$server"

#!/usr/bin/env bash
# Installs what asyncfiber needs to build, test and benchmark, from Debian 12 packages only.
# Installs nothing that is already there; needs root (or sudo) for what is missing.
#   scripts/install-deps.sh [--anchors]
set -euo pipefail
pkgs=(build-essential cmake ninja-build clang pkg-config
      libboost-fiber-dev libboost-context-dev libboost-dev libboost-stacktrace-dev libssl-dev openssl
      libgtest-dev googletest libbenchmark-dev python3 gdb clang-format valgrind)
# --anchors: also what the benchmark anchors need (Go's; Python's is above), for
# bench/compare.sh and bench/scaling.sh.
[ "${1:-}" = --anchors ] && pkgs+=(golang-go)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

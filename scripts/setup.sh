#!/usr/bin/env bash
# Installs what building and testing kvtier needs on a Debian-like machine, if missing:
# redis-server/redis-tools (differential tests, redis-benchmark) and libclang (RocksDB bindgen).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} — install them with your package manager (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
# Stop any redis-server the package started: tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi

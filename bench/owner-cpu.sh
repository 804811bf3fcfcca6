#!/usr/bin/env bash
# CPU seconds the owner thread (the event loop) spends on one redis-benchmark run: a steadier
# measure of per-request cost than ops/s on a shared machine. Starts a fresh kvtier with an
# empty data dir, runs the benchmark, prints ops/s, the owner thread's and the whole process's
# CPU seconds (utime + stime from /proc), and the save batching.
#
#   bench/owner-cpu.sh target/release/kvtier-server            # INCR -r 100000 -P 16, rocksdb
#   TEST=set N=2000000 KVTIER_ARGS="--backend fs" bench/owner-cpu.sh <bin>
#
# Environment: TEST (redis-benchmark -t, default incr), N (default 1500000), RANDOM_KEYS
# (default 100000), PIPELINE (default 16), CLIENTS (default 50), PORT (default 17401),
# KVTIER_ARGS (default "--backend rocksdb --maxmemory 64mb").
set -euo pipefail
BIN="${1:?usage: bench/owner-cpu.sh <kvtier-server binary>}"
TEST="${TEST:-incr}"; N="${N:-1500000}"; RANDOM_KEYS="${RANDOM_KEYS:-100000}"
PIPELINE="${PIPELINE:-16}"; CLIENTS="${CLIENTS:-50}"; PORT="${PORT:-17401}"
read -r -a EXTRA <<< "${KVTIER_ARGS:---backend rocksdb --maxmemory 64mb}"
DIR="$(mktemp -d)"
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$BIN" --port "$PORT" --dir "$DIR" "${EXTRA[@]}" >"$DIR.log" 2>&1 &
PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
RATE=$(redis-benchmark -p "$PORT" -t "$TEST" -r "$RANDOM_KEYS" -n "$N" -c "$CLIENTS" \
  -P "$PIPELINE" -q 2>&1 | tr '\r' '\n' | grep "per second")
TICKS=$(getconf CLK_TCK)
OWNER=$(awk -v t="$TICKS" '{print ($14+$15)/t}' "/proc/$PID/task/$PID/stat")
ALL=$(awk -v t="$TICKS" '{print ($14+$15)/t}' "/proc/$PID/stat")
BATCH=$(redis-cli -p "$PORT" info diskstore | tr -d '\r' | grep keys_per_save_batch)
echo "$RATE owner_cpu_s=$OWNER all_cpu_s=$ALL $BATCH"

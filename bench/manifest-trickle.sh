#!/usr/bin/env bash
# What a trickle of single writes to one long paged value costs on disk (issue 19): builds a list
# of 4,000,000 three-byte elements (LPUSH), a stream of 1,000,000 entries (XADD) or a sorted set
# of about 632,000 members (ZADD -r 1000000), then sends 100 single LPUSHes, XADDs or ZADDs 30 ms
# apart with `cache-flush-delay 0`, so each is saved on its own, and reports per write: bytes the process wrote (/proc/<pid>/io write_bytes: the
# backend's log, journal and compaction included) and INFO bytes_saved (the records kvtier put).
#
#   bench/manifest-trickle.sh                               # list, stream, zset; fs and rocksdb
#   KINDS=stream BACKENDS=rocksdb KVTIER_SERVER_BIN=/path/to/kvtier-server bench/manifest-trickle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KINDS="${KINDS:-list stream zset}"
BACKENDS="${BACKENDS:-fs rocksdb}"
PORT="${PORT:-17610}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kvtier-target}"
KVTIER="${KVTIER_SERVER_BIN:-$CARGO_TARGET_DIR/release/kvtier-server}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/kvtier-trickle.XXXXXX")"
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

cli() { redis-cli -p "$PORT" "$@"; }
written() { awk '/^write_bytes/ {print $2}' "/proc/$PID/io"; }
saved() { cli info | awk -F: '/^bytes_saved/ {print $2+0}'; }

for kind in $KINDS; do
  for backend in $BACKENDS; do
    rm -rf "$TMP/data"; mkdir -p "$TMP/data"
    "$KVTIER" --port "$PORT" --dir "$TMP/data" --backend "$backend" --cache-flush-delay 0 \
      >"$TMP/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
    if [ "$kind" = list ]; then
      redis-benchmark -p "$PORT" -t lpush -n 4000000 -P 16 -q >/dev/null
    elif [ "$kind" = zset ]; then
      redis-benchmark -p "$PORT" -t zadd -r 1000000 -n 1000000 -P 16 -q >/dev/null
    else
      redis-benchmark -p "$PORT" -n 1000000 -P 16 -q XADD mystream '*' field value-of-some-length \
        >/dev/null
    fi
    cli SAVE >/dev/null; sleep 3
    w0=$(written); s0=$(saved)
    for i in $(seq 100); do
      if [ "$kind" = list ]; then cli LPUSH mylist "x$i" >/dev/null
      elif [ "$kind" = zset ]; then cli ZADD myzset "$RANDOM" "new-member-$i" >/dev/null
      else cli XADD mystream '*' f "x$i" >/dev/null; fi
      sleep 0.03
    done
    cli SAVE >/dev/null; sleep 2
    w1=$(written); s1=$(saved)
    cli shutdown nosave >/dev/null 2>&1 || true
    wait "$PID" || true
    PID=""
    echo "$kind $backend: write_bytes per write $(( (w1 - w0) / 100 )), bytes_saved per write $(( (s1 - s0) / 100 ))"
  done
done

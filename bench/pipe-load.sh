#!/usr/bin/env bash
# Bulk load as a new user does it: `redis-cli --pipe` of N SETs of new keys with 100-byte values
# into kvtier (each backend, maxmemory 64mb) and into redis-server, in the same run. Reports
# the time, keys/s, errors, and after a restart (SHUTDOWN, start again) how many of 1,000 sampled
# keys read back with the right value. Compare keys/s with the backend's raw batched-put rate
# from `kvtier-bench backends --value-size 100` in the same run.
#
#   bench/pipe-load.sh                      # N=1000000, backends fs sled rocksdb
#   N=200000 BACKENDS="rocksdb" bench/pipe-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
BACKENDS="${BACKENDS:-fs sled rocksdb}"
MAXMEMORY="${MAXMEMORY:-64mb}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kvtier-target}"
KVTIER="${KVTIER_SERVER_BIN:-$CARGO_TARGET_DIR/release/kvtier-server}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/kvtier-pipe.XXXXXX")"
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

python3 - "$N" >"$TMP/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 100
for i in range(n):
    k = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(k), k, val))
PY

port=$((20000 + RANDOM % 20000))
# PONG, not just a reply: a server still loading its data answers PING with -LOADING.
wait_port() { for _ in $(seq 1200); do [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done; return 1; }

check_sample() {
  python3 - "$port" "$N" <<'PY'
import random, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
keys = random.Random(7).sample(range(n), min(1000, n))
req = b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\nkey:%d\r\n" % (len(b"key:%d" % k), k) for k in keys)
s.sendall(req)
buf = b""
want = b"$100\r\n" + b"v" * 100 + b"\r\n"
s.settimeout(60)
while buf.count(want) + buf.count(b"$-1\r\n") < len(keys):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
print(buf.count(want))
PY
}

echo "| server | load time (s) | keys/s | errors | sampled keys read back after restart |"
echo "|---|--:|--:|--:|--:|"
run_one() {
  local name="$1"; shift
  rm -rf "$TMP/data"
  "$@" >"$TMP/$name.log" 2>&1 &
  PID=$!
  wait_port
  local t0 t1 out errors
  t0=$(date +%s.%N)
  out=$(redis-cli -p "$port" --pipe <"$TMP/load.resp" 2>&1 | tail -1)
  t1=$(date +%s.%N)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out")
  redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
  wait "$PID" 2>/dev/null || true
  "$@" >>"$TMP/$name.log" 2>&1 &
  PID=$!
  wait_port
  local ok
  ok=$(check_sample)
  redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$PID" 2>/dev/null || true
  PID=""
  python3 -c "t=$t1-$t0; print(f'| $name | {t:.2f} | {$N/t:,.0f} | ${errors:-?} | $ok / 1000 |')"
}
for b in $BACKENDS; do
  run_one "kvtier $b" "$KVTIER" --port "$port" --dir "$TMP/data" --backend "$b" --maxmemory "$MAXMEMORY"
done
run_one "redis-server" redis-server --port "$port" --dir "$TMP" --dbfilename dump.rdb --save "" --appendonly yes --appenddirname "aof"

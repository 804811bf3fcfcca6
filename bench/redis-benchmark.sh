#!/usr/bin/env bash
# redis-benchmark against a fresh redis-server and a fresh release-built kvtier, one after the
# other in the same run, then a markdown table: test, P, redis ops/s, kvtier ops/s, ratio.
#
#   bench/redis-benchmark.sh            # N=200000, -c 50, -P 1 and -P 16
#   N=50000 bench/redis-benchmark.sh    # shorter
#
# Environment:
#   N                 requests per test (default 200000)
#   CLIENTS           parallel connections (default 50)
#   PIPELINES         pipeline depths to run (default "1 16")
#   REPEAT            rounds (default 1); with more, each cell is the median ops/s and the
#                     min–max of the rounds is shown (the redis/kvtier order alternates by round)
#   TESTS             redis-benchmark -t list (default set,get,incr,lpush,lpop,sadd,hset)
#   RANDOM_KEYS       redis-benchmark -r value (random keys out of that many; default: none, one
#                     hot key per test). kvtier lives where keys are not in memory: use it.
#   CARGO_TARGET_DIR  default ~/.cache/kvtier-target; kvtier is built with
#                     `cargo build --release -p kvtier-server` (skip with KVTIER_SERVER_BIN=path)
#   REDIS_SERVER      redis-server binary (default: redis-server on PATH)
#   KVTIER_ARGS       extra kvtier-server arguments
#   NO_PIN=1          do not pin with taskset
#
# Each (server, pipeline depth) pair gets a fresh server with an empty data dir: redis-server with
# `--save '' --appendonly no`, kvtier with `--dir <tmp>` (its default disk store). With taskset and
# at least 2 CPUs the server is pinned to CPU 0 (all its threads, kvtier's IO threads included)
# and redis-benchmark to CPU 1. A test whose command the server lacks (COMMAND INFO answers nil)
# is reported as "n/a (command missing at time of run)".
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-200000}"
CLIENTS="${CLIENTS:-50}"
PIPELINES="${PIPELINES:-1 16}"
REPEAT="${REPEAT:-1}"
TESTS="${TESTS:-set,get,incr,lpush,lpop,sadd,hset}"
RANDOM_ARGS=()
[ -n "${RANDOM_KEYS:-}" ] && RANDOM_ARGS=(-r "$RANDOM_KEYS")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kvtier-target}"
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || true)}"
KVTIER_ARGS="${KVTIER_ARGS:-}"

for tool in redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool not found (Debian: apt-get install redis-tools)" >&2; exit 1; }
done
[ -n "$REDIS_SERVER" ] || { echo "redis-server not found (Debian: apt-get install redis-server)" >&2; exit 1; }

if [ -n "${KVTIER_SERVER_BIN:-}" ]; then
  KVTIER="$KVTIER_SERVER_BIN"
else
  echo "building kvtier-server (release)..." >&2
  cargo build --release -q -p kvtier-server >&2
  KVTIER="$CARGO_TARGET_DIR/release/kvtier-server"
fi

SERVER_PIN=()
BENCH_PIN=()
if [ -z "${NO_PIN:-}" ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0)
  BENCH_PIN=(taskset -c 1)
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/kvtier-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() { # port
  for _ in $(seq 1 400); do
    if [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ]; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited early" >&2; return 1; fi
    sleep 0.05
  done
  echo "server on port $1 did not answer PING" >&2
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

start_server() { # name port datadir
  mkdir -p "$3"
  case "$1" in
    redis)
      "${SERVER_PIN[@]}" "$REDIS_SERVER" --port "$2" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$3" >"$3/server.log" 2>&1 &
      ;;
    kvtier)
      # shellcheck disable=SC2086
      "${SERVER_PIN[@]}" "$KVTIER" --port "$2" --dir "$3/data" $KVTIER_ARGS >"$3/server.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  wait_ready "$2"
}

# run_one name P round -> appends lines TEST,rps to $TMP/<name>-<P>.csv (rps "missing" if the
# server lacks the command)
run_one() {
  local name="$1" p="$2" round="$3" port dir
  port="$(free_port)"
  dir="$TMP/$name-$p-$round"
  start_server "$name" "$port" "$dir"
  local out="$TMP/$name-$p.csv"
  local t cmd present
  for t in ${TESTS//,/ }; do
    cmd="$t"
    present="$(redis-cli -p "$port" --no-raw COMMAND INFO "$cmd" 2>/dev/null | head -1)"
    if [ -z "$present" ] || [[ "$present" == *"(nil)"* ]] || [[ "$present" == *"(empty"* ]]; then
      echo "${t^^},missing" >>"$out"
      continue
    fi
    echo "round $round, $name -P $p: $t" >&2
    "${BENCH_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -t "$t" -n "$N" -c "$CLIENTS" -P "$p" "${RANDOM_ARGS[@]}" --csv \
      | tail -n +2 | tr -d '"' | cut -d, -f1,2 >>"$out"
  done
  stop_server
  rm -rf "$dir"
}

for round in $(seq 1 "$REPEAT"); do
  for p in $PIPELINES; do
    if [ $((round % 2)) -eq 1 ]; then
      run_one redis "$p" "$round"
      run_one kvtier "$p" "$round"
    else
      run_one kvtier "$p" "$round"
      run_one redis "$p" "$round"
    fi
  done
done

# stat FILE TEST -> "median min max" of the test's ops/s over the rounds, or "missing"
stat() {
  awk -F, -v t="$2" '$1==t {print $2}' "$1" | sort -g | awk '
    /missing/ { m = 1 } { v[NR] = $1 }
    END {
      if (m || NR == 0) { print "missing"; exit }
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.0f %.0f %.0f\n", med, v[1], v[NR]
    }'
}

REDIS_VERSION="$("$REDIS_SERVER" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo
PIN_NOTE="not pinned"
[ ${#SERVER_PIN[@]} -gt 0 ] && PIN_NOTE="server pinned to CPU 0, redis-benchmark to CPU 1 (taskset)"
ROUNDS="1 round"
[ "$REPEAT" -gt 1 ] && ROUNDS="median of $REPEAT rounds (min–max in brackets)"
echo "redis-benchmark -t $TESTS -n $N -c $CLIENTS -P {${PIPELINES// /,}} ${RANDOM_ARGS[*]} --csv; kvtier $KVTIER_ARGS; redis-server $REDIS_VERSION vs $KVTIER; $PIN_NOTE; $ROUNDS"
echo
echo "| test | P | redis ops/s | kvtier ops/s | kvtier / redis |"
echo "| --- | --- | ---: | ---: | ---: |"
for t in ${TESTS//,/ }; do
  T="${t^^}"
  for p in $PIPELINES; do
    read -r r rmin rmax <<<"$(stat "$TMP/redis-$p.csv" "$T")"
    read -r k kmin kmax <<<"$(stat "$TMP/kvtier-$p.csv" "$T")"
    cell() { # median min max
      if [ "$REPEAT" -gt 1 ]; then printf '%s (%s–%s)' "$1" "$2" "$3"; else printf '%s' "$1"; fi
    }
    if [ "$r" = "missing" ]; then
      rc="n/a (command missing)"
    else
      rc="$(cell "$r" "$rmin" "$rmax")"
    fi
    if [ "$k" = "missing" ]; then
      printf '| %s | %s | %s | n/a (command missing at time of run) | n/a |\n' "$T" "$p" "$rc"
    else
      ratio="$(awk -v r="$r" -v k="$k" 'BEGIN { printf "%.2f", (r > 0 ? k / r : 0) }')"
      printf '| %s | %s | %s | %s | %s |\n' "$T" "$p" "$rc" "$(cell "$k" "$kmin" "$kmax")" "$ratio"
    fi
  done
done

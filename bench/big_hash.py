#!/usr/bin/env python3
"""One hash far larger than maxmemory (issue 19), measured on kvtier and on redis-server.

For each backend: build one hash of --fields fields (about 100 bytes each) with pipelined HSETs
under --maxmemory, counting -OOM replies; write 1,000 random HSETs and read the bytes the
process wrote to disk for them (/proc/<pid>/io write_bytes, after SAVE); restart; run 10,000
random HGETs and read the process's peak RSS. redis-server builds the same hash for the ops/s
ratio (it holds it all in RAM).

    python3 bench/big_hash.py --server-bin target/release/kvtier-server \
        --backends fs,rocksdb,sled --fields 2000000 --maxmemory 32mb
"""

import argparse
import random
import shutil
import tempfile
import time

import redis

from kvbench import free_port, proc_kb, write_bytes, start

VALUE = "v" * 88  # with a ~10-byte field name: about 100 bytes a field


def build(r, fields, batch=1000):
    ooms = 0
    t = time.time()
    for start_i in range(0, fields, batch):
        pipe = r.pipeline(transaction=False)
        for i in range(start_i, min(fields, start_i + batch)):
            pipe.hset("big", f"f{i}", VALUE)
        for res in pipe.execute(raise_on_error=False):
            if isinstance(res, redis.exceptions.ResponseError) and str(res).startswith("OOM"):
                ooms += 1
    return fields / (time.time() - t), ooms


def run_kvtier(args, backend):
    port = free_port()
    data = tempfile.mkdtemp(prefix=f"bighash-{backend}-")
    cmd = [args.server_bin, "--port", str(port), "--dir", data, "--backend", backend,
           "--maxmemory", args.maxmemory] + args.extra.split()
    try:
        p, r = start(cmd, port)
        ops, ooms = build(r, args.fields)
        build_hwm = proc_kb(p.pid, "VmHWM") // 1024
        r.execute_command("SAVE")
        page_bytes = int(r.config_get("page-bytes")["page-bytes"])
        before = write_bytes(p.pid)
        for _ in range(1000):
            r.hset("big", f"f{random.randrange(args.fields)}", VALUE)
        r.execute_command("SAVE")
        written = write_bytes(p.pid) - before
        field_bytes = 1000 * (len("f1000000") + len(VALUE))
        ratio = written / (field_bytes + 1000 * page_bytes)
        r.shutdown(nosave=False)
        p.wait(60)
        p, r = start(cmd, port)
        assert r.hlen("big") == args.fields, r.hlen("big")
        t = time.time()
        missing = 0
        for _ in range(100):
            pipe = r.pipeline(transaction=False)
            for _ in range(100):
                pipe.hget("big", f"f{random.randrange(args.fields)}")
            missing += sum(v is None for v in pipe.execute())
        hget_s = 10_000 / (time.time() - t)
        hwm = proc_kb(p.pid, "VmHWM") // 1024
        rss = proc_kb(p.pid, "VmRSS") // 1024
        r.shutdown(nosave=False)
        p.wait(60)
        return dict(ops=ops, ooms=ooms, build_hwm=build_hwm, written=written, ratio=ratio,
                    hget_s=hget_s, missing=missing, hwm=hwm, rss=rss)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run_redis(args):
    port = free_port()
    p, r = start([args.redis_bin, "--port", str(port), "--save", "", "--appendonly", "no"], port)
    try:
        ops, _ = build(r, args.fields)
        return ops, proc_kb(p.pid, "VmHWM") // 1024
    finally:
        p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-bin", required=True)
    ap.add_argument("--redis-bin", default="/usr/bin/redis-server")
    ap.add_argument("--backends", default="fs,rocksdb,sled")
    ap.add_argument("--fields", type=int, default=2_000_000)
    ap.add_argument("--maxmemory", default="32mb")
    ap.add_argument("--extra", default="", help="more kvtier arguments, space-separated")
    args = ap.parse_args()
    mm = int(args.maxmemory.rstrip("mb")) if args.maxmemory.endswith("mb") else 0
    redis_ops, redis_hwm = run_redis(args)
    print(f"redis-server: build {redis_ops:,.0f} HSET/s, peak RSS {redis_hwm} MB")
    print("| backend | HSET/s (ratio) | -OOM | build peak RSS MB | bytes written / 1000 HSETs "
          "(ratio to fields + 1 page each) | HGET/s after restart | peak RSS MB (bound) |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for b in args.backends.split(","):
        m = run_kvtier(args, b)
        bound = int(1.15 * mm + 32) if mm else 0
        print(f"| {b} | {m['ops']:,.0f} ({m['ops'] / redis_ops:.2f}x) | {m['ooms']} | "
              f"{m['build_hwm']} | {m['written']:,} ({m['ratio']:.2f}) | {m['hget_s']:,.0f} | "
              f"{m['hwm']} ({bound}) |", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cold reads (issue 11): keys only on disk, read one by one, pipelined, and by MGET.

Loads --keys values of --value-size bytes under --maxmemory, SAVEs, then for each read form
restarts the server (so every key starts on disk only) and reads uniformly random keys for
--secs seconds from one connection, checking every value:

- `get`: one GET at a time (a cold key costs one load; reports p50/p99 latency),
- `pipeline`: pipelines of --batch GETs (the keys buffered behind a parked command are loaded
  together),
- `mget`: MGET of --batch keys (one command, one batched load),
- `hot`, `hot pipeline`, `hot mget`: the same three over --hot-keys keys that stay resident
  (the cost of the request and of this client alone, for the cold/hot ratios: through redis-py a
  pipeline of 100 GETs costs the client more than one MGET even when nothing is read from disk).

    python3 bench/cold_reads.py --server-bin target/release/kvtier-server --backend rocksdb
"""

import argparse
import random
import shutil
import tempfile
import time

import redis

from kvbench import Raw, add_dataset_args, free_port, proc_kb, start


def value(i, size):
    unit = f"v{i}-".encode()
    return (unit * (size // len(unit) + 1))[:size]


def load(r, keys, size, batch=500):
    for lo in range(0, keys, batch):
        pipe = r.pipeline(transaction=False)
        for i in range(lo, min(keys, lo + batch)):
            pipe.set(f"key:{i}", value(i, size))
        pipe.execute()
    r.execute_command("SAVE")


def check(i, got, size):
    if got != value(i, size):
        raise SystemExit(f"key:{i}: wrong value ({None if got is None else len(got)} bytes)")


def read(r, form, args, port):
    keys, size, batch = args.keys, args.value_size, args.batch
    raw = Raw(port)
    lat = []
    n = 0
    end = time.time() + args.secs
    span = args.hot_keys if form.startswith("hot") else keys
    while time.time() < end:
        if form in ("get", "hot"):
            i = random.randrange(span)
            t = time.perf_counter()
            got = r.get(f"key:{i}")
            lat.append(time.perf_counter() - t)
            check(i, got, size)
            n += 1
            continue
        ids = [random.randrange(span) for _ in range(batch)]
        got = raw.get_batch([f"key:{i}".encode() for i in ids], mget=form.endswith("mget"))
        for i, g in zip(ids, got):
            check(i, g, size)
        n += batch
    rate = n / args.secs
    if not lat:
        return rate, None, None
    lat.sort()
    return rate, lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(ap, backend="rocksdb")
    ap.add_argument("--hot-keys", type=int, default=1000)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--extra", default="", help="more kvtier-server arguments")
    args = ap.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix=f"coldreads-{args.backend}-")
    cmd = [args.server_bin, "--port", str(port), "--dir", data, "--backend", args.backend,
           "--maxmemory", args.maxmemory] + args.extra.split()
    try:
        p, r = start(cmd, port)
        t = time.time()
        load(r, args.keys, args.value_size)
        print(f"loaded {args.keys} x {args.value_size} B in {time.time() - t:.1f} s "
              f"({args.backend}, maxmemory {args.maxmemory})")
        print("| read form | keys/s | p50 µs | p99 µs | peak RSS MiB |")
        print("|---|--:|--:|--:|--:|")
        for form in ("get", "pipeline", "mget", "hot", "hot pipeline", "hot mget"):
            r.shutdown(nosave=False)
            p.wait(60)
            p, r = start(cmd, port)
            if form.startswith("hot"):
                for i in range(args.hot_keys):
                    r.get(f"key:{i}")
            rate, p50, p99 = read(r, form, args, port)
            hwm = proc_kb(p.pid, "VmHWM") // 1024
            fmt = lambda v: "—" if v is None else f"{v:,.0f}"
            label = form if form in ("get", "hot") else f"{form} of {args.batch}"
            print(f"| {label} | {rate:,.0f} | {fmt(p50)} | {fmt(p99)} | {hwm} |")
        r.shutdown(nosave=False)
        p.wait(60)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

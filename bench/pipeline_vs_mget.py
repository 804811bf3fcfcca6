#!/usr/bin/env python3
"""A pipeline of cold GETs against an MGET of as many cold keys (issue 11), alternated on one
server so that both see the same machine (this one is shared: a run's absolute rates wander).

Loads --keys values of --value-size bytes under --maxmemory, restarts the server (every key on
disk only), then runs --rounds rounds of --secs seconds each, alternating MGET of --batch random
keys and a pipeline of --batch GETs of random keys, through a bare RESP connection (both forms
encoded and decoded alike, so the ratio is the server's). Prints keys/s and request latency per
round and the ratio of the totals.

    python3 bench/pipeline_vs_mget.py --server-bin target/release/kvtier-server --backend fs
"""

import argparse
import random
import shutil
import tempfile
import time

from cold_reads import load, value
from kvbench import Raw, add_dataset_args, free_port, start


def round_of(raw, form, args):
    lat = []
    end = time.time() + args.secs
    while time.time() < end:
        ids = [random.randrange(args.keys) for _ in range(args.batch)]
        t = time.perf_counter()
        got = raw.get_batch([f"key:{i}".encode() for i in ids], mget=form == "mget")
        lat.append(time.perf_counter() - t)
        for i, g in zip(ids, got):
            if g != value(i, args.value_size):
                raise SystemExit(f"key:{i}: wrong value")
    lat.sort()
    n = len(lat)
    return n * args.batch, lat[n // 2] * 1e6, lat[n * 99 // 100] * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(ap, backend="fs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3)
    args = ap.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix=f"pipemget-{args.backend}-")
    cmd = [args.server_bin, "--port", str(port), "--dir", data, "--backend", args.backend,
           "--maxmemory", args.maxmemory]
    try:
        p, r = start(cmd, port)
        load(r, args.keys, args.value_size)
        r.shutdown(nosave=False)
        p.wait(60)
        p, r = start(cmd, port)
        raw = Raw(port)
        total = {"mget": 0, "pipeline": 0}
        print(f"{args.backend}, {args.keys} x {args.value_size} B, maxmemory {args.maxmemory}")
        print("| round | form | keys/s | p50 µs | p99 µs |")
        print("|--:|---|--:|--:|--:|")
        for rnd in range(args.rounds):
            for form in ("mget", "pipeline"):
                keys, p50, p99 = round_of(raw, form, args)
                total[form] += keys
                print(f"| {rnd + 1} | {form} | {keys / args.secs:,.0f} | {p50:,.0f} | {p99:,.0f} |")
        print(f"pipeline / MGET: {total['pipeline'] / total['mget']:.2f}")
        r.shutdown(nosave=True)
        p.wait(60)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Plots of kvtier-bench results.

    pip install -r bench/requirements.txt
    python3 bench/plot.py [--results bench/results] [--img docs/img]

- backends.csv -> backends.png: ops/s per operation, one bar per backend, log scale
  (unsupported operations are marked N/A).
- rss.csv -> rss.png: server RSS over time, coloured by phase, with the RSS bound
  (1.15 x maxmemory + 32 MiB) and maxmemory as horizontal lines.
"""

import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "put_sync": "put 1 key\n+ sync",
    "put_batch100_sync": "put batch of 100\n+ sync",
    "get_random": "random get",
    "scan": "scan\n(pages of 100)",
    "checkpoint": "checkpoint",
}
COLORS = {"fs": "#4c72b0", "sled": "#dd8452", "rocksdb": "#55a868"}
PHASE_COLORS = {
    "startup": "#999999",
    "set": "#4c72b0",
    "save": "#8172b3",
    "get": "#55a868",
    "shutdown": "#c44e52",
}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_backends(src, dest):
    rows = read_csv(src)
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    ops = list(dict.fromkeys(r["operation"] for r in rows))
    rate = {(r["backend"], r["operation"]): r["ops_per_sec"] for r in rows}
    keys = rows[0]["dataset_keys"]
    size = rows[0]["value_size"]

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=120)
    width = 0.8 / len(backends)
    values = [float(v) for v in rate.values() if v != "NA"]
    floor = min(values) / 3 if values else 1
    for bi, b in enumerate(backends):
        xs = [i + (bi - (len(backends) - 1) / 2) * width for i in range(len(ops))]
        for x, op in zip(xs, ops):
            v = rate.get((b, op), "NA")
            if v == "NA":
                ax.text(x, floor * 1.2, "N/A", ha="center", va="bottom", rotation=90,
                        fontsize=9, color=COLORS.get(b, "black"))
                continue
            v = float(v)
            ax.bar(x, v, width * 0.95, color=COLORS.get(b), label=b if op == ops[0] else None)
            ax.text(x, v * 1.08, f"{v:,.0f}", ha="center", va="bottom", rotation=90, fontsize=8)
    # Backends whose first operation was N/A still need a legend entry.
    handles, labels = ax.get_legend_handles_labels()
    for b in backends:
        if b not in labels:
            handles.append(plt.Rectangle((0, 0), 1, 1, color=COLORS.get(b)))
            labels.append(b)
    ax.legend(handles, labels, loc="upper left")
    ax.set_yscale("log")
    ax.set_ylim(floor, max(values) * 20 if values else 10)
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels([LABELS.get(o, o) for o in ops])
    ax.set_ylabel("ops/s (keys per second, log scale)")
    ax.set_title(f"kvtier backends: {keys} keys of {size} B (higher is better)")
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
    print(f"wrote {dest}")


def plot_rss(src, dest):
    rows = read_csv(src)
    t = [float(r["time_s"]) for r in rows]
    rss = [float(r["rss_mib"]) for r in rows]
    bound = float(rows[0]["bound_mib"])
    maxmem = float(rows[0]["maxmemory_mib"])

    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    # One line segment per phase, so each phase has its colour.
    start = 0
    seen = set()
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["phase"] != rows[start]["phase"]:
            phase = rows[start]["phase"]
            end = min(i + 1, len(rows))  # join to the next segment
            ax.plot(t[start:end], rss[start:end], color=PHASE_COLORS.get(phase, "black"),
                    linewidth=1.5, label=f"RSS, {phase}" if phase not in seen else None)
            seen.add(phase)
            start = i
    ax.axhline(bound, color="#c44e52", linestyle="--", linewidth=1.2,
               label=f"bound 1.15 x maxmemory + 32 MiB = {bound:.1f} MiB")
    ax.axhline(maxmem, color="#555555", linestyle=":", linewidth=1.0,
               label=f"maxmemory = {maxmem:.0f} MiB")
    ax.set_ylim(0, max(max(rss), bound) * 1.15)
    ax.set_xlabel("time since server start (s)")
    ax.set_ylabel("server RSS (MiB)")
    title = "kvtier-server RSS"
    e2e = os.path.join(os.path.dirname(src), "e2e.csv")
    if os.path.exists(e2e):
        m = {r["metric"]: r["value"] for r in read_csv(e2e)}
        if "dataset_mib" in m:
            title += (f", {m['dataset_mib']} MiB dataset = {float(m['dataset_over_maxmemory']):.0f}x"
                      f" maxmemory ({m['maxmemory_mib']} MiB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
    print(f"wrote {dest}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="bench/results", help="directory with the CSV files")
    p.add_argument("--img", default="docs/img", help="directory for the PNG files")
    a = p.parse_args()
    os.makedirs(a.img, exist_ok=True)
    done = 0
    for name, fn in (("backends", plot_backends), ("rss", plot_rss)):
        src = os.path.join(a.results, f"{name}.csv")
        if os.path.exists(src):
            fn(src, os.path.join(a.img, f"{name}.png"))
            done += 1
        else:
            print(f"skip {name}: {src} not found", file=sys.stderr)
    if done == 0:
        sys.exit("no CSV found")


if __name__ == "__main__":
    main()

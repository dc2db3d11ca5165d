#!/usr/bin/python3
"""Time-to-accuracy from a sweep (scripts/sweep.sh calls this).

    sweep-curves.py OUT_DIR TARGET
    sweep-curves.py --time-to METRICS_JSONL TARGET   (one run: the seconds, or nothing)

Reads OUT_DIR/results.csv and each run's metrics.jsonl (psod's, one line per
round) and writes:
  OUT_DIR/time_to_target.md  seconds from psod's start to its first report
                             of the global model at TARGET or better, and
                             the final accuracy, mean over seeds, per link
  OUT_DIR/curves-LINK.png    test accuracy of the global model against wall
                             time, one curve per strategy, variant and sync
                             interval (the first seed), drawn by gnuplot
"""
import csv
import json
import os
import statistics
import subprocess
import sys


def split_variant(v):
    """NAME[+WIRE][@RATE] -> (name with wire, link)."""
    name, _, link = v.partition("@")
    return name, link or "none"


def sync_seconds(run_dir):
    """Mean over the workers of the seconds they spent in syncs (psoworker's
    summary line: sending, the round's wait, receiving): the communication
    part of the wall time."""
    vals = []
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        if name.startswith("worker") and name.endswith(".out"):
            for line in open(os.path.join(run_dir, name)):
                words = line.split()
                if "sync_s" in words:
                    vals.append(float(words[words.index("sync_s") + 1]))
    return statistics.mean(vals) if vals else None


def run_key(r):
    return "-".join([r["model"], r["dataset"], r["strategy"], r["variant"],
                     "s" + r["sync_every"], "w" + r["workers"], "seed" + r["seed"],
                     "e" + r["epochs"]])


def curve(path):
    pts = []
    if os.path.exists(path):
        for line in open(path):
            r = json.loads(line)
            if r.get("global_acc") is not None:
                pts.append((r["time"], 100 * r["global_acc"]))
    return pts


def time_to(path, target):
    """Seconds from psod's start to its first report of the global model at
    `target` (a fraction) or better; None if never."""
    return next((t for t, a in curve(path) if a >= 100 * target), None)


def main():
    if sys.argv[1] == "--time-to":
        t = time_to(sys.argv[2], float(sys.argv[3]))
        if t is not None:
            print("%.2f" % t)
        return
    out, target = sys.argv[1], float(sys.argv[2])
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    groups = {}
    for r in rows:
        if not r.get("final_acc"):
            continue
        name, link = split_variant(r["variant"])
        label = r["strategy"] + ("" if name == "default" else "/" + name)
        groups.setdefault(link, {}).setdefault((label, int(r["sync_every"])), []).append(r)
    md = []
    for link in sorted(groups):
        cells = groups[link]
        md += [f"### link {link}", "",
               f"| strategy | sync | runs | time to {100 * target:g}% (s) | final accuracy | wall s | sync s (workers) | bytes |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (label, sync) in sorted(cells):
            rs = cells[(label, sync)]
            ts = [t for t in (time_to(os.path.join(out, "runs", run_key(r), "metrics.jsonl"), target)
                              for r in rs) if t is not None]
            t = (f"{statistics.mean(ts):.1f}" + (f" ({len(ts)} of {len(rs)} reached it)"
                                                 if len(ts) < len(rs) else "")) if ts else "not reached"
            acc = statistics.mean(100 * float(r["final_acc"]) for r in rs)
            wall = statistics.mean(float(r["wall_s"]) for r in rs)
            mb = statistics.mean(float(r["bytes"]) for r in rs) / 1e6
            ss = [x for x in (sync_seconds(os.path.join(out, "runs", run_key(r))) for r in rs)
                  if x is not None]
            sync_s = f"{statistics.mean(ss):.1f}" if ss else "?"
            md.append(f"| {label} | {sync} | {len(rs)} | {t} | {acc:.2f} | {wall:.1f} | {sync_s} | {mb:.0f} MB |")
        md.append("")
        # Curves: the first seed of each cell.
        blocks = []
        for (label, sync) in sorted(cells):
            r = min(cells[(label, sync)], key=lambda r: int(r["seed"]))
            pts = curve(os.path.join(out, "runs", run_key(r), "metrics.jsonl"))
            if pts:
                blocks.append((f"{label} sync {sync}", pts))
        if not blocks:
            continue
        dat = os.path.join(out, f"curves-{link}.dat")
        with open(dat, "w") as f:
            for title, pts in blocks:
                f.write(f'"{title}"\n' + "".join(f"{t:.3f} {a:.3f}\n" for t, a in pts) + "\n\n")
        lo = max(0, int(min(a for _, pts in blocks for _, a in pts if a > 50) - 1)) \
            if any(a > 50 for _, pts in blocks for _, a in pts) else 0
        png = os.path.join(out, f"curves-{link}.png")
        script = f'''set terminal pngcairo size 1000,650 noenhanced
set output "{png}"
set title "global model test accuracy against wall time, link {link} (first seed; below {lo}% off the chart)"
set xlabel "wall time since psod started (s)"
set ylabel "test accuracy (%)"
set yrange [{lo}:*]
set key bottom right
set grid
set arrow from graph 0, first {100 * target} to graph 1, first {100 * target} nohead dt 2
plot for [i=0:{len(blocks) - 1}] "{dat}" index i using 1:2 with lines lw 2 title columnheader(1)
'''
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
    with open(os.path.join(out, "time_to_target.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()

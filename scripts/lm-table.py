#!/usr/bin/env python3
"""The language-model campaign's table and plot (scripts/lm.sh writes the runs).

  lm-table.py DIR

Reads DIR/runs.csv and DIR/curves/*.txt; writes DIR/table.md (one row per
method and sync interval: final validation loss of the swarm's model, mean
and spread over seeds, wall time, bytes, and both against DDP) and DIR/lm.png
(validation loss against wall time, one curve per run of the first seed;
final validation loss against bytes, log scale; the single worker moves none and is left out), with gnuplot.
"""
import csv
import glob
import os
import statistics
import subprocess
import sys
from collections import defaultdict

ORDER = ["single", "ddp", "avg", "diloco", "pso", "pso-shared"]


def label(method, sync):
    if method == "single":
        return "one worker"
    if method == "ddp":
        return "DDP (all-reduce every step)"
    return f"psod {method}, sync {sync}"


def _ms(xs):
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main(d):
    rows = list(csv.DictReader(open(os.path.join(d, "runs.csv"))))
    groups = defaultdict(list)
    for r in rows:
        groups[(r["method"], int(r["sync"]))].append(r)
    keys = sorted(groups, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
    ddp = groups.get(("ddp", 1))
    ddp_bytes = _ms([float(r["bytes"]) for r in ddp])[0] if ddp else None
    ddp_loss = _ms([float(r["val_loss"]) for r in ddp])[0] if ddp else None
    out = ["| method | runs | validation loss (mean ± sd) | vs DDP | wall s | bytes | bytes / DDP's |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for k in keys:
        g = groups[k]
        loss, sd = _ms([float(r["val_loss"]) for r in g])
        wall = _ms([float(r["wall_s"]) for r in g])[0]
        b = _ms([float(r["bytes"]) for r in g])[0]
        vs = f"{loss - ddp_loss:+.3f}" if ddp_loss is not None else "n/a"
        ratio = f"{b / ddp_bytes:.4f}" if ddp_bytes else "n/a"
        out.append(f"| {label(*k)} | {len(g)} | {loss:.4f} ± {sd:.4f} | {vs} | {wall:.1f} | "
                   f"{b / 1e6:.1f} MB | {ratio} |")
    table = "\n".join(out) + "\n"
    open(os.path.join(d, "table.md"), "w").write(table)
    print(table)
    _plot(d, rows, keys)


PALETTE = ["#7e2f8e", "#009e73", "#56b4e9", "#e69f00", "#f0e442", "#0072b2", "#d55e00",
           "#000000", "#cc79a7", "#999999"]


def _plot(d, rows, keys):
    # One colour per method and interval, the same in both panels.
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    curves = []
    for k in keys:
        method, sync = k
        tag = method if method in ("single", "ddp") else f"{method}-{sync}"
        files = sorted(glob.glob(os.path.join(d, "curves", f"{tag}-s*.txt")))
        if files and os.path.getsize(files[0]):
            curves.append((files[0], k))
    pts = os.path.join(d, "final.dat")
    shown = []  # keys with bytes (the single worker moves none: left out)
    with open(pts, "w") as f:
        for k in keys:
            mine = [r for r in rows if (r["method"], int(r["sync"])) == k and float(r["bytes"]) > 0]
            if not mine:
                continue
            for r in mine:
                f.write(f"{float(r['bytes']):.0f} {float(r['val_loss']):.4f}\n")
            f.write("\n\n")
            shown.append(k)
    left = ", ".join(f"'{p}' using 1:4 with linespoints lw 2 pt 7 ps 0.5 lc rgb '{colour[k]}' "
                     f"title '{label(*k)}'" for p, k in curves)
    right = ", ".join(f"'{pts}' index {i} using 1:2 with points pt 7 ps 1.4 lc rgb '{colour[k]}' "
                      f"title '{label(*k)}'" for i, k in enumerate(shown))
    script = f"""
set terminal pngcairo size 1400,560 font 'sans,10'
set output '{os.path.join(d, "lm.png")}'
set multiplot layout 1,2 title 'char-level GPT on tiny shakespeare: validation loss of the swarm model (first seed left, every seed right)'
set grid
set key top right
set xlabel 'wall time (s)'
set ylabel 'validation loss (300 windows)'
plot {left}
set logscale x
set xlabel 'bytes through psod (DDP: all-reduce, ring count; log)'
set ylabel 'final validation loss (every window)'
set key top right
plot {right}
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"lm-table.py: no plot ({e})", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])

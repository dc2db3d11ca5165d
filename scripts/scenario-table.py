#!/usr/bin/env python3
"""The campaign's table (docs/RESULTS.md): every scenario directory under
DIR (scripts/scenarios.sh, each a scripts/sweep.sh results.csv), as
strategies x conditions with mean +- sample standard deviation over seeds,
the mean time to the target accuracy, and each pso form against averaging:
a win or a loss only where the gap exceeds both standard deviations.

    scenario-table.py DIR [--plot]   markdown on stdout; --plot also draws
                                     DIR/SCENARIO.png with gnuplot
"""
import csv
import math
import os
import subprocess
import sys

ORDER = ["pso", "pso-paper", "pso-shared", "pso-weighted", "avg", "easgd", "diloco", "ssgd"]


def stats(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd, n


def verdict(a, b):
    """a against b, each (mean, sd, n): win, loss or tie."""
    gap = a[0] - b[0]
    if abs(gap) > a[1] and abs(gap) > b[1] and a[2] > 1 and b[2] > 1:
        return "win" if gap > 0 else "loss"
    return "tie"


def load(path):
    cells = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if not r["final_acc"]:
                continue
            cond = r["variant"] if r["strategy"] != "ssgd" else "default"
            cond = f"{cond} @{r['sync_every']}" if r["strategy"] != "ssgd" else "default @1"
            c = cells.setdefault((r["strategy"], cond), {"acc": [], "tt": [], "wall": []})
            c["acc"].append(100 * float(r["final_acc"]))
            c["wall"].append(float(r["wall_s"]))
            if r.get("t_target_s"):
                c["tt"].append(float(r["t_target_s"]))
    return cells


def cond_key(c):
    name, sync = c.rsplit(" @", 1)
    return (name, int(sync))


def table(name, cells, out):
    strategies = sorted({s for s, _ in cells}, key=lambda s: ORDER.index(s) if s in ORDER else 99)
    conds = sorted({c for _, c in cells}, key=cond_key)
    out.append(f"### {name}\n")
    out.append("| strategy | " + " | ".join(conds) + " |")
    out.append("|---|" + "---:|" * len(conds))
    for s in strategies:
        row = []
        for c in conds:
            v = cells.get((s, c))
            if not v:
                row.append("")
                continue
            m, sd, n = stats(v["acc"])
            tt = f"{sum(v['tt']) / len(v['tt']):.1f} s" if v["tt"] else "never"
            if v["tt"] and len(v["tt"]) < n:
                tt += f" ({len(v['tt'])}/{n})"
            row.append(f"**{m:.2f}** ± {sd:.2f} (n {n}; {tt})")
        out.append(f"| {s} | " + " | ".join(row) + " |")
    out.append("")
    out.append("Each pso form against avg (win/loss only where the gap exceeds both "
               "standard deviations):\n")
    out.append("| pso form | " + " | ".join(conds) + " |")
    out.append("|---|" + "---:|" * len(conds))
    for s in strategies:
        if not s.startswith("pso"):
            continue
        row = []
        for c in conds:
            a, b = cells.get((s, c)), cells.get(("avg", c))
            if not a or not b:
                row.append("")
                continue
            sa, sb = stats(a["acc"]), stats(b["acc"])
            row.append(f"{verdict(sa, sb)} ({sa[0] - sb[0]:+.2f})")
        out.append(f"| {s} | " + " | ".join(row) + " |")
    out.append("")
    return strategies, conds


# One colour per strategy, none used twice (Okabe-Ito, then more).
COLOURS = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
           "#CC79A7", "#999999", "#8B4513", "#7FFF00", "#00008B", "#FF1493", "#20B2AA"]


def plot(path, name, cells, strategies, conds):
    """Bars at explicit positions, each strategy one colour of its own, and
    each bar's error bar (sd over seeds) on the bar itself."""
    dat = path + ".dat"
    width = len(strategies) + 1
    with open(dat, "w") as f:
        for i, s in enumerate(strategies):
            f.write(f"# {s}\n")
            for j, c in enumerate(conds):
                v = cells.get((s, c))
                if v:
                    m, sd, _ = stats(v["acc"])
                    f.write(f"{j * width + i} {m:.4f} {sd:.4f}\n")
            f.write("\n\n")
    tics = ", ".join(f'"{c}" {j * width + (len(strategies) - 1) / 2:.1f}'
                     for j, c in enumerate(conds))
    series = []
    for i, s in enumerate(strategies):
        col = COLOURS[i % len(COLOURS)]
        series.append(f"'{dat}' index {i} using 1:2 with boxes lc rgb '{col}' title '{s}'")
        series.append(f"'{dat}' index {i} using 1:2:3 with yerrorbars lc rgb '#000000' "
                      f"pt -1 notitle")
    script = f"""set terminal pngcairo size 1100,600 noenhanced
set output '{path}.png'
set title '{name}: final test accuracy of the global model, mean and sd over seeds'
set style fill solid 0.8 border -1
set boxwidth 0.85
set ylabel 'test accuracy (%)'
set yrange [*:100]
set xrange [-1:{len(conds) * width - 1}]
set xtics ({tics}) scale 0
set key outside right
set grid ytics
set xtics rotate by -20
plot {", ".join(series)}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.unlink(dat)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    root = args[0]
    out = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "results.csv")
        if not os.path.exists(path):
            continue
        cells = load(path)
        if not cells:
            continue
        strategies, conds = table(name, cells, out)
        if "--plot" in sys.argv:
            plot(os.path.join(root, name), name, cells, strategies, conds)
    print("\n".join(out))


if __name__ == "__main__":
    main()

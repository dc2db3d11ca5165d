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


def plot(path, name, cells, strategies, conds):
    dat = path + ".dat"
    with open(dat, "w") as f:
        f.write("cond " + " ".join(f"{s} {s}-sd" for s in strategies) + "\n")
        for c in conds:
            vals = []
            for s in strategies:
                v = cells.get((s, c))
                m, sd, _ = stats(v["acc"]) if v else (float("nan"), 0, 0)
                vals += [f"{m:.4f}", f"{sd:.4f}"]
            f.write(f'"{c}" ' + " ".join(vals) + "\n")
    cols = " , ".join(f"'{dat}' using {2 + 2 * i}:{3 + 2 * i}:xtic(1) title '{s}'"
                      for i, s in enumerate(strategies))
    script = f"""set terminal pngcairo size 1100,600 noenhanced
set output '{path}.png'
set title '{name}: final test accuracy of the global model, mean and sd over seeds'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set ylabel 'test accuracy (%)'
set yrange [*:100]
set key outside right
set grid ytics
set xtics rotate by -20
plot {cols}
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

#!/usr/bin/env python3
"""Tables and plot of the robust campaign (scripts/robust.sh): for each
scenario (workers, attackers, data) the defenses x attacks, mean +- sample
standard deviation of the global model's test accuracy over seeds; each
defense's worst case over the attacks (ByzFL's convention: the attack that
hurts it most, by mean), its cost with no attack against the plain mean,
its time to 97 % with no attack, and the honest workers that exited.

    robust-table.py DIR [--plot]   markdown on stdout; --plot also draws
                                   DIR/robust.png with gnuplot (one panel
                                   per scenario: each defense's worst case
                                   and clean accuracy, error bars = sd)
"""
import csv
import math
import os
import subprocess
import sys

DEFENSES = ["mean", "median", "trimmed", "cclip", "krum", "pso", "pso-wv", "pso-cclip", "pso-cv"]
ATTACKS = ["none", "labelflip", "signflip", "noise", "alie", "ipm", "liar", "colluders"]
# One colour per defense, none used twice (Okabe-Ito, then two more).
COLOURS = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
           "#CC79A7", "#999999"]


def stats(xs):
    n = len(xs)
    if n == 0:
        return None
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd, n


def load(path):
    runs = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (r["scenario"], r["data"])
            cell = runs.setdefault(key, {}).setdefault((r["defense"], r["attack"]), [])
            cell.append(r)
    return runs


def acc(rows):
    return [float(r["final_acc"]) for r in rows if r["final_acc"]]


def fmt(s):
    return "—" if s is None else "%.2f ± %.2f" % (100 * s[0], 100 * s[1])


def scenario_table(name, cells):
    defenses = [d for d in DEFENSES if any(k[0] == d for k in cells)]
    attacks = [a for a in ATTACKS if any(k[1] == a for k in cells)]
    seeds = max((len(v) for v in cells.values()), default=0)
    fewer = [d for d in defenses
             if max(len(v) for k, v in cells.items() if k[0] == d) < seeds]
    note = "; %s: fewer (see n)" % ", ".join(fewer) if fewer else ""
    out = ["### %s (%d seed%s%s)" % (name, seeds, "" if seeds == 1 else "s", note), ""]
    out.append("| defense | " + " | ".join(attacks) + " | worst | clean cost | t97 (s) | honest exits |")
    out.append("|---|" + "---:|" * (len(attacks) + 4))
    base = stats(acc(cells.get(("mean", "none"), [])))
    summary = {}
    for d in defenses:
        row, worst, worst_a = [], None, ""
        exits = 0
        for a in attacks:
            rows = cells.get((d, a), [])
            s = stats(acc(rows))
            exits += sum(int(r["honest_failed"] or 0) for r in rows)
            missing = sum(1 for r in rows if not r["final_acc"])
            row.append(fmt(s) + (" (%d failed)" % missing if missing else ""))
            if a != "none" and s and (worst is None or s[0] < worst[0]):
                worst, worst_a = s, a
        clean = stats(acc(cells.get((d, "none"), [])))
        cost = "—" if not (clean and base) else "%+.2f" % (100 * (clean[0] - base[0]))
        t = [float(r["t97_s"]) for r in cells.get((d, "none"), []) if r["t97_s"]]
        n_none = len(cells.get((d, "none"), []))
        t97 = "—" if not t else "%.1f%s" % (sum(t) / len(t), "" if len(t) == n_none else
                                            " (%d of %d)" % (len(t), n_none))
        row += ["%s (%s)" % (fmt(worst), worst_a) if worst else "—", cost, t97, str(exits)]
        n = max(len(v) for k, v in cells.items() if k[0] == d)
        label = d if n == seeds else "%s (n %d)" % (d, n)
        out.append("| %s | %s |" % (label, " | ".join(row)))
        summary[d] = (worst, worst_a, clean)
    out.append("")
    return out, summary


def plot(dirname, summaries):
    panels = [k for k in summaries if summaries[k]]
    if not panels:
        return
    cols = 2 if len(panels) > 1 else 1
    rows = (len(panels) + cols - 1) // cols
    dat = os.path.join(dirname, "robust.dat")
    with open(dat, "w") as f:
        for idx, k in enumerate(panels):
            f.write("# %s\n" % k)
            for i, d in enumerate(DEFENSES):
                if d not in summaries[k]:
                    continue
                worst, _, clean = summaries[k][d]
                if not worst:
                    continue
                f.write("%d %s %.4f %.4f %.4f %.4f %d\n" % (
                    i, d, 100 * worst[0], 100 * worst[1], 100 * clean[0] if clean else 0,
                    100 * clean[1] if clean else 0, i + 1))
            f.write("\n\n")
    script = ["set terminal pngcairo size %d,%d font ',10'" % (620 * cols, 380 * rows),
              "set output '%s'" % os.path.join(dirname, "robust.png"),
              "set multiplot layout %d,%d" % (rows, cols),
              "set style fill solid 0.85 border -1", "set boxwidth 0.7",
              "set ylabel 'test accuracy (%)'", "set grid ytics", "set key off",
              "set xtics rotate by -30 scale 0",
              "set xrange [-0.8:%.1f]" % (len(DEFENSES) - 0.2)]
    for i, c in enumerate(COLOURS):
        script.append("set linetype %d lc rgb '%s' lw 1.5" % (i + 1, c))
    for idx, k in enumerate(panels):
        worst = [summaries[k][d][0][0] for d in summaries[k] if summaries[k][d][0]]
        lo = max(0, min(worst) * 100 - 5) if worst else 0
        script += ["set title '%s: worst case over the attacks (bars), no attack (dots)'" % k,
                   "set yrange [%.1f:100]" % lo,
                   "plot '%s' index %d using 1:3:4:7:xtic(2) with boxerrorbars lc variable, "
                   "'' index %d using 1:5:6 with yerrorbars pt 7 ps 0.8 lc rgb '#000000'"
                   % (dat, idx, idx)]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script).encode(), check=True)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d = sys.argv[1]
    runs = load(os.path.join(d, "results.csv"))
    order = sorted(runs, key=lambda k: (["w4", "w8", "cifar"].index(k[0])
                                        if k[0] in ("w4", "w8", "cifar") else 9, k[1]))
    names = {"w4": "1 attacker of 4 workers, LeNet-5 MNIST", "w8": "2 attackers of 8, LeNet-5 MNIST",
             "cifar": "1 attacker of 4, cifar_cnn on the CIFAR-10 slice"}
    lines, summaries = [], {}
    for k in order:
        name = "%s, %s" % (names.get(k[0], k[0]), k[1])
        t, s = scenario_table(name, runs[k])
        lines += t
        summaries["%s %s" % k] = s
    # Across scenarios: each defense's worst case, and what it costs clean.
    lines.append("### Worst case over the attacks, every scenario")
    lines.append("")
    keys = list(summaries)
    lines.append("| defense | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for dfn in DEFENSES:
        cells = []
        for k in keys:
            w = summaries[k].get(dfn)
            cells.append("%.2f (%s)" % (100 * w[0][0], w[1]) if w and w[0] else "—")
        if any(c != "—" for c in cells):
            lines.append("| %s | %s |" % (dfn, " | ".join(cells)))
    print("\n".join(lines))
    if "--plot" in sys.argv:
        plot(d, summaries)


if __name__ == "__main__":
    main()

import csv, glob, os, re, statistics as st, sys
def load(d):
    rows = list(csv.DictReader(open(d + "/results.csv")))
    for r in rows:
        key = f"lenet5-mnist-{r['strategy']}-{r['variant']}-s{r['sync_every']}-w{r['workers']}-seed{r['seed']}-e{r['epochs']}"
        sync = []
        for f in glob.glob(f"{d}/runs/{key}/worker*.out"):
            m = re.search(r"sync_s ([0-9.]+)", open(f).read())
            if m: sync.append(float(m.group(1)))
        r["sync_s"] = st.mean(sync) if sync else float("nan")
    return rows
rows = []
for d in sys.argv[1:]:
    rows += load(d)
groups = {}
for r in rows:
    groups.setdefault((r["strategy"], r["variant"]), []).append(r)
def ms(v):
    return "%.2f +- %.2f" % (st.mean(v), st.stdev(v)) if len(v) > 1 else "%.2f" % v[0]
print("| strategy | variant | final accuracy % | MB moved | sync s per worker | wall s | to 97 % (s) |")
print("|---|---|---:|---:|---:|---:|---:|")
for (s, v), g in sorted(groups.items()):
    acc = [100 * float(r["final_acc"]) for r in g]
    mb = [int(r["bytes"]) / 1e6 for r in g]
    t = [float(r["t_target_s"]) for r in g if r["t_target_s"]]
    print(f"| {s} | {v} | {ms(acc)} | {st.mean(mb):.2f} | {st.mean([r['sync_s'] for r in g]):.2f} | {st.mean([float(r['wall_s']) for r in g]):.1f} | {('%.2f (%d of %d)' % (st.mean(t), len(t), len(g))) if t else 'never'} |")

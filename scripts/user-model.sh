#!/usr/bin/env bash
# A user's own model through psod.torch.Swarm: python/examples/swarm_mnist.py
# (a CNN with BatchNorm, dropout and GELU), K processes launched as torchrun
# would (RANK, WORLD_SIZE, LOCAL_RANK, PSOD_ENDPOINT), under avg, pso with
# the training loss as fitness, and pso with a held-out loss (Swarm's
# fitness=), plus avg under bf16 autocast. The figure is what the user takes
# home: the swarm's model (swarm.close(load_global=True)) on the test set.
#
#   scripts/user-model.sh [--data-dir DIR] [--workers K] [--samples N] [--epochs E]
#                         [--sync N] [--seeds "1 2 3"] [--out DIR]
#
# Defaults: data/mnist, 2 workers, the first 10,000 training images, 2
# epochs, sync 16, seeds 1 2 3, docs/results/user-model. Writes OUT/runs.csv
# (method, seed, the swarm's model's and each worker's own accuracy, wall
# seconds) and OUT/table.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=${PYTHON:-/usr/bin/python3}
data=$ROOT/data/mnist workers=2 samples=10000 epochs=2 sync=16 seeds="1 2 3" out=$ROOT/docs/results/user-model
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "user-model.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) need "$@"; data=$2; shift 2 ;;
        --workers) need "$@"; workers=$2; shift 2 ;;
        --samples) need "$@"; samples=$2; shift 2 ;;
        --epochs) need "$@"; epochs=$2; shift 2 ;;
        --sync) need "$@"; sync=$2; shift 2 ;;
        --seeds) need "$@"; seeds=$2; shift 2 ;;
        --out) need "$@"; out=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "user-model.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$workers" "$samples" "$epochs" "$sync"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "user-model.sh: '$n' is not a positive whole number" >&2; exit 2; }
done
[ -d "$data" ] || { echo "user-model.sh: no MNIST in $data (scripts/get-data.sh mnist)" >&2; exit 1; }
mkdir -p "$out/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -f "$out/runs.csv" ] || echo "method,seed,swarm_acc,own_acc,wall_s" > "$out/runs.csv"

run() { # method seed
    local method=$1 seed=$2 strategy=avg extra=() tag=$1-s$2
    case "$method" in
        avg) ;;
        avg-bf16) extra=(--bf16) ;;
        pso) strategy=pso ;;
        pso-heldout) strategy=pso; extra=(--fitness held-out --held-out 1000) ;;
        *) echo "user-model.sh: unknown method $method" >&2; exit 2 ;;
    esac
    rm -f "$out/logs/$tag.ep"
    local t0; t0=$(date +%s.%N)
    "$BUILD/psod" --bind "tcp://127.0.0.1:*" --endpoint-file "$out/logs/$tag.ep" --workers "$workers" \
        --strategy "$strategy" --seed "$seed" --exit-when-done --progress-interval 0 \
        2> "$out/logs/$tag.psod.err" &
    local psod=$!; pids=("$psod")
    for _ in $(seq 100); do [ -s "$out/logs/$tag.ep" ] && break; sleep 0.1; done
    for r in $(seq 0 $((workers - 1))); do
        PSOD_ENDPOINT=$(cat "$out/logs/$tag.ep") RANK=$r LOCAL_RANK=$r WORLD_SIZE=$workers \
            OMP_NUM_THREADS=1 PSOD_NAME="w$r" \
            "$PY" "$ROOT/python/examples/swarm_mnist.py" --data-dir "$data" --train-samples "$samples" \
            --epochs "$epochs" --sync-every "$sync" --seed "$seed" "${extra[@]}" \
            > "$out/logs/$tag.w$r.out" 2> "$out/logs/$tag.w$r.err" &
        pids+=($!)
    done
    local failed=0
    for p in "${pids[@]:1}"; do wait "$p" || failed=1; done
    wait "$psod" || failed=1
    pids=()
    [ "$failed" = 0 ] || { echo "user-model.sh: $tag failed (logs in $out/logs)" >&2; return 1; }
    local wall swarm own
    wall=$(echo "$(date +%s.%N) - $t0" | bc)
    swarm=$(sed -n "s/.*the swarm's model .*) \([0-9.]*\)% test accuracy/\1/p" "$out/logs/$tag.w0.out")
    own=$(cat "$out"/logs/"$tag".w*.out | sed -n 's/.*own weights \([0-9.]*\)%.*/\1/p' | paste -sd/)
    echo "$method,$seed,$swarm,$own,$(printf %.1f "$wall")" >> "$out/runs.csv"
    echo "  $method seed $seed: the swarm's model $swarm %, own weights $own %, $(printf %.1f "$wall") s"
}

for seed in $seeds; do
    for m in avg pso pso-heldout avg-bf16; do run "$m" "$seed"; done
done
"$PY" - "$out" <<'PY'
import csv, statistics, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/runs.csv")))
lines = ["| method | runs | the swarm's model, test accuracy % (mean ± sd) | the workers' own weights % | wall s |",
         "|---|---:|---:|---:|---:|"]
for m in ("avg", "pso", "pso-heldout", "avg-bf16"):
    g = [r for r in rows if r["method"] == m]
    if not g:
        continue
    acc = [float(r["swarm_acc"]) for r in g]
    own = [float(x) for r in g for x in r["own_acc"].split("/")]
    sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
    lines.append(f"| {m} | {len(g)} | {statistics.fmean(acc):.2f} ± {sd:.2f} | "
                 f"{statistics.fmean(own):.2f} | {statistics.fmean(float(r['wall_s']) for r in g):.1f} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

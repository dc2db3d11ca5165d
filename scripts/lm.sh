#!/usr/bin/env bash
# The language-model campaign: psod's char-level GPT (psoworker-torch --model
# gpt) on a text, K workers under avg, diloco and pso at two sync intervals,
# against one worker alone and torch.distributed data-parallel (DDP, the
# gradient all-reduced every step), at the same samples.
#
#   scripts/lm.sh [--text DIR|FILE] [--workers K] [--epochs E] [--seeds "1 2"]
#                 [--syncs "16 64"] [--out DIR] [--only "single ddp avg ..."]
#   (a method STRATEGY+WIRE, e.g. avg+topk:0.1:int2, runs the strategy with
#   the workers on that --wire)
#
# Defaults: data/shakespeare (scripts/get-data.sh shakespeare), K 4, E 4,
# seed 1, syncs 16 and 64, docs/results/lm. Every run: batch 32, AdamW lr 0.003
# (betas 0.9, 0.99), one thread a process; the K workers each train E epochs
# on their K-th of the training windows (the single worker E epochs on all
# of them, so every method sees the same samples). Worker 0 (rank 0 for DDP)
# appends the swarm's validation loss to a curve every 128 steps; the final
# figure is psod's model file (the single worker's own) on the whole
# validation split. Bytes: what psod received and sent (its --metrics
# counters: joins, pushes, positions, model fetches); for DDP what its
# all-reduces move as the ring algorithm counts them (2 (K-1)/K x the
# gradient per rank per step), which loopback's own counter matched within
# 1 % on an idle machine (bench/torch_ddp_gpt.py prints both).
# Writes OUT/runs.csv and OUT/curves/, then scripts/lm-table.py OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=${PYTHON:-/usr/bin/python3}
text=$ROOT/data/shakespeare workers=4 epochs=4 seeds=1 syncs="16 64" out=$ROOT/docs/results/lm
only="single ddp avg diloco pso pso-shared"
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "lm.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --text) need "$@"; text=$2; shift 2 ;;
        --workers) need "$@"; workers=$2; shift 2 ;;
        --epochs) need "$@"; epochs=$2; shift 2 ;;
        --seeds) need "$@"; seeds=$2; shift 2 ;;
        --syncs) need "$@"; syncs=$2; shift 2 ;;
        --out) need "$@"; out=$2; shift 2 ;;
        --only) need "$@"; only=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "lm.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$workers" "$epochs"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "lm.sh: '$n' is not a positive whole number" >&2; exit 2; }
done
[ -e "$text" ] || { echo "lm.sh: no text at $text (scripts/get-data.sh shakespeare)" >&2; exit 1; }
[ -x "$BUILD/psod" ] || { echo "lm.sh: build first (make)" >&2; exit 1; }
mkdir -p "$out/curves" "$out/logs"
export PYTHONPATH=$ROOT/python OMP_NUM_THREADS=1
common=(--model gpt --dataset text --data-dir "$text" --batch 32 --optimizer adamw --lr 0.003
        --momentum 0.9 --eval-every 0 --eval-samples 300 --threads 1)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

evalfile() { # model file -> validation loss and accuracy on every window
    "$PY" "$ROOT/python/psoworker-torch" --eval "$1" --dataset text --data-dir "$text" \
        | sed -n 's/.*test loss \([0-9.]*\) test accuracy \([0-9.]*\).*/\1 \2/p'
}
[ -f "$out/runs.csv" ] ||
    echo "method,sync,seed,workers,epochs,wall_s,val_loss,val_accuracy,bytes" > "$out/runs.csv"
record() { echo "$1,$2,$3,$workers,$epochs,$4,$5,$6,$7" >> "$out/runs.csv"; echo "  $1 sync $2 seed $3: ${4}s val_loss $5 bytes $7"; }

run_single() { # seed
    local tag=single-s$1 t0 res
    rm -f "$out/curves/$tag.txt"
    t0=$(date +%s.%N)
    "$PY" "$ROOT/python/psoworker-torch" "${common[@]}" --standalone --epochs "$epochs" \
        --seed "$1" --eval-every 4 --sync-every 32 --curve "$out/curves/$tag.txt" \
        --model-out "$out/logs/$tag.psom" > "$out/logs/$tag.out" 2> "$out/logs/$tag.err"
    local wall; wall=$(echo "$(date +%s.%N) - $t0" | bc)
    res=$(evalfile "$out/logs/$tag.psom")
    record single 0 "$1" "$(printf %.1f "$wall")" "${res% *}" "${res#* }" 0
}

run_ddp() { # seed
    local tag=ddp-s$1 line
    line=$("$PY" "$ROOT/bench/torch_ddp_gpt.py" "$text" "$out/curves/$tag.txt" "$workers" "$epochs" \
        32 0.003 128 300 "$1" 2> "$out/logs/$tag.err" | tee "$out/logs/$tag.out")
    local wall loss acc
    wall=$(sed -n 's/.*wall_s \([0-9.]*\).*/\1/p' <<< "$line")
    loss=$(sed -n 's/.*val_loss \([0-9.]*\).*/\1/p' <<< "$line")
    acc=$(sed -n 's/.*val_accuracy \([0-9.]*\).*/\1/p' <<< "$line")
    record ddp 1 "$1" "$wall" "$loss" "$acc" "$(sed -n 's/.*ring_bytes \([0-9]*\).*/\1/p' <<< "$line")"
}

run_psod() { # method sync seed
    local method=$1 sync=$2 seed=$3 tag=$1-$2-s$3 strategy=$1 extra=()
    case "$method" in
        pso-shared) strategy=pso; extra=(--fitness shared --holdout 256) ;;
        *+*) strategy=${method%%+*}; extra=(--wire "${method#*+}") ;; # avg+topk:0.1:int2
    esac
    rm -f "$out/curves/$tag.txt" "$out/logs/$tag.psom" "$out/logs/$tag.ep" "$out/logs/$tag.metrics"
    local t0; t0=$(date +%s.%N)
    "$BUILD/psod" --bind "tcp://127.0.0.1:*" --endpoint-file "$out/logs/$tag.ep" \
        --workers "$workers" --strategy "$strategy" --seed "$seed" --exit-when-done \
        --model-out "$out/logs/$tag.psom" --metrics "$out/logs/$tag.metrics" \
        --progress-interval 0 2> "$out/logs/$tag.psod.err" &
    local psod=$!; pids=("$psod")
    for _ in $(seq 100); do [ -s "$out/logs/$tag.ep" ] && break; sleep 0.1; done
    local ep; ep=$(cat "$out/logs/$tag.ep")
    for i in $(seq 0 $((workers - 1))); do
        local curve=(); [ "$i" = 0 ] && curve=(--curve "$out/curves/$tag.txt" --eval-every $((128 / sync > 0 ? 128 / sync : 1)))
        "$PY" "$ROOT/python/psoworker-torch" "${common[@]}" "${extra[@]}" --connect "$ep" \
            --name "w$i" --shard-index "$i" --shard-count "$workers" --epochs "$epochs" \
            --sync-every "$sync" --seed "$seed" "${curve[@]}" \
            > "$out/logs/$tag.w$i.out" 2> "$out/logs/$tag.w$i.err" &
        pids+=($!)
    done
    local failed=0
    for p in "${pids[@]:1}"; do wait "$p" || failed=1; done
    wait "$psod" || failed=1
    pids=()
    local wall; wall=$(echo "$(date +%s.%N) - $t0" | bc)
    [ "$failed" = 0 ] || { echo "lm.sh: $tag failed (logs in $out/logs)" >&2; return 1; }
    local res; res=$(evalfile "$out/logs/$tag.psom")
    local bytes; bytes=$(tail -1 "$out/logs/$tag.metrics" |
        sed -n 's/.*"bytes_in":\([0-9]*\),"bytes_out":\([0-9]*\).*/\1 \2/p')
    record "$method" "$sync" "$seed" "$(printf %.1f "$wall")" "${res% *}" "${res#* }" \
        $(( ${bytes% *} + ${bytes#* } ))
}

for seed in $seeds; do
    for m in $only; do
        case "$m" in
            single) run_single "$seed" ;;
            ddp) run_ddp "$seed" ;;
            avg|diloco|pso|pso-shared|avg+*|diloco+*|pso+*)
                for s in $syncs; do run_psod "$m" "$s" "$seed"; done ;;
            *) echo "lm.sh: unknown method '$m'" >&2; exit 2 ;;
        esac
    done
done
"$PY" "$ROOT/scripts/lm-table.py" "$out"

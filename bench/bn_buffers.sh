#!/usr/bin/env bash
# BatchNorm statistics in a swarm: do they travel with the weights
# (psoworker-torch --buffers sync, the default) or stay with each worker
# (--buffers local)? resnet20 on CIFAR-10, 2 PyTorch workers, one psod per
# run, each strategy given; prints a markdown table of each worker's final
# test accuracy (its own weights and statistics) and the accuracy of psod's
# model file (the global model, evaluated by psoworker-torch --eval).
#
#   bench/bn_buffers.sh CIFAR_DIR [EPOCHS] [STRATEGIES]   [4 "avg pso"]
set -euo pipefail
cd "$(dirname "$0")/.."
data=$1 epochs=${2:-4} strategies=${3:-avg pso}
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| strategy | buffers | worker 0 accuracy | worker 1 accuracy | psod model file accuracy | wall s |"
echo "|---|---|---:|---:|---:|---:|"
for s in $strategies; do
    for b in sync local; do
        rm -f "$tmp/ep" "$tmp/m.psom"
        t0=$(date +%s.%N)
        "$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$tmp/ep" --workers 2 --strategy "$s" \
            --exit-when-done --progress-interval 0 --model-out "$tmp/m.psom" 2> "$tmp/psod.log" &
        p=$!
        for _ in $(seq 200); do [ -s "$tmp/ep" ] && break; sleep 0.05; done
        for i in 0 1; do
            /usr/bin/python3 python/psoworker-torch --model resnet20 --dataset cifar10 --data-dir "$data" \
                --epochs "$epochs" --batch 32 --lr 0.05 --schedule cosine --sync-every 8 --buffers "$b" \
                --shard-index "$i" --shard-count 2 --name "w$i" --connect "$(cat "$tmp/ep")" \
                --threads 1 --eval-samples 0 > "$tmp/w$i.out" 2> "$tmp/w$i.err" &
        done
        wait
        t1=$(date +%s.%N)
        acc() { sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$1"; }
        g=$(/usr/bin/python3 python/psoworker-torch --eval "$tmp/m.psom" --dataset cifar10 \
            --data-dir "$data" --buffers "$b" 2>/dev/null | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
        echo "| $s | $b | $(acc "$tmp/w0.out") | $(acc "$tmp/w1.out") | ${g:-n/a} | $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}') |"
    done
done

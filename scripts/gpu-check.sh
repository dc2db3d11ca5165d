#!/usr/bin/env bash
# The GPU check of the PyTorch worker's CUDA path, in one short run.
#
#   scripts/gpu-check.sh --prepare [CIFAR_DIR] [TEXT]   here: build, and collect
#                                                into gpu-bundle/ psod, bench_round,
#                                                libpsoclient.so and every
#                                                shared library they need (from
#                                                ldd), the CIFAR-10 slice and a
#                                                text (tiny shakespeare)
#   scripts/gpu-check.sh [EPOCHS]                on the GPU machine: run it  [3]
#
# The GPU machine needs PyTorch with CUDA (python3, or $PY) and nothing else:
# no libzmq, no protobuf-c, no compiler. The run starts psod and two
# `psoworker-torch --device cuda` workers training resnet20 on the CIFAR-10
# slice (4,000 training images, 2,000 per worker; 1,000 test images), and
# prints each worker's samples/s, the share of its step time spent in sync
# and the final accuracy; then two workers training the char-level GPT
# under bf16 autocast (psoworker-torch --model gpt --autocast bf16), with
# their samples/s, share of step time in sync and validation loss; then
# Swarm.step's sync overhead at 1M and 25M parameters on CUDA next to the C
# worker's. Everything it prints is also in
# gpu-bundle/out/. It finishes in a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bundle=$root/gpu-bundle

# (libc, libstdc++ and their kin are the GPU machine's own: PyTorch needs
# those it was built against.)
if [ "${1:-}" = --prepare ]; then
    cifar=${2:-../shared/data/cifar10-slice}
    text=${3:-../shared/data/tinyshakespeare/input.txt}
    make -j2 all build/bench/bench_round >/dev/null
    rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/bench" "$bundle/cifar10" \
        "$bundle/text"
    cp build/psod "$bundle/bin/"
    cp build/bench/bench_round "$bundle/bench/"
    cp -P build/libpsoclient.so* "$bundle/lib/"
    # Every library they load that is not the C library itself.
    for f in build/psod build/bench/bench_round build/libpsoclient.so.1; do
        ldd "$f" | awk '/=> \// { print $3 }'
    done | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
        while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
    cp "$cifar"/*.bin "$bundle/cifar10/"
    cp "$text" "$bundle/text/input.txt"
    echo "gpu-check: bundle ready in $bundle ($(du -sh "$bundle" | cut -f1)); carry gpu-bundle and run scripts/gpu-check.sh there"
    exit 0
fi

epochs=${1:-3}
PY=${PY:-python3}
# GPU_CHECK_DEVICE=cpu runs the same check on the CPU (a dry run of the script).
device=${GPU_CHECK_DEVICE:-cuda}
[ -d "$bundle/bin" ] || { echo "gpu-check: no $bundle: run scripts/gpu-check.sh --prepare first" >&2; exit 2; }
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PSOD_LIBRARY="$bundle/lib/libpsoclient.so.1" PYTHONPATH="$root/python"
out=$bundle/out
rm -rf "$out" && mkdir -p "$out"
exec > >(tee "$out/gpu-check.txt") 2>&1
echo "gpu-check: $(date -u +%FT%TZ) on $(uname -n)"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")'
[ "$device" = cpu ] || "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    { echo "gpu-check: CUDA is not available to $PY"; exit 1; }
"$bundle/bin/psod" --version

"$bundle/bin/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$out/ep" --workers 2 --strategy pso \
    --exit-when-done --progress-interval 0 --model-out "$out/model.psom" 2> "$out/psod.log" &
psod=$!
for _ in $(seq 200); do [ -s "$out/ep" ] && break; sleep 0.05; done
ep=$(cat "$out/ep")
pids=()
for i in 0 1; do
    "$PY" python/psoworker-torch --device "$device" --model resnet20 --dataset cifar10 \
        --data-dir "$bundle/cifar10" --epochs "$epochs" --batch 64 --lr 0.05 --schedule cosine \
        --sync-every 8 --shard-index "$i" --shard-count 2 --name "gpu$i" --connect "$ep" \
        --eval-samples 0 > "$out/worker$i.out" 2> "$out/worker$i.err" &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
wait "$psod" || rc=1
summary() { # worker output files
    for f in "$@"; do
        line=$(cat "$f")
        echo "$line"
        awk -v l="$line" 'BEGIN {
            n = split(l, w, " ")
            for (k = 1; k < n; k++) v[w[k]] = w[k + 1]
            printf "worker %s: %s samples/s, sync %.1f%% of the step time, final test loss %s, accuracy %s\n",
                   substr(w[2], 1, length(w[2]) - 1), v["samples/s"],
                   100 * v["sync_s"] / (v["train_s"] + v["sync_s"]), v["loss"], v["accuracy"] }'
    done
}
summary "$out/worker0.out" "$out/worker1.out"
[ "$rc" = 0 ] || { echo "gpu-check: a worker or psod failed; logs in $out"; tail -5 "$out"/*.err; exit 1; }

echo
echo "The char-level GPT under bf16 autocast, two workers, avg, sync 16:"
rm -f "$out/ep"
"$bundle/bin/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$out/ep" --workers 2 --strategy avg \
    --exit-when-done --progress-interval 0 --model-out "$out/gpt.psom" 2> "$out/psod-gpt.log" &
psod=$!
for _ in $(seq 200); do [ -s "$out/ep" ] && break; sleep 0.05; done
ep=$(cat "$out/ep")
pids=()
for i in 0 1; do
    "$PY" python/psoworker-torch --device "$device" --autocast bf16 --model gpt --dataset text \
        --data-dir "$bundle/text" --gpt-dim 256 --gpt-layers 4 --gpt-heads 8 --block 128 \
        --optimizer adamw --lr 0.001 --momentum 0.9 --epochs 1 --batch 64 --sync-every 16 \
        --shard-index "$i" --shard-count 2 --name "gpt$i" --connect "$ep" --eval-samples 0 \
        > "$out/gpt$i.out" 2> "$out/gpt$i.err" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
wait "$psod" || rc=1
summary "$out/gpt0.out" "$out/gpt1.out"
[ "$rc" = 0 ] || { echo "gpu-check: the GPT run failed; logs in $out"; tail -5 "$out"/gpt*.err; exit 1; }
echo
echo "Swarm.step sync on $device next to the C worker's (bench/bench_swarm_sync.py):"
mkdir -p "$bundle/build/bench"
ln -sf "$bundle/bin/psod" "$bundle/build/psod"
ln -sf "$bundle/bench/bench_round" "$bundle/build/bench/bench_round"
"$PY" bench/bench_swarm_sync.py "$bundle/build" 30 "$device"
echo "gpu-check: done; output in $out/gpu-check.txt"

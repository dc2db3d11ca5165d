#!/usr/bin/env bash
# make bench: run every benchmark and print markdown tables for
# docs/BENCHMARKS.md, headed by the machine they ran on.
set -euo pipefail
BUILD=${BUILD:-build}
# BENCH_ONLY=train: only the training-throughput table (the engine's issue),
# for a quick rerun on a quiet machine.
only=${BENCH_ONLY:-}
echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n)"
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;" \
     "$(uname -sr); $(cc --version | head -1); libzmq $(pkg-config --modversion libzmq)."
echo
if [ -z "$only" ]; then
echo "### Update and checks, in GB/s: \`$BUILD/bench/bench_update\`"
echo
"$BUILD/bench/bench_update"
echo
echo "### Synchronous round through psod vs raw ZeroMQ: \`$BUILD/bench/bench_round $BUILD/psod 30\`"
echo
"$BUILD/bench/bench_round" "$BUILD/psod" 30
echo
echo "### The 1Mi and 4Mi x 4 rounds, median of 7: \`BENCH_REPS=7 $BUILD/bench/bench_round $BUILD/psod 30 N 4\`"
echo
BENCH_REPS=7 "$BUILD/bench/bench_round" "$BUILD/psod" 30 1048576 4
BENCH_REPS=7 "$BUILD/bench/bench_round" "$BUILD/psod" 30 4194304 4 | tail -n 1
echo
echo "### bf16 payloads through psod against raw ZeroMQ moving float32: \`BENCH_WIRE=bf16 BENCH_REPS=7 $BUILD/bench/bench_round $BUILD/psod 30 N 4\`"
echo
BENCH_WIRE=bf16 BENCH_REPS=7 "$BUILD/bench/bench_round" "$BUILD/psod" 30 1048576 4
BENCH_WIRE=bf16 BENCH_REPS=7 "$BUILD/bench/bench_round" "$BUILD/psod" 30 4194304 4 | tail -n 1
echo
echo "### What CURVE costs, psod and raw ZeroMQ each with and without it: \`BENCH_CURVE=1 $BUILD/bench/bench_round $BUILD/psod 30\`"
echo
BENCH_CURVE=1 "$BUILD/bench/bench_round" "$BUILD/psod" 30
echo
echo "### What --verify-best costs a round (a candidate every round), psod with and without it: \`BENCH_VERIFY=1 $BUILD/bench/bench_round $BUILD/psod 30\`"
echo
BENCH_VERIFY=1 "$BUILD/bench/bench_round" "$BUILD/psod" 30
echo
echo "### What the robust rules cost a round (avg, 4 workers), beside the mean: \`BENCH_AGGREGATE=1 BENCH_REPS=5 $BUILD/bench/bench_round $BUILD/psod 30\`"
echo
BENCH_AGGREGATE=1 BENCH_REPS=5 "$BUILD/bench/bench_round" "$BUILD/psod" 30
fi

echo
echo "### Training throughput, batch 64, next to PyTorch on the identical architecture"
echo
PY=/usr/bin/python3
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "(installing Debian's python3-torch for the reference)" >&2
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy >/dev/null 2>&1 || true
fi
SECS=${BENCH_SECONDS:-5}
echo "\`$BUILD/bench/bench_train $SECS\` and \`bench/torch_ref.py speed MODEL THREADS $SECS\` (PyTorch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo missing), with OPENBLAS_NUM_THREADS and OMP_NUM_THREADS set to THREADS so that neither library uses more cores than it is given):"
echo
REPS=${BENCH_REPS:-3}
echo "psod runs \`--threads T\` engine threads with OpenBLAS single-threaded inside them; GFLOP/s counts the GEMM-shaped work of a training step (model_flops), and the share is that against the sgemm GFLOP/s (n = 512, OpenBLAS on T threads) measured in the same process. This VM's speed drifts by a third from minute to minute, so each cell runs psod and PyTorch in turn $REPS times and keeps the best of each (\`$BUILD/bench/bench_train $SECS T MODEL\`)."
echo
echo "| model | threads | psod samples/s | PyTorch samples/s | ratio | psod GFLOP/s | sgemm GFLOP/s (same run) | share of sgemm |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a + 0 > b + 0) ? a : b }'; }
for t in 1 2; do
    for m in mlp lenet5 cifar_cnn; do
        p="" g="" gf="" r=""
        for _ in $(seq "$REPS"); do
            ours=$("$BUILD/bench/bench_train" "$SECS" "$t" "$m")
            line=$(grep "^psod model=$m threads=$t " <<<"$ours")
            pv=$(sed -n 's/.*samples\/s \([0-9.]*\).*/\1/p' <<<"$line")
            [ "$(best "$pv" "$p")" != "$pv" ] || { p=$pv; g=$(sed -n 's/.*GFLOP\/s \([0-9.]*\).*/\1/p' <<<"$line"); }
            gf=$(best "$(sed -n "s/^sgemm threads=$t n=512 GFLOP\/s //p" <<<"$ours")" "$gf")
            rv=$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$PY" bench/torch_ref.py speed "$m" "$t" "$SECS" 2>/dev/null |
                sed -n 's/.*samples\/s //p')
            [ -z "$rv" ] || r=$(best "$rv" "$r")
        done
        if [ -n "$r" ]; then ratio=$(awk -v a="$p" -v b="$r" 'BEGIN{printf "%.2f", a/b}'); else r=n/a; ratio=n/a; fi
        share=$(awk -v a="$g" -v b="$gf" 'BEGIN{printf "%.0f %%", 100*a/b}')
        echo "| $m | $t | $p | $r | $ratio | $g | $gf | $share |"
    done
done
[ "$only" != train ] || exit 0

echo
echo "### The main job (LeNet-5, MNIST, 4 workers, sync every 16, 2 epochs) beside torch.distributed local SGD"
echo
# One run each, in turn, on this machine: psod's avg is the same algorithm as
# local SGD with all_reduce of the parameters.
DATA=${BENCH_MNIST:-data/mnist}
if [ ! -s "$DATA/train-images-idx3-ubyte" ]; then
    scripts/get-data.sh mnist "$DATA" >/dev/null 2>&1 || true
fi
if [ -s "$DATA/train-images-idx3-ubyte" ]; then
    echo "\`scripts/run-local.sh --no-fetch --data-dir $DATA --strategy S\` --worker W (wall_s from its summary.txt; train/sync/eval from worker 1's summary line, a PyTorch worker in the mixed run) and \`bench/torch_localsgd.py $DATA 4 16 2\`:"
    echo
    echo "| job | wall s | train s | sync s | eval s | test accuracy |"
    echo "|---|---:|---:|---:|---:|---:|"
    for job in "avg c" "pso c" "avg torch" "avg mixed"; do
        read -r s kind <<<"$job"
        rd=$(mktemp -d)
        label="psod $s, $kind workers"
        if scripts/run-local.sh --no-fetch --data-dir "$DATA" --strategy "$s" --worker "$kind" \
            --run-dir "$rd" >/dev/null 2>&1; then
            w=$(sed -n 's/^wall_s=//p' "$rd/summary.txt")
            a=$(sed -n 's/^final_acc=//p' "$rd/summary.txt")
            line=$(grep -h '^psoworker.* worker[01]:' "$rd/worker0.out" "$rd/worker1.out" | tail -1)
            f() { sed -E "s/.* $1 ([0-9.]+).*/\\1/" <<<"$line"; }
            echo "| $label | $w | $(f train_s) | $(f sync_s) | $(f eval_s) | $a |"
        else
            echo "| $label | failed: see $rd | | | | |"
        fi
    done
    t=$("$PY" bench/torch_localsgd.py "$DATA" 4 16 2 2>/dev/null | tail -1)
    if [ -n "$t" ]; then
        g() { sed -E "s/.* $1 ([0-9.]+).*/\1/" <<<"$t"; }
        echo "| torch.distributed local SGD (gloo) | $(g wall_s) | $(g train_s) | $(g sync_s) | $(g eval_s) | $(g test_accuracy) |"
    else
        echo "| torch.distributed local SGD (gloo) | n/a (no PyTorch) | | | | |"
    fi
else
    echo "(no MNIST in $DATA: skipped)"
fi

echo
echo "### What a sync costs a PyTorch worker: \`bench/bench_swarm_sync.py $BUILD 30\`"
echo
echo "psod.torch.Swarm's sync (push, the PSO update, pull into the parameters) next to the C worker's (\`bench_round PSOD ROUNDS N 1\`), one worker, in this run:"
echo
"$PY" bench/bench_swarm_sync.py "$BUILD" 30 2>/dev/null || echo "(no PyTorch: skipped)"

echo
echo "### Sharded daemons: 8 workers x 4Mi parameters, sync every step"
echo
echo "\`bench/shard-bench.sh loopback 4194304 8 12 \"1 2\"\` (every process on this machine: what coordinating costs):"
echo
BUILD=$BUILD bench/shard-bench.sh loopback 4194304 8 12 "1 2" | tail -n +3
echo
if [ "$(id -u)" -eq 0 ] && command -v tc >/dev/null; then
    echo "\`bench/shard-bench.sh netlab 1gbit 4194304 8 8 \"1 2 4\"\` (each daemon and each worker in a namespace of its own on a 1 Gbit/s link: the head's link is the bottleneck at S = 1):"
    echo
    BUILD=$BUILD bench/shard-bench.sh netlab 1gbit 4194304 8 8 "1 2 4" | tail -n +3 | grep '^|'
else
    echo "(the network lab needs root: skipped)"
fi

echo
if [ "${SKIP_LADDER:-0}" = 1 ]; then
    echo "(the scale ladder skipped: SKIP_LADDER=1)"
else
    echo "### The scale ladder: \`bench/scale-ladder.sh\` (N x K x strategy, psod's memory; sharded S at 16Mi)"
    echo
    ladder=$(mktemp -d /tmp/psod-ladder-XXXXXX)
    BUILD=$BUILD bench/scale-ladder.sh "$ladder" 2>/dev/null
    echo
    echo "(the table, ladder.tsv and ladder.png are in $ladder)"
fi

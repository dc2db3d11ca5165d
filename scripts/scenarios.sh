#!/usr/bin/env bash
# Where particle swarms beat averaging (docs/RESULTS.md): every scenario of
# the campaign, each one scripts/sweep.sh into docs/results/scenarios/NAME/, then
# the table across them (scripts/scenario-table.py).
#
#   scripts/scenarios.sh [--seeds "1 2 3"] [--only "iid noniid ..."] [--out DIR]
#                        [--cifar-dir DIR]  (default ../shared/data/cifar10-slice)
#
# Scenarios (LeNet-5 on MNIST, 4 workers, 2 epochs, lr 0.05 unless named):
#   iid      IID shards, sync 1 4 16 64 256 (and ssgd)
#   noniid   label skew at sync 16: Dirichlet alpha 0.5 and 0.1, 2 classes
#            per worker (--shard-mode)
#   bad      one bad worker of 4 at sync 16: labels shuffled, lr 10x (0.5),
#            Gaussian noise (sd 0.05) on its weights before every push
#   async    psod --mode async, one worker 5x slower (--delay-ms 18 per step)
#   liar     one worker of 4 with shuffled labels that also claims loss
#            0.01 at every push (--lie-loss), sync 16; with pso-verified
#            (--verify-best) and the weighted attractor verified too
#   hyper    IID shards, sync 16: the workers' learning rate tuned (0.05),
#            too low (0.005) or too high (0.5), and psod --hyper, where the
#            particles carry lr and momentum and a second swarm moves them
#   bad8     the mlp, 8 workers, 2 of them with shuffled labels, sync 16
#   w16      the mlp, 16 workers, 4 epochs, sync 16: all healthy, and 4 of
#            them with shuffled labels
#   resnet20 resnet20 (PyTorch workers, BatchNorm statistics in the swarm's
#            vector) on the CIFAR-10 slice, 3 epochs, sync 4
#   cifar    a larger model: cifar_cnn (C workers) on the CIFAR-10 slice
#            (4,000 + 1,000 images, --cifar-dir), 10 epochs, sync 4
#
# Strategies: pso (the default), pso-paper (the paper's form), pso-shared
# (fitness on one held-out set that every worker shares), pso-weighted (the
# fitness-weighted attractor, softmax(-loss / 0.05), on the shared fitness),
# pso-mix (the PSO-weighted mean, --attractor mix, on the shared fitness),
# pso-verified (--verify-best: a second worker checks a new global best;
# liar only), avg, easgd, diloco. A resumed campaign skips the runs it has.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="1 2 3" only="iid noniid bad liar hyper async bad8 w16 cifar resnet20" out=docs/results/scenarios
cifar_dir=../shared/data/cifar10-slice
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cifar-dir) cifar_dir=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "scenarios.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
# The pso forms, their shared fitness set HOLDOUT samples (of 60,000 on
# MNIST; 200 of the CIFAR slice's 4,000, so that those runs train on nearly
# as much as the others).
pso_forms() {
    local shared="--fitness shared --holdout $1"
    pso=(--pso-variant 'paper:--attractor best --w 0.5 --c1 0.5 --c2 0.5'
         --pso-variant "shared:|$shared"
         --pso-variant "weighted:--attractor weighted --temperature 0.05|$shared"
         --pso-variant "mix:--attractor mix|$shared")
}
pso_forms 1000
shared='--fitness shared --holdout 1000'
common=(--seeds "$seeds" --epochs 2)
for s in $only; do
    case "$s" in
        iid) scripts/sweep.sh "${common[@]}" --strategies "pso avg easgd diloco ssgd" "${pso[@]}" \
                 --sync "1 4 16 64 256" --out "$out/iid" --variant 'default:--ssgd-lr 0.05' ;;
        noniid) scripts/sweep.sh "${common[@]}" --strategies "pso avg easgd diloco" "${pso[@]}" \
                 --sync 16 --out "$out/noniid" \
                 --variant 'dir0.5:|--shard-mode dirichlet --shard-alpha 0.5' \
                 --variant 'dir0.1:|--shard-mode dirichlet --shard-alpha 0.1' \
                 --variant 'classes2:|--shard-mode classes --shard-classes 2' ;;
        bad) scripts/sweep.sh "${common[@]}" --strategies "pso avg easgd diloco" "${pso[@]}" \
                 --sync 16 --out "$out/bad" \
                 --variant 'labels:||1:--shuffle-labels' \
                 --variant 'lr10x:||1:--lr 0.5' \
                 --variant 'noise:||1:--weight-noise 0.05' ;;
        liar) scripts/sweep.sh "${common[@]}" --strategies "pso avg easgd diloco" "${pso[@]}" \
                 --pso-variant "verified:--verify-best yes|$shared" \
                 --pso-variant "weighted-verified:--attractor weighted --temperature 0.05 --verify-best yes|$shared" \
                 --sync 16 --out "$out/liar" \
                 --variant 'liar:||1:--shuffle-labels --lie-loss 0.01' ;;
        hyper) scripts/sweep.sh "${common[@]}" --strategies "pso avg" --sync 16 --out "$out/hyper" \
                 --variant 'lr0.05:' --variant 'lr0.005:|--lr 0.005' --variant 'lr0.5:|--lr 0.5' \
                 --variant "hyper:--hyper yes|$shared" ;;
        async) scripts/sweep.sh "${common[@]}" --strategies "pso avg" \
                 --pso-variant 'paper:--attractor best --w 0.5 --c1 0.5 --c2 0.5' \
                 --pso-variant "shared:|$shared" \
                 --sync 16 --out "$out/async" --variant 'slow5x:--mode async||1:--delay-ms 18' ;;
        bad8) scripts/sweep.sh "${common[@]}" --strategies "pso avg easgd diloco" "${pso[@]}" \
                 --model mlp --workers 8 --sync 16 --out "$out/bad8" \
                 --variant 'labels2of8:||2:--shuffle-labels' ;;
        w16) scripts/sweep.sh --seeds "$seeds" --epochs 4 --strategies "pso avg easgd diloco" "${pso[@]}" \
                 --model mlp --workers 16 --sync 16 --out "$out/w16" \
                 --variant 'healthy:' --variant 'labels4of16:||4:--shuffle-labels' ;;
        resnet20) scripts/sweep.sh --seeds "$seeds" --epochs 3 --strategies "pso avg easgd diloco" \
                 --pso-variant "shared:|--fitness shared --holdout 200" --worker torch \
                 --model resnet20 --dataset cifar10 --data-dir "$cifar_dir" \
                 --sync 4 --target 0.35 --out "$out/resnet20" ;;
        cifar) pso_forms 200
               scripts/sweep.sh --seeds "$seeds" --epochs 10 --strategies "pso avg easgd diloco" \
                 "${pso[@]}" --model cifar_cnn --dataset cifar10 --data-dir "$cifar_dir" \
                 --sync 4 --target 0.4 --out "$out/cifar" ;;
        *) echo "scenarios.sh: unknown scenario '$s'" >&2; exit 2 ;;
    esac
done
/usr/bin/python3 scripts/scenario-table.py "$out" --plot > "$out/table.md"
echo "scenarios: table in $out/table.md"

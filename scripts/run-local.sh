#!/usr/bin/env bash
# Run a whole training job on this machine: psod plus K psoworker processes.
#
#   scripts/run-local.sh [options] [-- extra psod options]
#
# With no options: installs missing packages, fetches MNIST (checksums
# verified), builds, and trains LeNet-5 with PSO-PS on 4 workers (each on its
# own quarter of the training set, 2 epochs, sync every 16 mini-batches),
# printing psod's progress and the global model's final test accuracy.
#
#   --workers K        workers (particles)                       [4]
#   --strategy S       pso, avg, easgd, diloco, ssgd             [pso]
#   --sync-every N     mini-batches between syncs                [16; cifar10: 4]
#   --epochs E         passes over each worker's shard           [2; cifar10: 10]
#   --model M          mlp, lenet5, cifar_cnn; resnet20 with --worker torch [lenet5]
#   --dataset D        mnist, fashion-mnist, cifar10             [mnist]
#   --data-dir DIR     dataset files; only the default data/D is
#                      fetched, a directory you name is used as it is [data/D]
#   --lr X --batch B --momentum X                                [0.05 64 (cifar10: 32) 0.9]
#   --schedule S       learning-rate schedule of the workers     [cosine]
#   --seed S           seed of the init, shuffling and swarm     [1]
#   --eval-every R     syncs between accuracy reports            [~4 per epoch]
#   --run-dir DIR      logs, metrics, model file, summary        [new dir in /tmp]
#   --link RATE        run psod and each worker in a network namespace of
#                      its own, every link shaped to RATE (1gbit, 100mbit,
#                      10mbit; scripts/netlab.sh, needs root)     [none]
#   --worker W         c (psoworker), torch (psoworker-torch: PyTorch,
#                      Debian's python3-torch), or mixed (even workers C,
#                      odd ones PyTorch, from one shared init)   [c]
#   --worker-opt "..." extra worker options (repeatable)
#   --first-workers K "..."  extra options for workers 0..K-1 only (a bad or
#                      slow worker, for experiments)
#   --adversarial      workers 0..K-1 are attackers: their exit status does not
#                      fail the run (summary.txt counts honest_failed apart)
#   --objective NAME   the test-function demo instead (rastrigin, ...; --dim, --rounds)
#   --no-fetch         do not fetch data or install packages
#
# Results: RUN_DIR/summary.txt (key=value), RUN_DIR/metrics.jsonl (psod, one
# line per round), RUN_DIR/model.psom (the global model), and logs.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=4 strategy=pso sync_every="" epochs="" model=lenet5 dataset=mnist data_dir=""
lr=0.05 batch="" momentum=0.9 schedule=cosine seed=1 eval_every="" run_dir="" objective="" dim=10 rounds=300
fetch=1 worker_kind=c link="" adversarial=0
orig_args=("$@")
worker_opts=() psod_extra=() first_k=0 first_opts=()
usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "run-local.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) need "$@"; workers=$2; shift 2 ;;
        --strategy) need "$@"; strategy=$2; shift 2 ;;
        --sync-every) need "$@"; sync_every=$2; shift 2 ;;
        --epochs) need "$@"; epochs=$2; shift 2 ;;
        --model) need "$@"; model=$2; shift 2 ;;
        --dataset) need "$@"; dataset=$2; shift 2 ;;
        --data-dir) need "$@"; data_dir=$2; shift 2 ;;
        --lr) need "$@"; lr=$2; shift 2 ;;
        --batch) need "$@"; batch=$2; shift 2 ;;
        --momentum) need "$@"; momentum=$2; shift 2 ;;
        --schedule) need "$@"; schedule=$2; shift 2 ;;
        --seed) need "$@"; seed=$2; shift 2 ;;
        --eval-every) need "$@"; eval_every=$2; shift 2 ;;
        --run-dir) need "$@"; run_dir=$2; shift 2 ;;
        --worker) need "$@"; worker_kind=$2; shift 2 ;;
        --link) need "$@"; link=$2; shift 2 ;;
        --worker-opt) need "$@"; read -r -a more <<< "$2"; worker_opts+=("${more[@]}"); shift 2 ;;
        --first-workers)
            [ $# -ge 3 ] || { echo "run-local.sh: --first-workers needs K and options" >&2; exit 2; }
            [[ "$2" =~ ^[0-9]+$ ]] || { echo "run-local.sh: --first-workers: '$2' is not a count" >&2; exit 2; }
            first_k=$2; read -r -a first_opts <<< "$3"; shift 3 ;;
        --objective) need "$@"; objective=$2; shift 2 ;;
        --dim) need "$@"; dim=$2; shift 2 ;;
        --rounds) need "$@"; rounds=$2; shift 2 ;;
        --no-fetch) fetch=0; shift ;;
        --adversarial) adversarial=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; psod_extra=("$@"); break ;;
        *) echo "run-local.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$worker_kind" in
    c|torch|mixed) ;;
    *) echo "run-local.sh: --worker is c, torch or mixed, not '$worker_kind'" >&2; exit 2 ;;
esac
# The default recipe: LeNet-5 on MNIST, 2 epochs, batch 64, sync every 16.
# CIFAR-10 (the 4,000-image slice gives each of 4 workers 1,000 images) gets
# more epochs, smaller batches and more frequent syncs, so that a run holds
# enough syncs to mean something (docs/RESULTS.md).
if [ "$dataset" = cifar10 ]; then
    epochs=${epochs:-10} batch=${batch:-32} sync_every=${sync_every:-4}
    [ "$model" != lenet5 ] || model=cifar_cnn
fi
epochs=${epochs:-2} batch=${batch:-64} sync_every=${sync_every:-16}
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "run-local.sh: --workers must be a positive integer" >&2; exit 2; }
[[ "$sync_every" =~ ^[1-9][0-9]*$ ]] || { echo "run-local.sh: --sync-every must be a positive integer" >&2; exit 2; }
# Whole numbers where the script computes with them (the workers judge the
# values themselves: --epochs 0 is theirs to refuse).
for opt in "epochs $epochs" "batch $batch" "dim $dim" "rounds $rounds" "eval-every ${eval_every:-1}"; do
    [[ "${opt#* }" =~ ^[0-9]+$ ]] ||
        { echo "run-local.sh: --${opt%% *} must be a whole number, not '${opt#* }'" >&2; exit 2; }
done
data_dir=${data_dir:-data/$dataset}

if [ "$fetch" = 1 ]; then
    scripts/install-deps.sh --if-missing
    if [ -z "$objective" ] && [ "$dataset" != cifar10 ] && [ "$data_dir" = "data/$dataset" ]; then
        scripts/get-data.sh "$dataset" "$data_dir" >/dev/null
    fi
fi
if [ "$worker_kind" != c ] && ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "run-local.sh: --worker $worker_kind needs Debian's python3-torch and python3-numpy (scripts/install-deps.sh)" >&2
    exit 1
fi
if [ -z "$objective" ] && [ ! -d "$data_dir" ]; then
    echo "run-local.sh: no dataset in '$data_dir' (scripts/get-data.sh $dataset $data_dir)" >&2
    exit 1
fi
BUILD=${BUILD:-build}
# Two runs started together must not build over each other.
mkdir -p "$BUILD"
flock "$BUILD/.make.lock" make -s -j2 BUILD="$BUILD" all
# --link: the same run again inside a lab of workers + 1 nodes (node 0 is
# psod's), which the lab script removes however the run ends.
if [ -n "$link" ] && [ -z "${NETLAB:-}" ]; then
    exec scripts/netlab.sh run --nodes $((workers + 1)) --rate "$link" -- "$0" --no-fetch "${orig_args[@]}"
fi
# Only ever backgrounded (cmd &): the subshell execs the program, so $! is
# the program's pid (psod, a worker) and the cleanup's kill reaches it.
on_node() { if [ -n "$link" ]; then local n=$1; shift; exec scripts/netlab.sh exec "$NETLAB" "$n" "$@"; else shift; exec "$@"; fi; }
bind='tcp://127.0.0.1:*'
[ -z "$link" ] || bind='tcp://10.88.0.1:5555'
run_dir=${run_dir:-$(mktemp -d /tmp/psod-run-XXXXXX)}
mkdir -p "$run_dir"
rm -f "$run_dir/endpoint" "$run_dir/summary.txt"

pids=() psod_pid="" tailer=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$psod_pid" ] && kill "$psod_pid" 2>/dev/null || true
    [ -n "$tailer" ] && kill "$tailer" 2>/dev/null || true
    # Any child started but not yet noted (a signal between the two).
    pkill -TERM -P $$ 2>/dev/null || true
}
# Interrupted: stop what was started, wait for it to be gone, and go,
# whatever was under way (a signal between starting psod and noting its
# pid, or between two workers, must not let the run go on starting the
# rest).
trap cleanup EXIT
trap 'cleanup; wait; exit 130' INT
trap 'cleanup; wait; exit 143' TERM

t0=$(date +%s.%N)
# Test functions get the classic swarm (Clerc's constriction values, the
# paper's attractor); the defaults are tuned for networks. Options after --
# still override these.
psod_recipe=()
[ -z "$objective" ] || psod_recipe=(--w 0.7298 --c1 1.49618 --c2 1.49618 --attractor best)
# Training samples (the IDX header's count, or the CIFAR-10 files present)
# and the steps each worker takes.
train_count() {
    case "$dataset" in
        cifar10) if [ -e "$data_dir/data_batch_1.bin" ]; then echo 50000; else echo 4000; fi ;;
        *) local f="$data_dir/train-images-idx3-ubyte"
           { if [ -e "$f" ]; then head -c 8 "$f"; else zcat "$f.gz" 2>/dev/null | head -c 8; fi; } |
               od -An -tu1 -j4 -N4 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }' ;;
    esac
}
if [ -z "$objective" ]; then
    n_train=$(train_count || true)
    [[ "${n_train:-}" =~ ^[0-9]+$ ]] || n_train=60000
    total_steps=$(( (n_train / workers / batch) * epochs ))
    # ssgd: the daemon owns the optimizer, so it takes the workers' recipe.
    [ "$strategy" != ssgd ] || psod_recipe=(--ssgd-lr "$lr" --ssgd-momentum "$momentum"
        --ssgd-schedule "$schedule" --ssgd-steps "$total_steps")
fi
on_node 0 "$BUILD/psod" --bind "$bind" --endpoint-file "$run_dir/endpoint" "${psod_recipe[@]}" \
    --workers "$workers" --strategy "$strategy" --seed "$seed" --progress-interval 5 \
    --metrics "$run_dir/metrics.jsonl" --model-out "$run_dir/model.psom" --exit-when-done \
    "${psod_extra[@]}" 2> "$run_dir/psod.log" &
psod_pid=$!
for _ in $(seq 200); do [ -s "$run_dir/endpoint" ] && break; kill -0 "$psod_pid" 2>/dev/null || break; sleep 0.05; done
if [ ! -s "$run_dir/endpoint" ]; then
    echo "run-local.sh: psod did not start; its log:" >&2
    cat "$run_dir/psod.log" >&2
    exit 1
fi
ep=$(cat "$run_dir/endpoint")
echo "psod ($strategy) on $ep, $workers workers${link:+, every link at $link (netlab $NETLAB)}, logs in $run_dir"
tail -n +1 -f "$run_dir/psod.log" --pid "$psod_pid" | grep --line-buffered -E "joined| round [0-9]+:|refused|ERROR|error" &
tailer=$!

if [ -n "$objective" ]; then
    for i in $(seq 0 $((workers - 1))); do
        on_node $((i + 1)) "$BUILD/psoworker" --connect "$ep" --name "worker$i" --objective "$objective" --dim "$dim" \
            --rounds "$rounds" --sync-every "$sync_every" --lr 0.005 --seed "$seed" \
            "${worker_opts[@]}" > "$run_dir/worker$i.out" 2> "$run_dir/worker$i.log" &
        pids+=($!)
    done
else
    if [ -z "$eval_every" ]; then
        # About eight accuracy reports per run, whatever the interval, so that
        # runs at different intervals spend the same time evaluating.
        syncs=$(( total_steps / sync_every ))
        eval_every=$(( syncs / 8 ))
        [ "$eval_every" -ge 1 ] || eval_every=1
    fi
    init=()
    if [ "$worker_kind" = mixed ]; then
        # One start for every particle, whatever engine it runs in.
        PYTHONPATH=python /usr/bin/python3 -c 'import sys, torch; from psod import models
from psod.modelfile import save_model
torch.manual_seed(int(sys.argv[3])); save_model(sys.argv[1], models.build(sys.argv[2]), model_name=sys.argv[2], dataset=sys.argv[4])' \
            "$run_dir/init.psom" "$model" "$seed" "$dataset"
        init=(--init "$run_dir/init.psom")
    fi
    for i in $(seq 0 $((workers - 1))); do
        mine=()
        [ "$i" -ge "$first_k" ] || mine=("${first_opts[@]}")
        kind=$worker_kind
        [ "$kind" != mixed ] || { [ $((i % 2)) = 0 ] && kind=c || kind=torch; }
        if [ "$kind" = torch ]; then
            bin=(python/psoworker-torch --threads 1)
        else
            bin=("$BUILD/psoworker" --progress-interval 0)
        fi
        on_node $((i + 1)) "${bin[@]}" --connect "$ep" --name "worker$i" --model "$model" --dataset "$dataset" \
            --data-dir "$data_dir" --epochs "$epochs" --batch "$batch" --lr "$lr" \
            --momentum "$momentum" --schedule "$schedule" --seed "$seed" --sync-every "$sync_every" \
            --shard-index "$i" --shard-count "$workers" --eval-every "$eval_every" \
            "${init[@]}" "${worker_opts[@]}" "${mine[@]}" \
            > "$run_dir/worker$i.out" 2> "$run_dir/worker$i.log" &
        pids+=($!)
    done
fi
status=0 honest_failed=0 adversary_failed=0 k=0
for p in "${pids[@]}"; do
    if ! wait "$p"; then
        if [ "$adversarial" = 1 ] && [ "$k" -lt "$first_k" ]; then
            adversary_failed=$((adversary_failed + 1))
        else
            honest_failed=$((honest_failed + 1)); status=1
        fi
    fi
    k=$((k + 1))
done
pids=()
if [ "$status" != 0 ]; then
    # The workers' own words: their ERROR lines, or the last lines of the
    # first failed worker's log (an option it refused).
    echo "run-local.sh: a worker failed:" >&2
    if ! grep -h -m 2 -E 'ERROR|psoworker: ' "$run_dir"/worker*.log >&2; then
        tail -n 3 "$run_dir/worker0.log" >&2
    fi
    kill "$psod_pid" 2>/dev/null || true
fi
# With --exit-when-done psod leaves once every worker has said bye.
for _ in $(seq 100); do kill -0 "$psod_pid" 2>/dev/null || break; sleep 0.1; done
kill "$psod_pid" 2>/dev/null || true
psod_rc=0
wait "$psod_pid" 2>/dev/null || psod_rc=$?
psod_pid=""
# psod's own failures count: a final checkpoint or model it could not
# write (exit 1), checkpoints that failed along the way.
if [ "$psod_rc" != 0 ] && [ "$psod_rc" != 143 ]; then
    echo "run-local.sh: psod exited with status $psod_rc:" >&2
    grep -h -m 3 'ERROR' "$run_dir/psod.log" >&2 || tail -n 3 "$run_dir/psod.log" >&2
    status=1
fi
ckfail=$(grep -c 'ERROR checkpoint of round' "$run_dir/psod.log" || true)
[ "$ckfail" = 0 ] || echo "run-local.sh: psod could not write some checkpoints ($ckfail error lines in $run_dir/psod.log)" >&2
t1=$(date +%s.%N)
sleep 0.2; kill "$tailer" 2>/dev/null || true; tailer=""
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

if [ -n "$objective" ]; then
    echo; cat "$run_dir"/worker*.out
    exit $status
fi
last=$(tail -n 1 "$run_dir/metrics.jsonl" 2>/dev/null || true)
field() { printf '%s' "$last" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
rounds_done=$(field round) bytes_in=$(field bytes_in) bytes_out=$(field bytes_out)
rounds_done=${rounds_done:-0}
bytes=$(( ${bytes_in:-0} + ${bytes_out:-0} ))
best_acc=$(sed -n 's/.*"global_acc":\([0-9.e-]*\).*/\1/p' "$run_dir/metrics.jsonl" | sort -g | tail -n 1)
final_acc=""
if [ -s "$run_dir/model.psom" ]; then
    # resnet20 is PyTorch's alone; psoworker reads every other model file.
    if [ "$model" = resnet20 ]; then
        evaluator=(python/psoworker-torch --threads 1)
    else
        evaluator=("$BUILD/psoworker")
    fi
    final_acc=$("${evaluator[@]}" --eval "$run_dir/model.psom" --model "$model" --dataset "$dataset" \
        --data-dir "$data_dir" --log-level warn | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
fi
[ -n "$final_acc" ] || status=1
# The best accuracy seen: reports during the run, and the final model's.
best_acc=$(printf '%s\n%s\n' "${best_acc:-0}" "${final_acc:-0}" | sort -g | tail -n 1)
{
    echo "strategy=$strategy"; echo "sync_every=$sync_every"; echo "workers=$workers"
    echo "seed=$seed"; echo "epochs=$epochs"; echo "model=$model"; echo "dataset=$dataset"
    echo "worker=$worker_kind"; echo "link=${link:-none}"
    echo "final_acc=$final_acc"; echo "best_acc=$best_acc"; echo "rounds=$rounds_done"
    echo "bytes=$bytes"; echo "wall_s=$wall"
    echo "honest_failed=${honest_failed:-0}"; echo "adversary_failed=${adversary_failed:-0}"
    if [ "$status" = 0 ]; then echo "status=0"; else echo "status=failed"; fi
} > "$run_dir/summary.txt"
if [ "$status" != 0 ]; then
    echo "run-local.sh: failed; logs and summary.txt (status=failed) in $run_dir" >&2
    exit 1
fi
echo
printf 'Done: %s, %s workers, sync every %s, %s epochs: global model test accuracy %s%% ' \
    "$strategy" "$workers" "$sync_every" "$epochs" \
    "$(awk -v a="${final_acc:-0}" 'BEGIN { printf "%.2f", 100 * a }')"
echo "($rounds_done rounds, $(( bytes / 1048576 )) MiB moved, $wall s)"
echo "Model file: $run_dir/model.psom (evaluate it: $BUILD/psoworker --eval $run_dir/model.psom --dataset $dataset --data-dir $data_dir)"
exit $status

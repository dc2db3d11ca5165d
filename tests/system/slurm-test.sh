#!/usr/bin/env bash
# scripts/psod.sbatch under a real Slurm (tests/slurm-cluster.sh: one node,
# munged, slurmctld and slurmd started here and stopped at the end):
#   1. the README's sbatch command trains lenet5 on MNIST (data/mnist, when
#      the tree has it; else mlp on a small MNIST-format dataset) to the usual accuracy,
#      the model lands in runs/JOBID/model.psom (README), psod.log holds
#      psod's lines only, slurm-JOBID.out ends with the accuracy and the model path;
#   2. one worker killed mid-run, under KillOnBadExit=1: the others and the
#      job still finish and evaluate;
#   3. scancel mid-run: a checkpoint is left and no psod or psoworker runs
#      on; a second job resumes from it under the same worker names;
#   4. two jobs at once on the one node (free ports, no collision).
# Submitted from outside the source tree, with PSOD_HOME naming it.
# Needs root, slurm-wlm and munge (scripts/install-deps.sh --ops); skips
# without them. Prints "slurm: N passed, M failed".
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm: needs root, slurm-wlm and munge (scripts/install-deps.sh --ops); skipped"
    exit 0
fi
dir=$(mktemp -d /tmp/psod-slurm-XXXXXX)
chmod 755 "$dir"
cleanup() {
    scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
    "$root/tests/system/slurm-cluster.sh" stop "$dir/slurm" || true
    [ -n "${KEEP:-}" ] && echo "slurm: kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "slurm: FAIL: $*"; }

t0=$(date +%s.%N)
mkdir -p "$dir/slurm"
SLURM_CONF=$("$root/tests/system/slurm-cluster.sh" start "$dir/slurm") || { echo "slurm: 0 passed, 1 failed"; exit 1; }
export SLURM_CONF
echo "slurm: one-node cluster up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# A user's directory, not the source tree: data and runs live here.
work="$dir/work"
mkdir -p "$work"
"$root/$BUILD/tests/make_fixture" "$work/data" 2000 500 > /dev/null
# PSOD_HOME: the built tree ($BUILD is where its binaries are).
home="$dir/home"
mkdir -p "$home"
ln -s "$root/$BUILD" "$home/bin"
export PSOD_HOME="$home"
cd "$work"

submit() { # sbatch options... -- script options...; prints the job id
    sbatch --parsable --export=ALL "$@" | cut -d';' -f1
}
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
wait_job() { # id secs: until it left the queue
    local id=$1 secs=$2 s
    for _ in $(seq $((secs * 5))); do
        s=$(state "$id")
        case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|"") echo "$s"; return ;; esac
        sleep 0.2
    done
    echo "STUCK:$s"
}
stray() { pgrep -f "$dir/home/bin/pso(d|worker)" | grep -v "^$$\$" || true; }
common=(--model mlp --data-dir "$work/data" --lr 0.05 --sync-every 4)

# 1. A whole job: the README's command as it is (lenet5, 2 epochs, sync 16,
# 2 tasks) on the real MNIST when the source tree has it (.ci/run fetches
# it: scripts/get-data.sh, checksums verified), else mlp on the fixture.
if [ -s "$root/data/mnist/train-images-idx3-ubyte" ] || [ -s "$root/data/mnist/train-images-idx3-ubyte.gz" ]; then
    ln -s "$root/data" "$work/real"
    j1=$(submit "$root/scripts/psod.sbatch" --data-dir "$work/real/mnist")
    what="MNIST, lenet5, the defaults" want=0.97
else
    j1=$(submit --ntasks=2 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 2 --worker --eval-every 0)
    what="the fixture, mlp (no data/mnist: scripts/get-data.sh mnist data/mnist)" want=0.8
fi
st=$(wait_job "$j1" 300)
out="$work/slurm-$j1.out"
if [ "$st" = COMPLETED ]; then ok; else bad "job 1 ended $st: $(tail -5 "$out" "$work/runs/$j1/psod.log" 2>&1)"; fi
acc=$(sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$out" | tail -1)
awk -v a="${acc:-0}" -v w="$want" 'BEGIN { exit !(a > w) }' && ok || bad "job 1 accuracy '$acc' (want > $want): $(tail -3 "$out")"
echo "slurm: job 1 ($what): $(grep 'test accuracy' "$out" | tail -1)"
[ -s "$work/runs/$j1/model.psom" ] && ok || bad "no runs/$j1/model.psom"
tail -1 "$out" | grep -q "model: $work/runs/$j1/model.psom" && ok || bad "last line of slurm-$j1.out: $(tail -1 "$out")"
grep -q '^ *bind ' "$out" && bad "psod's config dump in slurm-$j1.out" || ok
grep -q '^ *bind ' "$work/runs/$j1/psod.log" && ok || bad "psod's config dump not in psod.log"
grep -qE '^srun|slurmstepd' "$work/runs/$j1/psod.log" && bad "srun's messages in psod.log" || ok
grep -q 'test accuracy nan' "$out" && bad "test accuracy nan" || ok
ls "$work/runs/$j1"/worker-0.log "$work/runs/$j1"/worker-1.log > /dev/null 2>&1 && ok || bad "no worker logs"

# 2. One worker of 3 killed mid-run: the others and the evaluation go on.
j2=$(submit --ntasks=3 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 100 --name-prefix w)
for _ in $(seq 300); do [ -s "$work/runs/$j2/endpoint" ] && grep -q "joined" "$work/runs/$j2/worker-2.log" 2>/dev/null && break; sleep 0.2; done
sleep 1
pkill -KILL -f -- "--name w2 " && ok || bad "no worker w2 to kill"
st=$(wait_job "$j2" 240)
out="$work/slurm-$j2.out"
[ "$st" = COMPLETED ] && ok || bad "job 2 (one worker killed) ended $st: $(tail -5 "$out")"
grep -q "some workers failed" "$out" && grep -q "test accuracy" "$out" && ok ||
    bad "job 2 did not go on to the evaluation: $(tail -4 "$out")"
[ "$(grep -c '^psoworker w[01]: .*test accuracy' "$out")" = 2 ] && ok ||
    bad "job 2: the surviving workers did not finish (KillOnBadExit took them?): $(grep -E '^psoworker|srun' "$out" | head -5)"

# 3. scancel mid-run leaves a checkpoint and no process; a new job resumes.
j3=$(submit --ntasks=2 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 400 --psod --checkpoint-every 5)
for _ in $(seq 600); do ls "$work/runs/$j3/checkpoints/"ckpt-*.psck > /dev/null 2>&1 && break; sleep 0.2; done
sleep 1
scancel "$j3"
st=$(wait_job "$j3" 60)
[ "$st" = CANCELLED ] && ok || bad "job 3 after scancel: $st"
sleep 1
ls "$work/runs/$j3/checkpoints/"ckpt-*.psck > /dev/null 2>&1 && ok || bad "scancel left no checkpoint: $(ls -la "$work/runs/$j3" "$work/runs/$j3/checkpoints" 2>&1 | head)"
grep -q "checkpoint" "$work/runs/$j3/psod.log" && ok || bad "psod.log says nothing of a checkpoint"
[ -z "$(stray)" ] && ok || bad "processes left after scancel: $(ps -o pid,args -p "$(stray | paste -sd,)")"
j4=$(submit --ntasks=2 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 1 --resume "$work/runs/$j3/checkpoints")
st=$(wait_job "$j4" 180)
[ "$st" = COMPLETED ] && grep -q "resumed from" "$work/runs/$j4/psod.log" && ok ||
    bad "job 4 (resume of job 3's checkpoint) ended $st: $(grep -E 'ERROR|resumed' "$work/runs/$j4/psod.log" | head -3)"

# 4. Two jobs at once on one node.
j5=$(submit --ntasks=2 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 1)
j6=$(submit --ntasks=2 "$root/scripts/psod.sbatch" "${common[@]}" --epochs 1)
s5=$(wait_job "$j5" 180) s6=$(wait_job "$j6" 180)
[ "$s5" = COMPLETED ] && [ "$s6" = COMPLETED ] && ok ||
    bad "two jobs at once: $s5, $s6: $(tail -2 "$work/slurm-$j5.out" "$work/slurm-$j6.out")"
[ "$(cat "$work/runs/$j5/endpoint")" != "$(cat "$work/runs/$j6/endpoint")" ] && ok || bad "the two jobs shared an endpoint"
[ -z "$(stray)" ] && ok || bad "processes left at the end"
echo "slurm: $pass passed, $fail failed ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s)"
[ "$fail" -eq 0 ]

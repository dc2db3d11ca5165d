#!/usr/bin/env bash
# The user-facing scripts on a small generated dataset in MNIST's format:
# run-local.sh trains a swarm and evaluates its model file; sweep.sh runs a
# small grid, writes its CSV, table and plots, and skips runs already done
# when run again; every script answers --help and refuses bad options and
# missing inputs with a message. Prints "scripts: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
dir=$(mktemp -d /tmp/psod-scripts-XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "scripts-test: FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

"$BUILD/tests/make_fixture" "$dir/data" 1200 300

# run-local.sh: 2 mlp workers, pso, on the fixture.
if scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 2 --epochs 1 \
        --sync-every 4 --run-dir "$dir/run" > "$dir/run.log" 2>&1; then ok
else bad "run-local.sh exited non-zero: $(tail -n 5 "$dir/run.log")"; fi
acc=$(sed -n 's/^final_acc=//p' "$dir/run/summary.txt" 2>/dev/null)
check "run-local.sh final accuracy '$acc' not above 0.8" awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.8) }'
check "run-local.sh left no model file" test -s "$dir/run/model.psom"
check "run-local.sh left no metrics" test -s "$dir/run/metrics.jsonl"
check "run-local.sh printed no result line" grep -q "^Done: pso, 2 workers" "$dir/run.log"
check "run-local.sh eval hint lacks --dataset and --data-dir" \
    grep -q -- "--eval $dir/run/model.psom --dataset mnist --data-dir $dir/data" "$dir/run.log"
# The hint runs as printed (it named a bare psoworker, not on PATH).
hint=$(sed -n 's/.*(evaluate it: \(.*\))$/\1/p' "$dir/run.log")
check "run-local.sh eval hint '$hint' does not run" bash -c "$hint >/dev/null 2>&1"

# --worker mixed: one C and one PyTorch worker (psoworker-torch) in one swarm.
if scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 2 --epochs 1 \
        --sync-every 4 --worker mixed --strategy avg --run-dir "$dir/mixed" > "$dir/mixed.log" 2>&1; then ok
else bad "run-local.sh --worker mixed exited non-zero: $(tail -n 5 "$dir/mixed.log")"; fi
acc=$(sed -n 's/^final_acc=//p' "$dir/mixed/summary.txt" 2>/dev/null)
check "run-local.sh --worker mixed: accuracy '$acc' not above 0.8" awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.8) }'
check "run-local.sh --worker mixed: worker 1 is not a PyTorch worker" \
    grep -q "^psoworker-torch worker1:" "$dir/mixed/worker1.out"
check "run-local.sh --worker mixed: worker 0 is not a C worker" \
    grep -q "^psoworker worker0:" "$dir/mixed/worker0.out"
scripts/run-local.sh --no-fetch --worker rust > "$dir/kind.log" 2>&1
check "run-local.sh --worker rust was not refused" grep -q "is c, torch or mixed" "$dir/kind.log"

# --link: the same job across scripts/netlab.sh's namespaces (root only).
if ip netns add "scripts-test-$$" 2>/dev/null; then
    ip netns del "scripts-test-$$"
    if scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 2 --epochs 1 \
            --sync-every 4 --link 100mbit --run-dir "$dir/link" > "$dir/link.log" 2>&1; then ok
    else bad "run-local.sh --link 100mbit: $(tail -n 5 "$dir/link.log")"; fi
    check "run-local.sh --link: summary lacks link=100mbit" grep -q "^link=100mbit" "$dir/link/summary.txt"
    check "run-local.sh --link: psod did not listen in the lab" \
        grep -q "listening on tcp://10.88.0.1:5555" "$dir/link/psod.log"
    check "run-local.sh --link: the lab was left behind" bash -c "! ip netns list | grep -q netlab"
fi

# ssgd: the daemon's optimizer takes the workers' lr and schedule, over the
# run's steps (1200 images / 2 workers / batch 64 = 9 steps, 1 epoch).
if scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 2 --epochs 1 \
        --strategy ssgd --lr 0.03 --run-dir "$dir/ssgd" > "$dir/ssgd.log" 2>&1; then ok
else bad "run-local.sh --strategy ssgd: $(tail -n 5 "$dir/ssgd.log")"; fi
for want in "ssgd-lr 0.03" "ssgd-schedule cosine" "ssgd-steps 9"; do
    check "run-local.sh --strategy ssgd: psod lacks '$want'" grep -q -- "    $want\$" "$dir/ssgd/psod.log"
done

# A worker that refuses its options: its own message, status=failed, exit 1.
for bad_opt in "--epochs 0" "--lr nan" "--worker-opt --bogus=1"; do
    read -r -a args <<< "$bad_opt"
    scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 1 \
        --run-dir "$dir/badrun" "${args[@]}" > "$dir/bad.log" 2>&1
    rc=$?
    check "run-local.sh $bad_opt exited $rc, not 1" test "$rc" -eq 1
    check "run-local.sh $bad_opt: no worker message: $(tail -n 3 "$dir/bad.log")" \
        grep -q -E "psoworker: (option|unknown option)" "$dir/bad.log"
    check "run-local.sh $bad_opt: shell errors" bash -c "! grep -q -E 'syntax error|unbound variable' '$dir/bad.log'"
    check "run-local.sh $bad_opt: summary lacks status=failed" grep -q "^status=failed" "$dir/badrun/summary.txt"
    # Its psod is gone with it (it used to outlive the run, waiting).
    sleep 0.2
    # ([p]sod: the pattern must not match the checking shell's own command line)
    check "run-local.sh $bad_opt left psod running: $(pgrep -af "[p]sod .*$dir/badrun/endpoint")" \
        bash -c "! pgrep -f '[p]sod .*$dir/badrun/endpoint' >/dev/null"
done
# Ctrl-C (SIGINT) in the middle of a run: psod and the workers go with it.
# (Job control, so the background run does not start with SIGINT ignored;
# env --default-signal, because a shell cannot trap a signal ignored when it
# started, as it is under `make test &` from a script.)
( set -m
  env --default-signal=INT scripts/run-local.sh --no-fetch --objective rastrigin --dim 50 \
      --rounds 100000000 --workers 2 --run-dir "$dir/intrun" > "$dir/int.log" 2>&1 &
  echo $! > "$dir/int.pid"
  wait ) &
intwait=$!
for _ in $(seq 100); do pgrep -f "[p]soworker .*--objective rastrigin --dim 50" >/dev/null && break; sleep 0.1; done
sleep 0.5
kill -INT "$(cat "$dir/int.pid")"
for _ in $(seq 300); do kill -0 "$intwait" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$intwait" 2>/dev/null; then
    bad "run-local.sh still runs 30 s after SIGINT"
    kill -TERM "$(cat "$dir/int.pid")" 2>/dev/null
    pkill -f "[p]soworker .*--objective rastrigin --dim 50"
    pkill -f "[p]sod .*$dir/intrun/"
fi
wait "$intwait"
sleep 0.3
check "run-local.sh after SIGINT left psod running: $(pgrep -af "[p]sod .*$dir/intrun/")" \
    bash -c "! pgrep -f '[p]sod .*$dir/intrun/' >/dev/null"
check "run-local.sh after SIGINT left a worker running" \
    bash -c "! pgrep -f '[p]soworker .*--objective rastrigin --dim 50' >/dev/null"
check "run-local.sh: the SIGINT run never started" test -s "$dir/intrun/psod.log"
check "run-local.sh --epochs abc: $(scripts/run-local.sh --no-fetch --epochs abc 2>&1)" \
    bash -c "scripts/run-local.sh --no-fetch --epochs abc 2>&1 | grep -q \"must be a whole number, not 'abc'\""
check "run-local.sh --help is whole" bash -c \
    "scripts/run-local.sh --help | grep -q -- --no-fetch && scripts/run-local.sh --help | grep -q 'Results: RUN_DIR'"

# Two runs started together after an edit: one make at a time (flock), both
# train. (Before, both ran make at once and one failed on the other's
# half-written objects.) Only a file's timestamp changes.
touch common/log.c
scripts/run-local.sh --no-fetch --objective sphere --workers 1 --rounds 5 --run-dir "$dir/race1" \
    > "$dir/race1.log" 2>&1 &
race1=$!
scripts/run-local.sh --no-fetch --objective sphere --workers 1 --rounds 5 --run-dir "$dir/race2" \
    > "$dir/race2.log" 2>&1
race2=$?
wait "$race1"
race1=$?
check "two run-local.sh at once after an edit: $race1/$race2: $(tail -n 2 "$dir/race1.log" "$dir/race2.log")" \
    test "$race1$race2" = 00

# sweep.sh: 2 strategies x 2 intervals, then again (all skipped).
sweep=(scripts/sweep.sh --strategies "pso avg" --sync "4 8" --seeds 1 --workers 2 --epochs 1
       --model mlp --data-dir "$dir/data" --out "$dir/sweep")
if "${sweep[@]}" > "$dir/sweep.log" 2>&1; then ok; else bad "sweep.sh: $(tail -n 5 "$dir/sweep.log")"; fi
check "sweep.sh CSV does not have 4 runs" test "$(tail -n +2 "$dir/sweep/results.csv" | wc -l)" -eq 4
check "sweep.sh table lacks a strategy" grep -q "^| avg |" "$dir/sweep/table.md"
check "sweep.sh drew no plots" test -s "$dir/sweep/acc_vs_sync.png" -a -s "$dir/sweep/acc_vs_time.png"
check "sweep.sh drew no accuracy-time curves" test -s "$dir/sweep/curves-none.png"
check "sweep.sh time_to_target.md lacks pso at sync 8" grep -q "^| pso | 8 | 1 |" "$dir/sweep/time_to_target.md"
"${sweep[@]}" > "$dir/sweep2.log" 2>&1
check "sweep.sh re-ran finished runs" grep -q "4 runs, 4 already done, 0 failed" "$dir/sweep2.log"
# --link adds the link rate as a dimension (root only: the lab needs it).
if ip netns add "scripts-test-$$" 2>/dev/null; then
    ip netns del "scripts-test-$$"
    scripts/sweep.sh --strategies pso --sync 4 --seeds 1 --workers 2 --epochs 1 --model mlp \
        --data-dir "$dir/data" --link "none 50mbit" --wire "fp32 bf16" --out "$dir/sweepl" \
        > "$dir/sweepl.log" 2>&1
    check "sweep.sh --link: no loopback run in the CSV" grep -q "^pso,default,4,2," "$dir/sweepl/results.csv"
    check "sweep.sh --link: no 50mbit run in the CSV" grep -q "^pso,default@50mbit,4,2," "$dir/sweepl/results.csv"
    check "sweep.sh --wire: no bf16 run at 50mbit" grep -q "^pso,default+bf16@50mbit,4,2," "$dir/sweepl/results.csv"
    check "sweep.sh --wire: the bf16 run did not use bf16" \
        grep -q "bf16 payloads" "$dir/sweepl/runs/mlp-mnist-pso-default+bf16@50mbit-s4-w2-seed1-e1/worker0.log"
    check "sweep.sh --link: no curves per link" test -s "$dir/sweepl/curves-50mbit.png" -a -s "$dir/sweepl/curves-none.png"
    b32=$(awk -F, '$2 == "default@50mbit" { print $12 }' "$dir/sweepl/results.csv")
    b16=$(awk -F, '$2 == "default+bf16@50mbit" { print $12 }' "$dir/sweepl/results.csv")
    check "sweep.sh --wire: bf16 moved $b16 bytes against fp32's $b32, not about half" \
        awk -v a="$b16" -v b="$b32" 'BEGIN { exit !(a > 0.4 * b && a < 0.65 * b) }'
    check "sweep.sh --link: the 50mbit run did not run in the lab" \
        grep -q "^link=50mbit" "$dir/sweepl/runs/mlp-mnist-pso-default@50mbit-s4-w2-seed1-e1/summary.txt"
fi

# Scenario options: a pso variant with worker options, label-skew shards on
# every worker, a bad first worker; scenario-table.py tabulates the result.
if scripts/sweep.sh --strategies "pso avg" --sync 4 --seeds "1 2" --workers 2 --epochs 1 --model mlp \
        --data-dir "$dir/data" --out "$dir/scen/skew" \
        --pso-variant 'weighted:--attractor weighted --temperature 0.1|--fitness shared --holdout 100' \
        --variant 'dir:|--shard-mode dirichlet --shard-alpha 0.5' --variant 'bad:||1:--shuffle-labels' \
        > "$dir/scen.log" 2>&1; then ok; else bad "sweep.sh scenarios: $(tail -n 5 "$dir/scen.log")"; fi
check "sweep.sh scenarios: not 12 runs" test "$(tail -n +2 "$dir/scen/skew/results.csv" | wc -l)" -eq 12
r=$dir/scen/skew/runs
check "sweep.sh --pso-variant: psod not on the weighted attractor" \
    grep -q -- "attractor weighted" "$r/mlp-mnist-pso-weighted-dir-s4-w2-seed1-e1/psod.log"
check "sweep.sh --pso-variant: its worker options did not reach the workers" \
    grep -q "fitness: the loss on 100 held-out samples (the same set on every worker)" \
    "$r/mlp-mnist-pso-weighted-dir-s4-w2-seed1-e1/worker1.log"
check "sweep.sh variant: no Dirichlet shards" \
    grep -q "shard 1 of 2 (dirichlet)" "$r/mlp-mnist-avg-dir-s4-w2-seed1-e1/worker1.log"
check "sweep.sh K:OPTS: worker 0 does not shuffle its labels" \
    grep -q -- "--shuffle-labels" "$r/mlp-mnist-avg-bad-s4-w2-seed1-e1/worker0.log"
check "sweep.sh K:OPTS: worker 1 shuffles its labels too" \
    bash -c "! grep -q -- --shuffle-labels '$r/mlp-mnist-avg-bad-s4-w2-seed1-e1/worker1.log'"
/usr/bin/python3 scripts/scenario-table.py "$dir/scen" --plot > "$dir/scen/table.md" 2> "$dir/scen-table.log"
check "scenario-table.py: no mean ± sd for pso-weighted: $(cat "$dir/scen-table.log")" \
    grep -q -E "^\| pso-weighted \| \*\*[0-9.]+\*\* ± [0-9.]+ \(n 2" "$dir/scen/table.md"
check "scenario-table.py: no verdict against avg" grep -q -E "^\| pso \| (win|tie|loss) \(" "$dir/scen/table.md"
check "scenario-table.py: no plot" test -s "$dir/scen/skew.png"
# The robust campaign's pieces: an attacker as the first worker
# (--adversarial), and robust-table.py over a results.csv of its format.
if scripts/run-local.sh --no-fetch --model mlp --data-dir "$dir/data" --workers 3 --epochs 1 \
        --sync-every 4 --strategy avg --run-dir "$dir/adv" --adversarial \
        --first-workers 1 "--attack signflip" -- --aggregate cclip > "$dir/adv.log" 2>&1; then ok
else bad "run-local.sh --adversarial: $(tail -n 5 "$dir/adv.log")"; fi
check "run-local.sh --adversarial: no honest_failed=0 in the summary" \
    grep -qx "honest_failed=0" "$dir/adv/summary.txt"
check "run-local.sh --adversarial: the attacker did not attack" \
    grep -q -- "--attack signflip (strength 10): this worker pushes crafted weights" "$dir/adv/worker0.log"
mkdir -p "$dir/rob"
{
    echo "scenario,workers,bad,data,attack,defense,seed,final_acc,best_acc,t97_s,wall_s,rounds,bytes,honest_failed,adversary_failed,status"
    for seed in 1 2; do
        t97=$([ "$seed" = 1 ] && echo 3.0 || echo 3.4)
        echo "w4,4,1,iid,none,mean,$seed,0.98$seed,0.98,$t97,6,30,1,0,0,0"
        echo "w4,4,1,iid,signflip,mean,$seed,0.09$seed,0.1,,6,30,1,2,0,0"
        echo "w4,4,1,iid,none,cclip,$seed,0.97$seed,0.97,$t97,6,30,1,0,0,0"
        echo "w4,4,1,iid,signflip,cclip,$seed,0.96$seed,0.96,,6,30,1,0,1,0"
    done
} > "$dir/rob/results.csv"
/usr/bin/python3 scripts/robust-table.py "$dir/rob" --plot > "$dir/rob/table.md" 2> "$dir/rob-table.log"
check "robust-table.py: no worst case for cclip: $(cat "$dir/rob-table.log")" \
    grep -q -E "^\| cclip \| 97\.15 ± 0\.07 \| 96\.15 ± 0\.07 \| 96\.15 ± 0\.07 \(signflip\) \| -1\.00 \| 3\.2 \| 0 \|" "$dir/rob/table.md"
check "robust-table.py: honest exits not counted" grep -q -E "^\| mean \|.*\| 4 \|$" "$dir/rob/table.md"
check "robust-table.py: no plot" test -s "$dir/rob/robust.png"
check "run-local.sh --first-workers without options refused" \
    bash -c "scripts/run-local.sh --no-fetch --first-workers 1 2>&1 | grep -q 'needs K and options'"

# --help everywhere; bad input refused with a reason.
for s in run-local.sh sweep.sh launch-ssh.sh get-data.sh install-deps.sh; do
    check "$s --help" bash -c "scripts/$s --help | grep -q ."
done
check "psod.sbatch --help" bash -c "bash scripts/psod.sbatch --help | grep -q Slurm"
check "psod.sbatch outside Slurm" bash -c "bash scripts/psod.sbatch 2>&1 | grep -q 'not inside a Slurm job'"
check "run-local.sh bad option" bash -c "scripts/run-local.sh --bogus 2>&1 | grep -q 'unknown option'"
check "run-local.sh missing data" bash -c "scripts/run-local.sh --no-fetch --data-dir $dir/none 2>&1 | grep -q 'no dataset in'"
check "sweep.sh bad option" bash -c "scripts/sweep.sh --bogus 2>&1 | grep -q 'unknown option'"
printf 'node1 2\nnode2\n' > "$dir/hosts"
check "launch-ssh.sh dry run" bash -c "scripts/launch-ssh.sh --hosts $dir/hosts --connect tcp://10.0.0.1:5555 --dry-run -- --model lenet5 | grep -c 'shard-count 3' | grep -q 3"
check "launch-ssh.sh loopback refused" bash -c "scripts/launch-ssh.sh --hosts $dir/hosts --connect tcp://127.0.0.1:5555 2>&1 | grep -q loopback"
check "launch-ssh.sh missing hosts file" bash -c "scripts/launch-ssh.sh --hosts $dir/none --connect tcp://10.0.0.1:5555 2>&1 | grep -q 'cannot read hosts file'"

echo "scripts: $pass passed, $fail failed"
[ "$fail" = 0 ]

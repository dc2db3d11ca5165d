#!/usr/bin/env bash
# Workers that cannot be trusted (docs/RESULTS.md, "Robust aggregation"):
# every attack against every defense, each run scripts/run-local.sh with the
# attackers as its first workers (--adversarial: an attacker that dies does
# not fail the run; an honest worker that dies is counted). One CSV row per
# run in OUT/results.csv; scripts/robust-table.py makes the tables and plots.
#
#   scripts/robust.sh [--seeds "1 2 3"] [--only "w4 w8 cifar"] [--data "iid dir0.5"]
#                     [--attacks "..."] [--defenses "..."] [--out DIR] [--cifar-dir DIR]
#
# Scenarios: w4 (1 attacker of 4 workers), w8 (2 of 8), both LeNet-5 on
# MNIST, 2 epochs, sync 16, lr 0.05 cosine; cifar (1 of 4, cifar_cnn on the
# CIFAR-10 slice, 10 epochs, sync 4; IID only). Data: iid, dir0.5 (label
# skew, Dirichlet 0.5).
#
# Attacks (the first workers' options; psoworker --help):
#   none       every worker honest
#   labelflip  --flip-labels (its fitness set too)
#   signflip   --attack signflip: its drift reversed and amplified 10x
#   noise      --attack noise: N(0, 1) on every weight
#   alie       --attack alie: a little is enough, z = 1
#   ipm        --attack ipm: inner-product manipulation, eps = 0.5
#   liar       --attack noise --lie-loss 0.01 --lie-verdict: noise, a claimed
#              loss of 0.01, and verdicts that refuse every honest candidate
#   colluders  the liar twice (w8 only): both claim 0.01 and vouch for each other
#
# Defenses (psod options; the pso forms' workers push the shared held-out
# loss, --fitness shared --holdout 1000):
#   mean, median, trimmed, cclip, krum   --strategy avg --aggregate RULE (f =
#              the number of attackers; krum needs 2f + 3 workers: w8 only)
#   pso        --strategy pso (defaults: the mean attractor), workers' fitness auto
#   pso-wv     --attractor weighted --temperature 0.05 --verify-best (the
#              faulty preset before this campaign)
#   pso-cclip  --aggregate cclip (robust attractor, no verification)
#   pso-cv     --aggregate cclip --verify-best (quorum 2 of 3, strike limit 3)
# Runs already in results.csv are skipped, so an interrupted campaign resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="1 2 3" only="w4 w8 cifar" datas="iid dir0.5" out=docs/results/robust
cifar_dir=../shared/data/cifar10-slice
attacks="none labelflip signflip noise alie ipm liar colluders"
defenses="mean median trimmed cclip krum pso pso-wv pso-cclip pso-cv"
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --data) datas=$2; shift 2 ;;
        --attacks) attacks=$2; shift 2 ;;
        --defenses) defenses=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cifar-dir) cifar_dir=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "robust.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$out/runs"
csv=$out/results.csv
[ -s "$csv" ] || echo "scenario,workers,bad,data,attack,defense,seed,final_acc,best_acc,t97_s,wall_s,rounds,bytes,honest_failed,adversary_failed,status" > "$csv"
make -s all >/dev/null

attack_opts() {
    case "$1" in
        none) echo "" ;;
        labelflip) echo "--flip-labels" ;;
        signflip) echo "--attack signflip" ;;
        noise) echo "--attack noise" ;;
        alie) echo "--attack alie" ;;
        ipm) echo "--attack ipm" ;;
        liar|colluders) echo "--attack noise --lie-loss 0.01 --lie-verdict" ;;
    esac
}
shared="--fitness shared --holdout 1000"
# psod options, then all workers' options, for defense $1 with f = $2.
defense_opts() {
    case "$1" in
        mean) psod="--strategy avg"; wopt="" ;;
        median|cclip) psod="--strategy avg --aggregate $1"; wopt="" ;;
        trimmed|krum) psod="--strategy avg --aggregate $1 --aggregate-f $2"; wopt="" ;;
        pso) psod="--strategy pso"; wopt="" ;;
        pso-wv) psod="--strategy pso --attractor weighted --temperature 0.05 --verify-best yes"; wopt=$shared ;;
        pso-cclip) psod="--strategy pso --aggregate cclip"; wopt=$shared ;;
        pso-cv) psod="--strategy pso --aggregate cclip --verify-best yes"; wopt=$shared ;;
        *) echo "robust.sh: unknown defense '$1'" >&2; exit 2 ;;
    esac
}

one() { # scenario workers bad data attack defense seed model dataset data_dir epochs sync holdout
    local sc=$1 w=$2 bad=$3 data=$4 atk=$5 def=$6 seed=$7 model=$8 ds=$9 dd=${10} ep=${11} sync=${12}
    local key="$sc,$w,$bad,$data,$atk,$def,$seed"
    grep -q "^$key," "$csv" && return 0
    [ "$atk" != colluders ] || [ "$bad" -ge 2 ] || return 0
    [ "$def" != krum ] || [ "$w" -ge $((2 * bad + 3)) ] || return 0
    local k=$bad
    [ "$atk" != none ] || k=0
    defense_opts "$def" "$bad"
    local dopt=""
    [ "$data" = iid ] || dopt="--shard-mode dirichlet --shard-alpha ${data#dir}"
    [ -z "$wopt" ] || [ "$ds" != cifar10 ] || wopt="--fitness shared --holdout 200"
    local dir=$out/runs/${key//,/_}
    rm -rf "$dir"
    local args=(--no-fetch --adversarial --workers "$w" --model "$model" --dataset "$ds"
                --data-dir "$dd" --epochs "$ep" --sync-every "$sync" --seed "$seed" --run-dir "$dir")
    [ -z "$wopt$dopt" ] || args+=(--worker-opt "$wopt $dopt")
    [ "$k" = 0 ] || args+=(--first-workers "$k" "$(attack_opts "$atk")")
    # shellcheck disable=SC2086
    scripts/run-local.sh "${args[@]}" -- $psod > "$dir.log" 2>&1 || true
    local S=$dir/summary.txt
    g() { sed -n "s/^$1=//p" "$S" 2>/dev/null | head -n 1; }
    local t97
    t97=$(python3 - "$dir/metrics.jsonl" <<'EOF'
import json, sys
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if (r.get("global_acc") or 0) >= 0.97:
            print("%.2f" % r["time"]); break
except OSError:
    pass
EOF
)
    echo "$key,$(g final_acc),$(g best_acc),${t97},$(g wall_s),$(g rounds),$(g bytes),$(g honest_failed),$(g adversary_failed),$(g status)" >> "$csv"
    printf '%-60s %s\n' "$key" "$(g final_acc) honest_failed=$(g honest_failed)"
}

for sc in $only; do
    case "$sc" in
        w4|w8)
            w=4 bad=1; [ "$sc" = w4 ] || { w=8; bad=2; }
            for data in $datas; do for seed in $seeds; do for atk in $attacks; do for def in $defenses; do
                one "$sc" $w $bad "$data" "$atk" "$def" "$seed" lenet5 mnist data/mnist 2 16
            done; done; done; done ;;
        cifar)
            [ -d "$cifar_dir" ] || { echo "robust.sh: no CIFAR-10 slice at $cifar_dir (--cifar-dir)" >&2; continue; }
            for seed in $seeds; do for atk in $attacks; do for def in $defenses; do
                one cifar 4 1 iid "$atk" "$def" "$seed" cifar_cnn cifar10 "$cifar_dir" 10 4
            done; done; done ;;
        *) echo "robust.sh: unknown scenario '$sc'" >&2; exit 2 ;;
    esac
done
python3 scripts/robust-table.py "$out" --plot > "$out/table.md"
echo "tables: $out/table.md"

#!/usr/bin/env bash
# Sweep training runs over strategies, sync intervals, worker counts, seeds
# and named variants; one CSV row per run, plus plots.
#
#   scripts/sweep.sh [options]
#
#   --strategies "pso avg ..."   [pso avg easgd diloco]; ssgd runs once per
#                                seed and worker count (it syncs every step)
#   --sync "1 4 16 64"           sync intervals, in mini-batches   [1 4 16 64]
#   --workers "4"                worker counts                     [4]
#   --seeds "1 2"                seeds                             [1 2]
#   --epochs E                   passes over each worker's shard   [2]
#   --model M --dataset D --data-dir DIR                           [lenet5 mnist data/D]
#                                (only the default data/D is fetched)
#   --variant 'NAME:PSOD OPTS|WORKER OPTS|K:FIRST-K OPTS'   a named set of
#                                options (a scenario), repeatable: for psod, for
#                                every worker, and for workers 0..K-1 only (e.g.
#                                'w07:--w 0.7', 'reset:|--reset-momentum',
#                                'dir0.1:|--shard-mode dirichlet --shard-alpha 0.1',
#                                'labels:||1:--shuffle-labels'); without any, one
#                                variant "default"
#   --pso-variant 'NAME:PSOD OPTS|WORKER OPTS'  also run pso with these options,
#                                as the strategy "pso-NAME" (repeatable; e.g.
#                                'paper:--attractor best --w 0.5 --c1 0.5 --c2 0.5',
#                                'shared:|--fitness shared --holdout 1000')
#   --link "1gbit 100mbit"       also run each across a network lab at these link
#                                rates (run-local.sh --link; needs root); the
#                                variant column then reads NAME@RATE [none]
#   --wire "fp32 bf16 int8"      payload encodings (psoworker --wire); the
#                                variant column reads NAME+KIND for all but
#                                fp32                              [fp32]
#   --worker W                   c, torch or mixed (run-local.sh --worker; one
#                                kind per results directory)         [c]
#   --target ACC                 the accuracy time-to-accuracy is measured at [0.97]
#   --out DIR                    results directory                 [docs/results/sweep]
#   --plot-only                  redraw the plots from DIR/results.csv
#
# Runs already in DIR/results.csv are skipped, so an interrupted sweep
# resumes. Each run is scripts/run-local.sh; its logs, metrics and model
# stay in DIR/runs/KEY/. Output: DIR/results.csv, DIR/table.md (mean test
# accuracy over seeds, each run, mean wall time), DIR/acc_vs_sync.png and
# DIR/acc_vs_time.png (gnuplot, installed when missing); DIR/time_to_target.md
# (seconds until psod's first report of the global model at --target, mean
# over seeds) and DIR/curves-LINK.png: test accuracy of the global model
# against wall time, one curve per strategy and sync interval (first seed).
set -euo pipefail
cd "$(dirname "$0")/.."

strategies="pso avg easgd diloco" syncs="1 4 16 64" workers_list="4" seeds="1 2" epochs=2
model=lenet5 dataset=mnist data_dir="" out=docs/results/sweep plot_only=0
variants=() links=none wires=fp32 target=0.97 pso_variants=() worker_kind=c
usage() { sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "sweep.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --strategies) need "$@"; strategies=$2; shift 2 ;;
        --sync) need "$@"; syncs=$2; shift 2 ;;
        --workers) need "$@"; workers_list=$2; shift 2 ;;
        --seeds) need "$@"; seeds=$2; shift 2 ;;
        --epochs) need "$@"; epochs=$2; shift 2 ;;
        --model) need "$@"; model=$2; shift 2 ;;
        --dataset) need "$@"; dataset=$2; shift 2 ;;
        --data-dir) need "$@"; data_dir=$2; shift 2 ;;
        --variant) need "$@"; variants+=("$2"); shift 2 ;;
        --pso-variant) need "$@"; pso_variants+=("$2"); shift 2 ;;
        --out) need "$@"; out=$2; shift 2 ;;
        --link) need "$@"; links=$2; shift 2 ;;
        --wire) need "$@"; wires=$2; shift 2 ;;
        --target) need "$@"; target=$2; shift 2 ;;
        --worker) need "$@"; worker_kind=$2; shift 2 ;;
        --plot-only) plot_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "sweep.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ ${#variants[@]} -gt 0 ] || variants=("default:")
# pso-NAME runs pso with the options of --pso-variant NAME.
pso_opts() { local v; for v in "${pso_variants[@]}"; do [ "pso-${v%%:*}" != "$1" ] || { echo "${v#*:}"; return; }; done; }
for v in "${pso_variants[@]}"; do strategies="$strategies pso-${v%%:*}"; done
data_dir=${data_dir:-data/$dataset}
mkdir -p "$out/runs"
csv="$out/results.csv"
header="strategy,variant,sync_every,workers,seed,epochs,model,dataset,final_acc,best_acc,rounds,bytes,wall_s,t_target_s"

# Seconds from psod's start to its first report of the global model at
# --target or better (metrics.jsonl); empty when never reached.
t_target() { /usr/bin/python3 scripts/sweep-curves.py --time-to "$1" "$target"; }

[ -s "$csv" ] || echo "$header" > "$csv"

scripts/install-deps.sh --if-missing --plots
if [ "$plot_only" = 0 ]; then
    # Only the default directory is fetched; one the user names is theirs.
    if [ "$dataset" != cifar10 ] && [ "$data_dir" = "data/$dataset" ]; then
        scripts/get-data.sh "$dataset" "$data_dir" >/dev/null
    fi
    [ -d "$data_dir" ] || { echo "sweep.sh: no dataset in '$data_dir'" >&2; exit 1; }
    make -s -j2 all
    total=0 done_runs=0 failed=0
    for K in $workers_list; do for seed in $seeds; do for strat in $strategies ssgd; do
        # ssgd pushes every step: one run per seed and worker count, and only
        # when asked for in --strategies.
        if [ "$strat" = ssgd ]; then
            case " $strategies " in *" ssgd "*) ;; *) continue ;; esac
            [ "${ssgd_seen:-}" != "$K.$seed" ] || continue
            ssgd_seen="$K.$seed" strat_syncs=1
        else
            strat_syncs=$syncs
        fi
        for N in $strat_syncs; do for v in "${variants[@]}"; do for L in $links; do for W in $wires; do
            vname=${v%%:*} vopts=${v#*:}
            [ "$W" = fp32 ] || vname="$vname+$W"
            [ "$L" = none ] || vname="$vname@$L"
            popts=${vopts%%|*} wopts="" fopts=""
            [[ "$vopts" == *"|"* ]] && wopts=${vopts#*|}
            if [[ "$wopts" == *"|"* ]]; then fopts=${wopts#*|}; wopts=${wopts%%|*}; fi
            base=$strat
            case "$strat" in
                pso-*) base=pso; po=$(pso_opts "$strat"); popts="${po%%|*} $popts"
                       [[ "$po" != *"|"* ]] || wopts="${po#*|} $wopts" ;;
            esac
            [ "$W" = fp32 ] || wopts="$wopts --wire $W"
            key="$model-$dataset-$strat-$vname-s$N-w$K-seed$seed-e$epochs"
            total=$((total + 1))
            if grep -q "^$strat,$vname,$N,$K,$seed,$epochs,$model,$dataset," "$csv"; then
                done_runs=$((done_runs + 1)); continue
            fi
            echo "sweep: $key"
            args=(--no-fetch --workers "$K" --strategy "$base" --sync-every "$N" --epochs "$epochs"
                  --model "$model" --dataset "$dataset" --data-dir "$data_dir" --seed "$seed"
                  --run-dir "$out/runs/$key" --worker "$worker_kind")
            [ -z "$wopts" ] || args+=(--worker-opt "$wopts")
            [ -z "$fopts" ] || args+=(--first-workers "${fopts%%:*}" "${fopts#*:}")
            [ "$L" = none ] || args+=(--link "$L")
            read -r -a pextra <<< "$popts"
            if ! scripts/run-local.sh "${args[@]}" -- "${pextra[@]}" > "$out/runs/$key.log" 2>&1; then
                echo "sweep: $key failed (see $out/runs/$key.log)" >&2
                failed=$((failed + 1))
            fi
            sum="$out/runs/$key/summary.txt"
            if [ -s "$sum" ]; then
                get() { sed -n "s/^$1=//p" "$sum"; }
                tt=$(t_target "$out/runs/$key/metrics.jsonl" 2>/dev/null || true)
                echo "$strat,$vname,$N,$K,$seed,$epochs,$model,$dataset,$(get final_acc),$(get best_acc),$(get rounds),$(get bytes),$(get wall_s),$tt" >> "$csv"
                echo "sweep:   final $(get final_acc) best $(get best_acc) in $(get wall_s) s"
            fi
        done; done; done; done
    done; done; done
    echo "sweep: $total runs, $done_runs already done, $failed failed; results in $csv"
fi

# The table: final accuracy of the global model per strategy (and variant)
# and sync interval, mean over seeds with the individual runs.
awk -F, 'NR > 1 && $9 != "" {
        k = $1 ($2 == "default" ? "" : " (" $2 ")"); key = k SUBSEP $3
        sum[key] += $9; n[key]++; runs[key] = runs[key] (runs[key] == "" ? "" : " / ") sprintf("%.2f", 100 * $9)
        t[key] += $13; r[key] += $11; b[key] += $12
        if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
        if (!($3 in sy)) { sy[$3] = 1; ns++ }
    }
    END {
        m = 0; for (s in sy) list[++m] = s + 0
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (list[j] < list[i]) { x = list[i]; list[i] = list[j]; list[j] = x }
        printf "| strategy |"; for (i = 1; i <= m; i++) printf " sync %d |", list[i]; print ""
        printf "|---|"; for (i = 1; i <= m; i++) printf "---:|"; print ""
        for (o = 1; o <= nk; o++) {
            k = order[o]; printf "| %s |", k
            for (i = 1; i <= m; i++) {
                key = k SUBSEP list[i]
                if (key in sum) printf " **%.2f** (%s; %.0f s) |", 100 * sum[key] / n[key], runs[key], t[key] / n[key]
                else printf " |"
            }
            print ""
        }
    }' "$csv" > "$out/table.md"
/usr/bin/python3 scripts/sweep-curves.py "$out" "$target"

# Plots: mean over seeds of the final accuracy, per strategy and variant.
agg="$out/acc_vs_sync.dat"
awk -F, 'NR > 1 && $9 != "" {
        k = $1 ($2 == "default" ? "" : "/" $2); key = k SUBSEP $3
        sum[key] += $9; n[key]++; names[k] = 1; syncs[$3] = 1
    }
    END {
        for (k in names) {
            printf "\"%s\"\n", k
            for (s = 1; s <= 4096; s++) if ((k SUBSEP s) in sum)
                printf "%d %.6f %d\n", s, 100 * sum[k SUBSEP s] / n[k SUBSEP s], n[k SUBSEP s]
            printf "\n\n"
        }
    }' "$csv" > "$agg"
awk -F, 'NR > 1 && $9 != "" {
        k = $1 ($2 == "default" ? "" : "/" $2);
        data[k] = data[k] sprintf("%s %.6f %s\n", $13, 100 * $9, $3)
    }
    END { for (k in data) printf "\"%s\"\n%s\n\n", k, data[k] }' "$csv" > "$out/acc_vs_time.dat"
blocks=$(grep -c '^"' "$agg" || true)
# The y axis starts just below the lowest mean that trained at all (> 50%),
# so a collapsed run does not flatten the others; the title says so.
lo=$(awk 'NF == 3 && $2 > 50 { if (lo == "" || $2 < lo) lo = $2 } END { v = int(lo) - 1; print (v < 0 ? 0 : v) }' "$agg")
off=$(awk -v lo="$lo" 'NF == 3 && $2 < lo { n++ } END { print n + 0 }' "$agg")
note=""
[ "$off" = 0 ] || note="\\n($off points below $lo% are off the chart)"
off2=$(awk -v lo="$lo" 'NF == 3 && $2 < lo { n++ } END { print n + 0 }' "$out/acc_vs_time.dat")
note2=""
[ "$off2" = 0 ] || note2="\\n($off2 runs below $lo% are off the chart)"
if [ "$blocks" -gt 0 ]; then
    gnuplot <<EOF
set terminal pngcairo size 900,600 noenhanced
set output "$out/acc_vs_sync.png"
set title "$model on $dataset: global model test accuracy after $epochs epochs (mean over seeds)$note"
set xlabel "sync interval (mini-batches)"
set ylabel "test accuracy (%)"
set yrange [$lo:*]
set logscale x 2
set key bottom left
set grid
plot for [i=0:$((blocks - 1))] "$agg" index i using 1:2 with linespoints lw 2 title columnheader(1)
set output "$out/acc_vs_time.png"
set title "$model on $dataset: accuracy against wall time (one point per run)$note2"
set xlabel "wall time (s)"
unset logscale x
plot for [i=0:$((blocks - 1))] "$out/acc_vs_time.dat" index i using 1:2 with points pt 7 ps 1.2 title columnheader(1)
EOF
    echo "sweep: plots in $out/acc_vs_sync.png and $out/acc_vs_time.png"
fi

#!/usr/bin/env bash
# The scale ladder: one synchronous round through psod next to raw ZeroMQ
# moving the same bytes (bench_round BENCH_LADDER=1), for parameter counts
# N x worker counts K x strategies, on this machine, with psod's peak
# resident memory; then a sharded swarm (S daemons) at one size.
#
#   bench/scale-ladder.sh [OUT_DIR]        (default docs/results/ladder)
#
# Environment: LADDER_N (1Mi 16Mi 64Mi 256Mi), LADDER_K (4 16 64),
# LADDER_STRATEGIES (pso avg), LADDER_SHARDS (1 2 4), LADDER_SHARD_N (16Mi),
# LADDER_MEM_GIB (what the cells may use; 90 % of MemAvailable), BENCH_REPS
# (3). A cell whose estimate (psod's float32 vectors per worker measured in
# the smaller cells, plus about two per worker process) does not fit is
# skipped with the estimate. Writes OUT_DIR/table.md,
# OUT_DIR/ladder.tsv and, with gnuplot, OUT_DIR/ladder.png (round time and
# memory against N x K).
set -euo pipefail
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/docs/results/ladder}
mkdir -p "$out"
NS=${LADDER_N:-"1048576 16777216 67108864 268435456"}
KS=${LADDER_K:-"4 16 64"}
STRATS=${LADDER_STRATEGIES:-"pso avg"}
SHARDS=${LADDER_SHARDS:-"1 2 4"}
SHARD_N=${LADDER_SHARD_N:-16777216}
avail_kib=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
budget_gib=${LADDER_MEM_GIB:-$(awk -v k="$avail_kib" 'BEGIN{printf "%.1f", k * 0.9 / 1048576}')}
export BENCH_REPS=${BENCH_REPS:-3}

table=$out/table.md tsv=$out/ladder.tsv
{
    echo "Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n): $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $((avail_kib / 1048576)) GiB available, cells up to ${budget_gib} GiB; median of $BENCH_REPS; \`bench/scale-ladder.sh\`."
    echo
} >"$table"
printf 'strategy\tn\tk\tround_ms\traw_ms\tratio\tgbps\trss_mib\tvectors\n' >"$tsv"
first=header
declare -A vec=([pso]=3.5 [avg]=2.6) # until a cell of this machine says better
for s in $STRATS; do
    for n in $NS; do
        for k in $KS; do
            # psod and K workers (each its vector and the position being
            # received); the raw run (a server holding K messages) needs
            # less.
            need=$(awk -v n="$n" -v k="$k" -v v="${vec[$s]:-5}" \
                'BEGIN{printf "%.1f", 4 * n * k * (v + 2.2) / 1073741824}')
            if awk -v a="$need" -v b="$budget_gib" 'BEGIN{exit !(a > b)}'; then
                [ "$first" = header ] && {
                    BENCH_LADDER=header BENCH_REPS=1 "$BUILD/bench/bench_round" "$BUILD/psod" 1 1024 1 |
                        head -2 >>"$table"
                    first=
                }
                echo "| $s | $n | $k | skipped: needs about $need GiB, more than ${budget_gib} | | | | | | |" >>"$table"
                continue
            fi
            # Fewer rounds for the big cells: about 2 GB through psod in all.
            rounds=$(awk -v n="$n" -v k="$k" 'BEGIN{r = int(2e9 / (8 * n * k)); print r < 3 ? 3 : (r > 30 ? 30 : r)}')
            if ! row=$(BENCH_STRATEGY=$s BENCH_LADDER=${first:-1} "$BUILD/bench/bench_round" "$BUILD/psod" "$rounds" "$n" "$k"); then
                [ -n "$first" ] && echo "$row" | head -2 >>"$table"
                first=
                echo "| $s | $n | $k | failed (bench_round's message on stderr) | | | | | | | | |" >>"$table"
                continue
            fi
            first=
            echo "$row" >>"$table"
            echo "$row" | tail -1 | awk -F'|' -v OFS='\t' '{gsub(/ |x/, ""); print $2, $3, $4, $6, $7, $8, $9, $10, $11}' >>"$tsv"
            vec[$s]=$(echo "$row" | tail -1 | awk -F'|' '{gsub(/ /, "", $11); print $11}')
            echo "$row" | tail -1 >&2
        done
    done
done

{
    echo
    echo "Sharded: \`bench/shard-bench.sh loopback $SHARD_N 4 10 \"$SHARDS\"\` (avg, 4 psoworkers, objective sphere; the coordinator's median round):"
    echo
    "$here/bench/shard-bench.sh" loopback "$SHARD_N" 4 10 "$SHARDS"
} >>"$table"

if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<EOF
set terminal pngcairo size 1100,450
set output "$out/ladder.png"
set multiplot layout 1,2
set logscale xy
set key top left
set xlabel "parameters x workers"
set ylabel "round (ms)"
rows(s) = "< awk -F'\t' -v s=" . s . " 'NR > 1 && \$1 == s {print \$2 * \$3, \$4, \$5, \$8}' $tsv | sort -g"
plot for [s in "$STRATS"] rows(s) using 1:2 with linespoints title s . " psod", \
     rows("pso") using 1:3 with linespoints title "raw ZeroMQ"
set ylabel "psod peak RSS (MiB)"
plot for [s in "$STRATS"] rows(s) using 1:4 with linespoints title s
unset multiplot
EOF
else
    echo "(gnuplot not installed: no $out/ladder.png; scripts/install-deps.sh --plots)" >&2
fi
cat "$table"

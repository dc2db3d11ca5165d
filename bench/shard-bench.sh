#!/usr/bin/env bash
# Round time of a sharded swarm against one daemon: W psoworkers (objective
# sphere, one local step per sync, so the round is all synchronization) of
# N parameters, served by S = each of SHARDS daemons (psod --shards).
#
#   bench/shard-bench.sh loopback [N W ROUNDS SHARDS]   every process on 127.0.0.1
#   bench/shard-bench.sh netlab RATE [N W ROUNDS SHARDS]
#       every daemon and every worker in a network namespace of its own, on
#       its own link shaped to RATE (scripts/netlab.sh; needs root)
#
# Prints a markdown table: S, the median round time over rounds 3..ROUNDS
# (psod's metrics, the coordinator's round_s), and its ratio to S = 1.
set -euo pipefail
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: shard-bench.sh loopback|netlab RATE [N W ROUNDS SHARDS]}
shift
rate=
if [ "$mode" = netlab ]; then rate=${1:?netlab needs a RATE, e.g. 1gbit}; shift; fi
N=${1:-4194304} W=${2:-8} ROUNDS=${3:-10} SHARDS=${4:-"1 2 4"}
tmp=$(mktemp -d /tmp/psod-shard-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# One run with S daemons; prints the median round time in seconds.
# $1 = S; $2 = a prefix that runs a command on node K ("" on loopback).
run_one() {
    local S=$1 lab=${2:-} list="" k i pids=() wp=()
    local base=$((20000 + RANDOM % 20000))
    for ((k = 0; k < S; k++)); do
        if [ -n "$lab" ]; then ep="tcp://10.88.0.$((k + 1)):5555"; else ep="tcp://127.0.0.1:$((base + k))"; fi
        list="$list${list:+,}$ep"
    done
    on() { local node=$1; shift; if [ -n "$lab" ]; then "$here/scripts/netlab.sh" exec "$lab" "$node" "$@"; else "$@"; fi; }
    for ((k = 0; k < S; k++)); do
        local opts=(--workers "$W" --strategy avg --exit-when-done --progress-interval 0
                    --max-payload-mb 64 --heartbeat-ms 2000 --liveness 30)
        if [ "$S" -gt 1 ]; then opts+=(--shards "$list" --shard-index "$k")
        else opts+=(--bind "$list"); fi
        [ "$k" = 0 ] && opts+=(--metrics "$tmp/m$S.jsonl")
        if [ -n "$lab" ] && [ "$S" -gt 1 ]; then opts+=(--bind "tcp://10.88.0.$((k + 1)):5555"); fi
        on "$k" "$here/$BUILD/psod" "${opts[@]}" >/dev/null 2>"$tmp/psod$S-$k.err" &
        pids+=($!)
    done
    local first=${list%%,*}
    for ((i = 0; i < W; i++)); do
        on $((S + i)) "$here/$BUILD/psoworker" --connect "$first" --name "w$i" --objective sphere \
            --dim "$N" --rounds "$ROUNDS" --sync-every 1 --lr 0.01 --timeout-ms 600000 \
            --join-timeout-ms 60000 --progress-interval 0 >"$tmp/w$S-$i.out" 2>"$tmp/w$S-$i.err" &
        wp+=($!)
    done
    for p in "${wp[@]}"; do wait "$p" || { echo "worker failed: $(tail -2 "$tmp"/w$S-*.err)" >&2; exit 1; }; done
    for p in "${pids[@]}"; do wait "$p" || { echo "psod failed: $(tail -2 "$tmp"/psod$S-*.err)" >&2; exit 1; }; done
    python3 - "$tmp/m$S.jsonl" <<'EOF'
import json, statistics, sys
r = [json.loads(l)["round_s"] for l in open(sys.argv[1]) if l.strip()]
print("%.4f" % statistics.median(r[2:] if len(r) > 4 else r))
EOF
}

table() {
    local lab=${1:-} one=
    echo "| S daemons | round (median) | vs S = 1 |"
    echo "|---:|---:|---:|"
    for S in $SHARDS; do
        t=$(run_one "$S" "$lab")
        [ -z "$one" ] && one=$t
        printf '| %d | %.1f ms | %.2fx |\n' "$S" "$(python3 -c "print($t * 1e3)")" \
            "$(python3 -c "print($t / $one)")"
    done
}

echo "$W workers x $N parameters, sync every step, strategy avg, $mode${rate:+ at $rate per link}:"
echo
if [ "$mode" = loopback ]; then
    table
else
    maxS=0
    for S in $SHARDS; do [ "$S" -gt "$maxS" ] && maxS=$S; done
    export -f run_one table
    export here BUILD N W ROUNDS SHARDS tmp
    "$here/scripts/netlab.sh" run --nodes $((maxS + W)) --rate "$rate" --name psb -- \
        bash -c 'table psb'
fi

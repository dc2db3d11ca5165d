#!/usr/bin/env bash
# Normal psod runs under valgrind, one per weight strategy (pso, avg, easgd,
# diloco), then pso resumed from its checkpoints, avg in async mode and pso
# with --verify-best --hyper --aggregate cclip, avg under krum and easgd
# under the trimmed mean: 4
# objective workers train while a hostile client sends every kind of bad
# message; psod writes its metrics, model files and checkpoints; psoctl reads
# the status; SIGTERM stops the daemon (with a final checkpoint). Then one ssgd run with 3 real network
# workers on a tiny generated dataset (gradients every step), which leaves by
# itself (--exit-when-done). Last, a CURVE run: allowed workers train, a
# stranger's key is refused, an admin key stops the daemon (psoctl stop).
# Fails on any leak, invalid access or non-zero exit.
set -euo pipefail
BUILD=${BUILD:-build}
dir=$(mktemp -d /tmp/psod-valgrind-XXXXXX)
psod=""
trap '[ -z "$psod" ] || kill "$psod" 2>/dev/null || true; rm -rf "$dir"' EXIT

vg() { # run in the background: exec, so $! is valgrind itself
    exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 "$@"
}
start_psod() { # strategy, extra options...
    local s=$1; shift
    rm -f "$dir/ep"
    vg "$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$dir/ep" --workers 4 \
        --strategy "$s" --progress-interval 1 --metrics "$dir/$s.jsonl" \
        --model-out "$dir/$s.psom" --save-every 10 --checkpoint-dir "$dir/ck-$s" \
        --checkpoint-every 10 "$@" 2> "$dir/psod-$s.log" &
    psod=$!
    for _ in $(seq 300); do [ -s "$dir/ep" ] && break; sleep 0.05; done
    ep=$(cat "$dir/ep")
}
check_psod() { # strategy
    local rc=0
    wait "$psod" || rc=$?
    if [ $rc -ne 0 ] || grep -q '^==' "$dir/psod-$1.log"; then
        echo "valgrind-daemon: psod --strategy $1 exit $rc; valgrind says:"
        grep '^==' "$dir/psod-$1.log" | head -40
        echo "valgrind: 0 passed, 1 failed"
        exit 1
    fi
    [ -s "$dir/$1.psom" ] || { echo "valgrind-daemon: $1 wrote no model file"; exit 1; }
    echo "valgrind-daemon: $1: no leaks or invalid accesses; $(cat "$dir/hostile.out")"
}

fetch_http() { # strategy: with --http, read every page once (the HTTP thread under valgrind)
    local url
    url=$(sed -n 's|.*status page at \(http://[^ ]*\)/ .*|\1|p' "$dir/psod-$1.log" | head -1)
    [ -n "$url" ] || return 0
    /usr/bin/python3 - "$url" <<'PY' || { echo "valgrind-daemon: $1: HTTP failed"; exit 1; }
import sys, urllib.request, urllib.error
for path in ("/metrics", "/status.json", "/history.json", "/", "/nothing"):
    try:
        urllib.request.urlopen(sys.argv[1] + path, timeout=30).read()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
PY
    echo "valgrind-daemon: $1: read /metrics, /status.json, /history.json, / and a 404 over --http"
}
run_objective() { # strategy, psod options... (the workers' --wire: $wire, fp32 if unset)
    local s=$1; shift
    start_psod "$s" "$@"
    pids=()
    for i in 0 1 2 3; do
        "$BUILD/psoworker" --log-level warn --connect "$ep" --name "w$i" --objective rastrigin \
            --dim 1000 --rounds 60 --timeout-ms 60000 --wire "${wire:-fp32}" > "$dir/w$i.out" &
        pids+=($!)
    done
    "$BUILD/tests/hostile_client" "$ep" --rounds 2 > "$dir/hostile.out"
    fetch_http "$s"
    for p in "${pids[@]}"; do wait "$p"; done
    "$BUILD/psoctl" status "$ep" > /dev/null
    kill -TERM "$psod"
    check_psod "$s"
}
run_objective pso --http 127.0.0.1:0
for s in avg easgd diloco; do run_objective "$s"; done
# Resume from the checkpoints just written, and the asynchronous mode.
run_objective pso --resume "$dir/ck-pso"
grep -q "resumed from" "$dir/psod-pso.log" || { echo "valgrind-daemon: pso did not resume"; exit 1; }
run_objective avg --mode async
# pso with a verified global best (a quorum of 2), hyperparameter particles
# and a robust attractor (objective workers verify a claim by the function
# itself); then robust rules under avg and easgd.
run_objective pso --verify-best yes --hyper yes --aggregate cclip --checkpoint-dir "$dir/ck-verify"
grep -q "new global best: particle" "$dir/psod-pso.log" ||
    { echo "valgrind-daemon: pso --verify-best adopted no global best"; exit 1; }
run_objective avg --aggregate krum --aggregate-f 0 --aggregate-m 2
run_objective easgd --aggregate trimmed
# Compressed workers: sparse payloads (positions decoded against the exact
# ones psod keeps), a dense low-bit kind and fragments.
wire=topk:0.1:int4 run_objective pso
wire=int2 run_objective avg --mode async
wire=frag:3:int8 run_objective diloco

# ssgd: real training workers on a tiny MNIST-format dataset.
"$BUILD/tests/make_fixture" "$dir/data" 600 200
start_psod ssgd --exit-when-done --ssgd-lr 0.05
pids=()
for i in 0 1 2 3; do
    "$BUILD/psoworker" --log-level warn --connect "$ep" --name "w$i" --model mlp \
        --data-dir "$dir/data" --epochs 1 --batch 32 --shard-index "$i" --shard-count 4 \
        --eval-every 2 --timeout-ms 60000 > "$dir/w$i.out" &
    pids+=($!)
done
echo "(no hostile client in this run)" > "$dir/hostile.out"
for p in "${pids[@]}"; do wait "$p"; done
check_psod ssgd

# CURVE: keys, an allow-list, an admin; the admin stops the daemon.
mkdir -p "$dir/keys/allow" "$dir/keys/admin"
for k in server allow/w0 allow/w1 admin/op stranger; do
    "$BUILD/psoctl" keygen "$dir/keys/$k" > /dev/null
done
start_psod avg --workers 2 --curve-secret "$dir/keys/server.key" --allow "$dir/keys/allow" \
    --admin "$dir/keys/admin" --max-peers 16
pids=()
for i in 0 1; do
    "$BUILD/psoworker" --log-level warn --connect "$ep" --name "w$i" --objective rastrigin \
        --dim 1000 --rounds 40 --timeout-ms 60000 --curve-secret "$dir/keys/allow/w$i.key" \
        --curve-server "$dir/keys/server.pub" > "$dir/w$i.out" &
    pids+=($!)
done
if "$BUILD/psoworker" --log-level error --connect "$ep" --name intruder --objective rastrigin \
    --dim 1000 --rounds 5 --curve-secret "$dir/keys/stranger.key" \
    --curve-server "$dir/keys/server.pub" > /dev/null 2>&1; then
    echo "valgrind-daemon: a stranger's key was let in"; exit 1
fi
for p in "${pids[@]}"; do wait "$p"; done
"$BUILD/psoctl" status "$ep" --curve-secret "$dir/keys/allow/w0.key" \
    --curve-server "$dir/keys/server.pub" > /dev/null
"$BUILD/psoctl" stop "$ep" --curve-secret "$dir/keys/admin/op.key" \
    --curve-server "$dir/keys/server.pub" > /dev/null
echo "(CURVE run: 2 allowed workers, 1 refused key, stopped by an admin key)" > "$dir/hostile.out"
check_psod avg

# Sharded: two daemons (coordinator and follower) under valgrind, pso with
# checkpoints; the hostile client at the follower; they end by themselves.
list="ipc://$dir/shard0.ipc,ipc://$dir/shard1.ipc"
spids=()
for k in 0 1; do
    vg "$BUILD/psod" --shards "$list" --shard-index "$k" --workers 4 --max-workers 6 \
        --strategy pso --progress-interval 1 --exit-when-done --model-out "$dir/shard.psom" \
        --checkpoint-dir "$dir/ck-shard$k" --checkpoint-every 10 2> "$dir/psod-shard$k.log" &
    spids+=($!)
done
for _ in $(seq 300); do grep -q "registered with the coordinator" "$dir/psod-shard1.log" && break; sleep 0.05; done
pids=()
for i in 0 1 2 3; do
    "$BUILD/psoworker" --log-level warn --connect "ipc://$dir/shard1.ipc" --name "w$i" \
        --objective rastrigin --dim 1000 --rounds 40 --timeout-ms 60000 > "$dir/w$i.out" &
    pids+=($!)
done
"$BUILD/tests/hostile_client" "ipc://$dir/shard1.ipc" --rounds 2 > "$dir/hostile.out"
for p in "${pids[@]}"; do wait "$p"; done
for k in 0 1; do
    rc=0
    wait "${spids[$k]}" || rc=$?
    if [ $rc -ne 0 ] || grep -q '^==' "$dir/psod-shard$k.log"; then
        echo "valgrind-daemon: sharded psod $k exit $rc; valgrind says:"
        grep '^==' "$dir/psod-shard$k.log" | head -40
        echo "valgrind: 0 passed, 1 failed"
        exit 1
    fi
done
[ -s "$dir/shard.psom" ] || { echo "valgrind-daemon: the sharded run wrote no model file"; exit 1; }
echo "valgrind-daemon: sharded pso (2 daemons): no leaks or invalid accesses; $(cat "$dir/hostile.out")"

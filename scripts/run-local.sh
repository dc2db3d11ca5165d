#!/usr/bin/env bash
# Run a whole swarm on this machine: psod plus K psoworker processes.
#
#   scripts/run-local.sh [--workers K] [--objective NAME] [--dim D] [--rounds R]
#                        [--sync-every N] [--lr X] [--seed S] [-- extra psod options]
#
# Installs missing packages (scripts/install-deps.sh) and builds first. psod
# binds a free loopback port; its log and each worker's go to $RUN_DIR
# (default: a new directory under /tmp), and the summary is printed at the end.
# Until the training engine lands the workers minimise a test function.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=4 objective=rastrigin dim=10 rounds=300 sync_every=10 lr=0.005 seed=1
psod_extra=()
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) workers=$2; shift 2 ;;
        --objective) objective=$2; shift 2 ;;
        --dim) dim=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --sync-every) sync_every=$2; shift 2 ;;
        --lr) lr=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; psod_extra=("$@"); break ;;
        *) echo "run-local.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done

scripts/install-deps.sh --if-missing
make -s -j2 all
BUILD=${BUILD:-build}
RUN_DIR=${RUN_DIR:-$(mktemp -d /tmp/psod-run-XXXXXX)}
mkdir -p "$RUN_DIR"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${psod_pid:-}" ] && kill "$psod_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$RUN_DIR/endpoint" \
    --workers "$workers" --seed "$seed" --progress-interval 1 "${psod_extra[@]}" \
    2> "$RUN_DIR/psod.log" &
psod_pid=$!
for _ in $(seq 100); do [ -s "$RUN_DIR/endpoint" ] && break; sleep 0.05; done
if [ ! -s "$RUN_DIR/endpoint" ]; then
    echo "run-local.sh: psod did not start; its log:" >&2
    cat "$RUN_DIR/psod.log" >&2
    exit 1
fi
ep=$(cat "$RUN_DIR/endpoint")
echo "psod listening on $ep, $workers workers, logs in $RUN_DIR"
for i in $(seq 0 $((workers - 1))); do
    "$BUILD/psoworker" --connect "$ep" --name "worker$i" --objective "$objective" --dim "$dim" \
        --rounds "$rounds" --sync-every "$sync_every" --lr "$lr" --seed "$seed" \
        --progress-every $((rounds / 5 > 0 ? rounds / 5 : 1)) \
        > "$RUN_DIR/worker$i.out" 2> "$RUN_DIR/worker$i.log" &
    pids+=($!)
done
tail -n +1 -f "$RUN_DIR/psod.log" --pid "$psod_pid" | grep --line-buffered -E "joined|round [0-9]+," &
tailer=$!
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
pids=()
"$BUILD/psoctl" status "$ep"
kill "$psod_pid"; wait "$psod_pid" 2>/dev/null || true
kill "$tailer" 2>/dev/null || true
echo
echo "Swarm result ($objective, $dim dimensions, $workers workers, $rounds syncs every $sync_every steps):"
cat "$RUN_DIR"/worker*.out
echo
echo "The same workers alone (no swarm), for comparison:"
for i in $(seq 0 $((workers - 1))); do
    "$BUILD/psoworker" --standalone --name "worker$i" --objective "$objective" --dim "$dim" \
        --rounds "$rounds" --sync-every "$sync_every" --lr "$lr" --seed "$seed"
done
exit $status

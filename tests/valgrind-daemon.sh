#!/usr/bin/env bash
# A normal psod run under valgrind: 4 objective workers train, a hostile
# client sends every kind of bad message, psoctl reads the status, SIGTERM
# stops the daemon. Fails on any leak, invalid access or non-zero exit.
set -euo pipefail
BUILD=${BUILD:-build}
dir=$(mktemp -d /tmp/psod-valgrind-XXXXXX)
trap 'rm -rf "$dir"' EXIT
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    "$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$dir/ep" --workers 4 \
    --progress-interval 1 2> "$dir/psod.log" &
psod=$!
for _ in $(seq 300); do [ -s "$dir/ep" ] && break; sleep 0.05; done
ep=$(cat "$dir/ep")
pids=()
for i in 0 1 2 3; do
    "$BUILD/psoworker" --log-level warn --connect "$ep" --name "w$i" --objective rastrigin \
        --dim 1000 --rounds 100 --timeout-ms 60000 > "$dir/w$i.out" &
    pids+=($!)
done
"$BUILD/tests/hostile_client" "$ep" 2 > "$dir/hostile.out"
for p in "${pids[@]}"; do wait "$p"; done
"$BUILD/psoctl" status "$ep" > /dev/null
kill -TERM "$psod"
rc=0
wait "$psod" || rc=$?
if [ $rc -ne 0 ] || grep -q '^==' "$dir/psod.log"; then
    echo "valgrind-daemon: psod exit $rc; valgrind says:"
    grep '^==' "$dir/psod.log" | head -40
    echo "valgrind: 0 passed, 1 failed"
    exit 1
fi
echo "valgrind-daemon: no leaks or invalid accesses; $(cat "$dir/hostile.out")"

#!/usr/bin/env bash
# Nothing left behind by make test:
#   leftovers-test.sh start   notes when the suite began (BUILD/test-start)
#   leftovers-test.sh check   fails, naming them, if a process the suite
#                             started still runs (psod, psoworker, psoctl,
#                             a test helper: a program of BUILD/, or the
#                             PyTorch worker of this tree); they are then
#                             killed. /tmp/psod-* directories made since
#                             are named too, as a note: anything else on
#                             the machine may make them, so they do not
#                             fail the suite.
# Only what started after `start` counts: a daemon the user runs beside the
# suite is not the suite's.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
root=$(pwd) build=$(cd "$BUILD" && pwd) stamp="$BUILD/test-start"
case "${1:-}" in
    start) awk '{print $1}' /proc/uptime > "$stamp"; exit 0 ;;
    check) ;;
    *) echo "usage: $0 start|check" >&2; exit 2 ;;
esac
[ -f "$stamp" ] || { echo "leftovers: no $stamp (run 'start' first)"; exit 1; }
since=$(cat "$stamp") tick=$(getconf CLK_TCK)
procs=() desc=()
for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" != $$ ] || continue
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
    case "$exe" in
        "$build"/*) ;;
        */python3*) case "$cmd" in *"$root/python/psoworker-torch"*|*python/psoworker-torch*) ;; *) continue ;; esac ;;
        *) continue ;;
    esac
    # Field 22 of stat: start time in clock ticks since boot (the command
    # name, field 2, may hold spaces: count from after its ')').
    start=$(sed 's/.*) //' "$d/stat" 2>/dev/null | awk -v t="$tick" '{printf "%.2f", $20 / t}')
    [ -n "$start" ] || continue
    awk -v a="$start" -v b="$since" 'BEGIN { exit !(a >= b) }' || continue
    procs+=("$pid") desc+=("$pid: $cmd")
done
dirs=()
for t in /tmp/psod-*; do
    [ -d "$t" ] || continue
    case "$t" in /tmp/psod-"$(id -u)") continue ;; esac # the operator token's home
    age=$(( $(date +%s) - $(stat -c %Y "$t") ))
    up=$(awk '{print int($1)}' /proc/uptime)
    # Made (or touched) since the suite began.
    awk -v a="$up" -v g="$age" -v b="$since" 'BEGIN { exit !(a - g >= b) }' && dirs+=("$t")
done
for t in "${dirs[@]}"; do echo "leftovers: note: a /tmp/psod-* directory made during the suite: $t"; done
if [ ${#procs[@]} -eq 0 ]; then
    echo "leftovers: none (no process the suite started still runs)"
    exit 0
fi
for l in "${desc[@]}"; do echo "leftovers: FAIL: still running: $l"; done
kill -9 "${procs[@]}" 2>/dev/null
exit 1

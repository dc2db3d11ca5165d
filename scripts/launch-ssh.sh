#!/usr/bin/env bash
# Start psoworker processes on the hosts of a hosts file over ssh, one
# shard of the training set each, and wait for them.
#
#   scripts/launch-ssh.sh --hosts FILE --connect tcp://HEAD:5555 [options] [-- psoworker options]
#
#   --hosts FILE      one host per line: `HOST [WORKERS]` (WORKERS defaults to
#                     1; blank lines and # comments are skipped)
#   --connect EP      psod's endpoint as the workers must reach it (not 127.0.0.1)
#   --psod            also start psod here, bound to EP's address and port,
#                     with --workers set to the total (extra psod options: --psod-opt)
#   --psod-opt "..."  options for psod (repeatable)
#   --remote-dir DIR  psod checkout on the hosts (same path)  [this checkout's path]
#   --logs DIR        one log per worker, fetched through ssh's stdout [logs/launch-DATE]
#   --ssh-opt "..."   options for ssh (repeatable), e.g. "-F ssh_config" or "-J bastion"
#   --dry-run         print the commands, run nothing
#
# Everything after `--` goes to every psoworker (e.g. --model lenet5
# --dataset mnist --data-dir data/mnist --epochs 2 --sync-every 16). Each
# worker gets --name HOST-K (K its shard: unique even when the hosts file
# names a host twice), --shard-index and --shard-count. Hosts are
# checked first (ssh BatchMode, 5 s timeout, psoworker present), so a typo or
# a missing key fails before anything starts. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

hosts="" connect="" start_psod=0 remote_dir=$PWD logs="" dry=0
psod_opts=() worker_opts=() ssh_extra=()
build=${BUILD:-build}   # the build directory, here and on the hosts
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "launch-ssh.sh: $*" >&2; exit 1; }
need() { [ $# -ge 2 ] || { echo "launch-ssh.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) need "$@"; hosts=$2; shift 2 ;;
        --connect) need "$@"; connect=$2; shift 2 ;;
        --psod) start_psod=1; shift ;;
        --psod-opt) need "$@"; read -r -a more <<< "$2"; psod_opts+=("${more[@]}"); shift 2 ;;
        --remote-dir) need "$@"; remote_dir=$2; shift 2 ;;
        --logs) need "$@"; logs=$2; shift 2 ;;
        --ssh-opt) need "$@"; read -r -a more <<< "$2"; ssh_extra+=("${more[@]}"); shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; worker_opts=("$@"); break ;;
        *) echo "launch-ssh.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -n "$hosts" ] || die "--hosts FILE is required (try --help)"
[ -r "$hosts" ] || die "cannot read hosts file '$hosts'"
[ -n "$connect" ] || die "--connect tcp://HEAD:PORT is required: the address workers reach psod at"
[[ "$connect" =~ ^tcp://[^:]+:[0-9]+$ ]] || die "--connect must look like tcp://HOST:PORT, not '$connect'"
case "$connect" in
    tcp://127.*|tcp://localhost:*) die "--connect $connect is loopback: remote workers cannot reach it" ;;
esac
command -v ssh >/dev/null 2>&1 || die "ssh not found (apt-get install openssh-client)"

# Read the hosts file: parallel arrays of host names and worker counts.
names=() counts=()
while read -r host n _; do
    host=${host%%#*}
    [ -n "$host" ] || continue
    n=${n:-1}
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "hosts file '$hosts': '$n' is not a worker count (host $host)"
    names+=("$host") counts+=("$n")
done < "$hosts"
[ ${#names[@]} -gt 0 ] || die "hosts file '$hosts' lists no hosts"
total=0
for n in "${counts[@]}"; do total=$((total + n)); done

logs=${logs:-logs/launch-$(date +%Y%m%d-%H%M%S)}
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=5 "${ssh_extra[@]}")
q() { printf '%q ' "$@"; }

if [ "$dry" = 0 ]; then
    for host in $(printf '%s\n' "${names[@]}" | sort -u); do
        ssh "${ssh_opts[@]}" "$host" "test -x $(q "$remote_dir/$build/psoworker")" 2>/dev/null ||
            die "host $host: cannot ssh in without a password, or $remote_dir/$build/psoworker is missing there (build it, or pass --remote-dir)"
    done
    mkdir -p "$logs"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [ "$start_psod" = 1 ]; then
    cmd=("$build/psod" --bind "$connect" --workers "$total" --exit-when-done "${psod_opts[@]}")
    if [ "$dry" = 1 ]; then echo "$(q "${cmd[@]}")"; else
        [ -x "$build/psod" ] || make -s -j2 BUILD="$build" all
        "${cmd[@]}" 2> "$logs/psod.log" &
        pids+=($!)
        sleep 0.5
        kill -0 "${pids[0]}" 2>/dev/null || { cat "$logs/psod.log" >&2; die "psod did not start"; }
        echo "psod on $connect waiting for $total workers; log $logs/psod.log"
    fi
fi

shard=0
for h in "${!names[@]}"; do
    host=${names[$h]}
    for i in $(seq 0 $((counts[h] - 1))); do
        remote=(cd "$remote_dir" "&&" exec "$build/psoworker" --connect "$connect" --name "$host-$shard"
                --shard-index "$shard" --shard-count "$total" "${worker_opts[@]}")
        line="$(q "${remote[@]:0:2}")&& $(q "${remote[@]:3}")"
        if [ "$dry" = 1 ]; then
            echo "ssh $host $line"
        else
            ssh "${ssh_opts[@]}" "$host" "$line" > "$logs/$host-$shard.out" 2> "$logs/$host-$shard.log" &
            pids+=($!)
        fi
        shard=$((shard + 1))
    done
done
[ "$dry" = 0 ] || exit 0
echo "started $total workers on ${#names[@]} hosts; logs in $logs"
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
pids=()
cat "$logs"/*.out 2>/dev/null || true
[ "$status" = 0 ] || echo "launch-ssh.sh: some workers failed; see $logs" >&2
exit $status

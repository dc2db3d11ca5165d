#!/usr/bin/env bash
# A network lab on one machine: every node (psod, each worker) in a network
# namespace of its own, joined through veth pairs to a bridge in a hub
# namespace, every node's link shaped in both directions with tc's token
# bucket filter (tbf: rate, burst, queue limit).
#
#   scripts/netlab.sh run --nodes N --rate RATE [--name LAB] -- COMMAND [ARG...]
#       create the lab, run COMMAND (in the root namespace) with NETLAB=LAB,
#       NETLAB_NODES=N and NETLAB_HEAD=10.88.0.1 in its environment, then
#       remove everything: on success, failure and SIGINT/SIGTERM alike
#   scripts/netlab.sh exec LAB NODE COMMAND [ARG...]
#       run COMMAND inside node NODE (0 = the head, 10.88.0.1; node i is
#       10.88.0.(i+1)) of a lab that is up
#   scripts/netlab.sh up --nodes N --rate RATE [--name LAB]   /   down LAB
#       the two halves of `run`, for a lab kept across commands
#
# RATE is tc's syntax: 1gbit, 100mbit, 10mbit. Each link's queue holds 50 ms
# at its rate; the burst is 1% of a second's bytes (at least 16 KiB). The
# kernel here has tbf and htb but no netem, so the lab adds no delay: it
# shapes bandwidth only. Needs the rights to create namespaces (root or
# CAP_NET_ADMIN); refuses with a message otherwise. Addresses are in
# 10.88.0.0/24, inside the lab's namespaces only.
set -euo pipefail

die() { echo "netlab: $*" >&2; exit 2; }

# Bytes per second of a tc rate (for the burst and the queue).
rate_bytes() {
    local r=${1,,} n unit
    [[ "$r" =~ ^([0-9]+)(kbit|mbit|gbit|bit)$ ]] || die "rate '$1' is not N{kbit,mbit,gbit}"
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
    case "$unit" in
        bit) echo $((n / 8)) ;; kbit) echo $((n * 1000 / 8)) ;;
        mbit) echo $((n * 1000000 / 8)) ;; gbit) echo $((n * 1000000000 / 8)) ;;
    esac
}

need_rights() {
    command -v ip >/dev/null && command -v tc >/dev/null ||
        die "needs iproute2 (ip, tc): apt-get install iproute2"
    local probe="netlab-probe-$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        die "cannot create network namespaces here (run as root, or with CAP_NET_ADMIN)"
    fi
    ip netns del "$probe"
}

# A shaped direction: tbf on DEV in namespace NS.
shape() {
    local ns=$1 dev=$2 rate=$3 bps burst limit
    bps=$(rate_bytes "$rate")
    burst=$((bps / 100)); [ "$burst" -ge 16384 ] || burst=16384
    limit=$((bps / 20)); [ "$limit" -ge $((2 * burst)) ] || limit=$((2 * burst))
    ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" limit "$limit"
}

lab_up() {
    local lab=$1 nodes=$2 rate=$3
    [ "$nodes" -ge 1 ] && [ "$nodes" -le 200 ] || die "--nodes must be 1 to 200"
    rate_bytes "$rate" >/dev/null
    need_rights
    ip netns list | grep -q "^$lab-hub\b" && die "a lab named '$lab' is up (netlab.sh down $lab)"
    ip netns add "$lab-hub"
    ip -n "$lab-hub" link set lo up
    ip -n "$lab-hub" link add br0 type bridge
    ip -n "$lab-hub" link set br0 up
    for i in $(seq 0 $((nodes - 1))); do
        local ns="$lab-n$i"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # Both ends are created in the hub, then one end moves to the node.
        ip -n "$lab-hub" link add "h$i" type veth peer name "eth0" netns "$ns"
        ip -n "$lab-hub" link set "h$i" master br0 up
        ip -n "$ns" addr add "10.88.0.$((i + 1))/24" dev eth0
        ip -n "$ns" link set eth0 up
        shape "$ns" eth0 "$rate"          # the node's upload
        shape "$lab-hub" "h$i" "$rate"    # the node's download
    done
    echo "netlab: $lab up: $nodes nodes at $rate each (head 10.88.0.1), no added delay"
}

lab_down() {
    local lab=$1 ns
    local tries
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        local left=0
        for ns in $(ip netns list | awk '{print $1}' | grep -E "^$lab-(hub|n[0-9]+)$" || true); do
            # Whatever still runs in the lab goes with it; a namespace whose
            # processes are still dying can refuse to go (EBUSY): try again.
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
            ip netns del "$ns" 2>/dev/null || left=1
        done
        [ "$left" = 0 ] && ! ip netns list | grep -qE "^$lab-(hub|n[0-9]+)( |$)" && return 0
        sleep 0.2
    done
    echo "netlab: could not remove every namespace of $lab: $(ip netns list | grep "^$lab-" | tr '\n' ' ')" >&2
    return 1
}

parse_up() {
    nodes="" rate="" lab="netlab$$"
    while [ $# -gt 0 ]; do
        case "$1" in
            --nodes) nodes=${2:?}; shift 2 ;;
            --rate) rate=${2:?}; shift 2 ;;
            --name) lab=${2:?}; shift 2 ;;
            --) shift; break ;;
            *) die "unknown option '$1' (see the head of this script)" ;;
        esac
    done
    [ -n "$nodes" ] && [ -n "$rate" ] || die "needs --nodes N and --rate RATE"
    [[ "$lab" =~ ^[a-zA-Z0-9_]{1,12}$ ]] || die "--name must be 1 to 12 letters, digits or _"
    rest=("$@")
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up) parse_up "$@"; lab_up "$lab" "$nodes" "$rate" ;;
    down) [ $# -eq 1 ] || die "down LAB"; lab_down "$1" ;;
    exec)
        [ $# -ge 3 ] || die "exec LAB NODE COMMAND..."
        lab=$1 node=$2; shift 2
        exec ip netns exec "$lab-n$node" "$@" ;;
    run)
        parse_up "$@"
        [ ${#rest[@]} -gt 0 ] || die "run ... -- COMMAND"
        child=""
        # The command runs in the background so that a signal is handled at
        # once: it is passed on, then the lab goes (the EXIT trap).
        stop() { [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true; exit "$1"; }
        trap 'lab_down "$lab"' EXIT
        trap 'stop 130' INT
        trap 'stop 143' TERM
        lab_up "$lab" "$nodes" "$rate"
        rc=0
        NETLAB=$lab NETLAB_NODES=$nodes NETLAB_HEAD=10.88.0.1 "${rest[@]}" &
        child=$!
        wait "$child" || rc=$?
        child=""
        exit "$rc" ;;
    -h|--help|"") sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$cmd" ] || exit 2 ;;
    *) die "unknown command '$cmd' (run, exec, up, down)" ;;
esac

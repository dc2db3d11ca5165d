#!/usr/bin/env bash
# The network lab shapes: psod and 2 workers, each in a namespace of its own
# (scripts/netlab.sh), push and pull 1 MB vectors at 20 and at 80 Mbit/s.
# A round moves its bytes through the head node's link one way, then the
# other, so it should last about (bytes in + bytes out) / rate; a little
# less, since the first worker's next push (in) overlaps the position still
# going out to the second. Each rate's mean round (rounds 2 to 5, from
# psod's metrics) must be within 0.7x to 1.3x of that. Then the lab must be gone. Needs root; prints "netlab: N passed, M
# failed" (or why it was skipped).
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if ! ip netns add "netlab-check-$$" 2>/dev/null; then
    echo "netlab: skipped: creating network namespaces needs root (CI runs it as root)"
    exit 0
fi
ip netns del "netlab-check-$$"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "netlab: FAIL: $*"; }

cat > "$dir/swarm.sh" <<SWARM
#!/usr/bin/env bash
# Inside the lab: psod on the head, a worker on each other node.
out=\$1
"$root/scripts/netlab.sh" exec "\$NETLAB" 0 "$root/$BUILD/psod" --bind tcp://10.88.0.1:5555 \
    --workers 2 --max-rounds 5 --metrics "\$out/m.jsonl" --progress-interval 0 2> "\$out/psod.err" &
for i in 1 2; do
    "$root/scripts/netlab.sh" exec "\$NETLAB" \$i "$root/$BUILD/psoworker" \
        --connect tcp://10.88.0.1:5555 --name w\$i --objective sphere --dim 250000 --rounds 5 \
        --sync-every 1 --lr 0.01 --reconnect-ms 0 --join-timeout-ms 10000 \
        > "\$out/w\$i.out" 2> "\$out/w\$i.err" &
done
wait
SWARM
chmod +x "$dir/swarm.sh"

for rate in 20mbit 80mbit; do
    out="$dir/$rate"
    mkdir -p "$out"
    if scripts/netlab.sh run --nodes 3 --rate "$rate" --name "nlt$$" -- "$dir/swarm.sh" "$out" \
        > "$out/lab.log" 2>&1; then ok; else bad "$rate: the lab run failed: $(tail -3 "$out/lab.log")"; fi
    verdict=$(/usr/bin/python3 - "$out/m.jsonl" "$rate" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
bps = int(re.match(r"(\d+)mbit", sys.argv[2]).group(1)) * 1e6 / 8
got, want = [], []
for a, b in zip(lines, lines[1:]):
    moved = (b["bytes_in"] - a["bytes_in"]) + (b["bytes_out"] - a["bytes_out"])
    got.append(b["round_s"])
    want.append(moved / bps)
g, w = sum(got) / len(got), sum(want) / len(want)
print(f"{g:.3f} {w:.3f} {g / w:.2f}")
PY
    ) || verdict=""
    read -r measured expected ratio <<<"${verdict:-0 0 0}"
    echo "netlab: $rate: mean round ${measured} s, bytes / rate ${expected} s, ratio ${ratio}"
    if awk -v r="$ratio" 'BEGIN { exit !(r >= 0.7 && r <= 1.3) }'; then ok
    else bad "$rate: a round took ${ratio}x bytes / rate (allowed 0.7 to 1.3)"; fi
done
if ip netns list | grep -q "nlt$$"; then bad "the lab's namespaces are still there"; else ok; fi
# Every exit path removes the lab: SIGINT in the middle of a run, and a
# command that fails.
# (Job control on: a background job of a script would ignore SIGINT; env
# --default-signal, for a test run that itself started with it ignored.)
set -m
env --default-signal=INT scripts/netlab.sh run --nodes 2 --rate 10mbit --name "nli$$" -- sleep 30 > "$dir/int.log" 2>&1 &
lab_pid=$!
set +m
for _ in $(seq 100); do ip netns list | grep -q "nli$$-n1" && break; sleep 0.05; done
kill -INT "$lab_pid"
wait "$lab_pid"; rc=$?
check_gone() { ! ip netns list | grep -q "$1"; }
if [ "$rc" = 130 ] && check_gone "nli$$"; then ok; else bad "SIGINT: exit $rc, lab left: $(ip netns list | grep "nli$$" | tr '\n' ' ')"; fi
scripts/netlab.sh run --nodes 1 --rate 10mbit --name "nlf$$" -- false > /dev/null 2>&1; rc=$?
if [ "$rc" = 1 ] && check_gone "nlf$$"; then ok; else bad "a failing command: exit $rc or the lab left"; fi
# Without the rights it refuses with a message.
if command -v setpriv >/dev/null; then
    msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups scripts/netlab.sh up --nodes 1 \
        --rate 10mbit --name "nlr$$" 2>&1); rc=$?
    if [ "$rc" = 2 ] && grep -q "cannot create network namespaces" <<<"$msg"; then ok
    else bad "an unprivileged user was not refused clearly: $rc $msg"; fi
fi
echo "netlab: $pass passed, $fail failed"
[ "$fail" = 0 ]

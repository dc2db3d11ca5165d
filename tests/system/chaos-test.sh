#!/usr/bin/env bash
# A short chaos run in make test (scripts/chaos.py): mlp on generated MNIST
# files, 3 workers, 2 daemons, a fault every 3 s on average for 25 s (every
# kind in turn; disk-full and the link faults when root), beside a 15 s
# clean run. Fails if the
# harness finds anything left behind, a checkpoint not intact, a fault the
# swarm never recovered from, or a psod that did not exit cleanly; prints
# the figures. The long run is `make soak` (docs/RELIABILITY.md).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d /tmp/psod-chaos-test-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$BUILD/tests/make_fixture" "$dir/data" 1200 300 > /dev/null
# With the rights to make network namespaces (root, as in CI) every node
# runs in a netlab at 1 Gbit/s and links are cut and slowed too.
lab=()
if ip netns add "psod-chaos-probe-$$" 2>/dev/null; then
    ip netns del "psod-chaos-probe-$$"
    lab=(--link 1gbit)
else
    echo "chaos: no network namespaces here (not root): the link faults are left out"
fi
out=$(/usr/bin/python3 scripts/chaos.py --build "$BUILD" --seconds 25 --clean-seconds 15 --mtbf 3 \
      --workers 3 --shards 2 --model mlp --data-dir "$dir/data" --seed "${CHAOS_SEED:-1}" \
      "${lab[@]}" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/chaos: /'
if [ $rc = 0 ]; then echo "chaos: passed"; else echo "chaos: FAIL (exit $rc)"; fi
exit $rc

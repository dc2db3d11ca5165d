#!/usr/bin/env bash
# The house's rules, as includes and imports (README, "Source tour"):
#   common/ never reaches server/ or worker/;
#   server/ never reaches worker/;
#   the client library (worker/client/) reaches only common/ and proto/;
#   server/strategy/ is pure math: no ZeroMQ, no wire, no daemon state;
#   server/observe/ and server/shard/ are reached only through their
#   declared entry points (server_int.h), never by the strategies;
#   no call loop among server/ files but rounds <-> shard; the low files
#   (table, reply, record) call nothing above them, observe/ no handler;
#   rounds close in rounds.c, server.c (the loop) and the shard files only;
#   only python/psod/_lib.py and the Client (python/psod/__init__.py) use
#   ctypes; modelfile.py and torch.py do not import each other in a loop.
# Prints "layers: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0
rule() { # description, then a command whose output lists the breaches
    local what=$1; shift
    local out; out=$("$@" 2>/dev/null)
    if [ -z "$out" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "layers: FAIL: $what:"; echo "$out" | sed 's/^/    /'; fi
}
rule "common/ includes server/ or worker/" grep -rln '#include "\(server\|worker\)/' common/
rule "server/ includes worker/" grep -rln '#include "worker/' server/
rule "the client library (worker/client/) includes server/ or the worker's engine" \
    bash -c "grep -rln '#include \"server/\|#include \"worker/[a-z_]*\.h\"' worker/client/"
rule "server/strategy/ uses ZeroMQ, the wire or the daemon's state" \
    grep -rlnE '#include (<zmq\.h>|"common/wire\.h"|"server/(server_int|server|gate)\.h"|"server/(shard|observe)/)' server/strategy/
rule "server/strategy/ calls ZeroMQ" grep -rln 'zmq_' server/strategy/
rule "a call loop among server/ files other than rounds with the shard files" \
    python3 tests/lib/server-loops.py
rule "a call loop among the client library's files (worker/client/)" \
    python3 tests/lib/server-loops.py --client
rule "a low file (table, reply, record) calls up, or observe/ calls a handler" \
    python3 tests/lib/server-loops.py --low
rule "a round closed outside rounds.c, server.c and the shard files" \
    bash -c "grep -ln 'srv_maybe_close_round\|srv_close_round' server/*.c server/observe/*.c | grep -v -e 'server/rounds.c' -e 'server/server.c'"
rule "ctypes outside _lib.py and the Client" \
    bash -c "grep -ln 'import ctypes\|from ctypes' python/psod/*.py | grep -v -e '_lib.py' -e '__init__.py'"
rule "modelfile.py imports psod.torch" grep -n 'psod.torch\|from psod import torch' python/psod/modelfile.py
echo "layers: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# The Python binding and the PyTorch worker, with Debian's python3 and
# pytest (python/tests), against this build's libpsoclient.so and psod.
# Then: a C program built with `pkg-config --cflags --libs psoclient`
# against a `make install DESTDIR=...` tree, run against a real psod.
set -u
BUILD=${BUILD:-build}
PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/../.." && pwd)
export PSOD_BUILD="$root/$BUILD" PSOD_LIBRARY="$root/$BUILD/libpsoclient.so.1"
export PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
if ! "$PY" -c 'import torch, numpy, pytest' 2>/dev/null; then
    echo "python: python3-torch, python3-numpy and python3-pytest are needed (scripts/install-deps.sh)"
    exit 1
fi
out=$("$PY" -m pytest -q -p no:cacheprovider "$root/python/tests" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -25
summary=$(printf '%s\n' "$out" | grep -E '[0-9]+ (passed|failed)' | tail -1)
echo "python: ${summary:-no pytest summary}"
exit $rc

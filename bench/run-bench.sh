#!/usr/bin/env bash
# make bench: run every benchmark and print markdown tables for
# docs/BENCHMARKS.md, headed by the machine they ran on.
set -euo pipefail
BUILD=${BUILD:-build}
echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n)"
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;" \
     "$(uname -sr); $(cc --version | head -1); libzmq $(pkg-config --modversion libzmq)."
echo
echo "### Update and checks, in GB/s: \`$BUILD/bench/bench_update\`"
echo
"$BUILD/bench/bench_update"
echo
echo "### Synchronous round through psod vs raw ZeroMQ: \`$BUILD/bench/bench_round $BUILD/psod 30\`"
echo
"$BUILD/bench/bench_round" "$BUILD/psod" 30

#!/usr/bin/env bash
# Run libFuzzer targets from build-fuzz/fuzz, each for FUZZ_SECONDS, on a
# working corpus in build-fuzz/corpus/TARGET seeded from tests/fuzz/corpus
# (kept between runs, so long local runs build on each other). Prints one
# line per target with its executions; exit 1 if any target found a crash,
# a leak, a sanitizer report or a timeout (its input is in build-fuzz/findings/).
#
#   FUZZ_SECONDS=30 FUZZ_JOBS=1 tests/fuzz/run-fuzz.sh fuzz_wire fuzz_server ...
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
mkdir -p build-fuzz/findings build-fuzz/logs
status=0 total=0
for t in "$@"; do
    seed=tests/fuzz/corpus/${t#fuzz_}
    work=build-fuzz/corpus/${t#fuzz_}
    mkdir -p "$work"
    [ -d "$seed" ] && cp -n "$seed"/* "$work"/ 2>/dev/null
    log=build-fuzz/logs/$t.log
    rm -f "$log" build-fuzz/logs/$t.job*.log
    # -timeout: one input taking a second is a hang for these targets.
    args=(-max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix=build-fuzz/findings/$t- -print_final_stats=1)
    if [ "$jobs" -gt 1 ]; then
        (cd build-fuzz/logs && ../fuzz/$t "${args[@]/#-artifact_prefix=build-fuzz/-artifact_prefix=../}" \
            -jobs="$jobs" -workers="$jobs" "../../$work" >"$t.log" 2>&1)
        rc=$?
        cat build-fuzz/logs/fuzz-*.log >>"$log" 2>/dev/null; rm -f build-fuzz/logs/fuzz-*.log
    else
        build-fuzz/fuzz/$t "${args[@]}" "$work" >"$log" 2>&1
        rc=$?
    fi
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{s += $2} END {print s + 0}')
    total=$((total + execs))
    if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
        echo "$t: FAILED after $execs executions (rc $rc); see $log:"
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -8
        status=1
    else
        echo "$t: $execs executions in ${seconds} s (${rate}/s), corpus $(ls "$work" | wc -l) inputs, no finding"
    fi
done
echo "fuzz: $total executions in all"
exit $status

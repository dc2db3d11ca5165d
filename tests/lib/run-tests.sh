#!/usr/bin/env bash
# Run the Check suites named on the command line from $BUILD/tests and print
# one summary line. Exit 1 if any suite failed or crashed.
set -u
BUILD=${BUILD:-build}
# Check's own default is 4 s per test; sanitizer builds run several times
# slower, and a loaded CI machine more so. A hang still fails, at 120 s.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
passed=0 failed=0 bad=()
for suite in "$@"; do
    out=$("$BUILD/tests/$suite" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks|:[EF]:' | sed "s/^/[$suite] /"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks' | tail -1)
    if [ -n "$line" ]; then
        n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
        e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
        passed=$((passed + n - f - e))
        failed=$((failed + f + e))
    fi
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        bad+=("$suite")
        [ -z "$line" ] && { failed=$((failed + 1)); printf '%s\n' "$out" | tail -20; }
    fi
done
echo "tests: $passed passed, $failed failed"
if [ ${#bad[@]} -gt 0 ]; then
    echo "failing suites: ${bad[*]}"
    exit 1
fi

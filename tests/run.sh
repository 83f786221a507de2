#!/bin/bash
# SPDX-License-Identifier: MIT
# run.sh - run every test tier and print the closing line `N passed, N failed`.
#   unit tests (cmocka binaries), fuzz corpus replay, end-to-end scripts.
# MV_BUILD names the build directory (build or build-san).
set -u
cd "$(dirname "$0")/.."
B=${MV_BUILD:-build}
export MV_BIN="$PWD/$B/mailvault"
export MV_ROOT="$PWD"
if [ "${SAN:-}" = 1 ]; then
    export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=99"
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=99"
fi
passed=0
failed=0
failures=()
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

count_cmocka() { # file -> adds to passed/failed
    local p f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    echo "${p:-0} ${f:-0}"
}

# tally NAME RC P F - add one runner's counts (a non-zero exit with no
# failure counted is one failure: a crash) and show its log on failure.
tally() {
    local name=$1 rc=$2 p=${3:-0} f=${4:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$name")
        cat "$log/$name"
    fi
    T_P=$p T_F=$f
}

for t in "$B"/tests/*_test; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" >"$log/$name" 2>&1
    rc=$?
    read -r p f < <(count_cmocka "$log/$name")
    tally "$name" "$rc" "$p" "$f"
    echo "unit   $name: $T_P passed, $T_F failed"
done

for r in "$B"/replay/fuzz_*; do
    [ -x "$r" ] || continue
    name=$(basename "$r")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    if "$r" "$corpus" >"$log/$name" 2>&1; then
        passed=$((passed + 1))
        echo "replay $name: ok ($(ls "$corpus" | wc -l) inputs)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        tail -20 "$log/$name"
        echo "replay $name: FAILED"
    fi
done

for e in tests/e2e/t*.sh; do
    name=$(basename "$e" .sh)
    start=$(date +%s)
    bash "$e" >"$log/$name" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log/$name" | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    tally "$name" "$rc" "$p" "$f"
    echo "e2e    $name: $T_P passed, $T_F failed ($(($(date +%s) - start)) s)"
done

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

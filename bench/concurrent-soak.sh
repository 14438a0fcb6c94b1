#!/usr/bin/env bash
# Soak test of the concurrent mark: runs runtime/tests/concurrent.rs many
# times under stress + checkmark (a cycle every 50 allocations, each mark
# verified by a stop-the-world re-mark), optionally next to a busy loop
# that competes for the CPUs. Bugs in the mark's handshakes, barrier and
# termination show up here as a checkmark abort ("reachable objects were
# not marked") or a hang, typically once in 100-500 runs, never in a single
# run: the three lost-object bugs fixed on 2026-12-02 were found this way.
#
#   bench/concurrent-soak.sh              # 3000 runs with a CPU hog (~10-25 min on 2 cores)
#   bench/concurrent-soak.sh 200          # CI's short version
#   bench/concurrent-soak.sh 500 --no-hog
#
# Stops at the first failing run and keeps its output in
# target/concurrent-soak/fail-<run>.log. Exit status 1 if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3000}
hog=1
[ "${2:-}" = "--no-hog" ] && hog=0

out=target/concurrent-soak
mkdir -p "$out"
# The test binary (debug profile, as CI's stress pass builds it).
bin=$(cargo test -p spanheap --test concurrent --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*concurrent-[^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "could not build the concurrent test binary" >&2
    exit 2
fi

hog_pid=
if [ "$hog" = 1 ]; then
    sh -c 'while :; do :; done' &
    hog_pid=$!
    trap 'kill "$hog_pid" 2>/dev/null || true' EXIT
fi

start=$(date +%s)
failed=0
for i in $(seq 1 "$runs"); do
    # A run takes well under a second; 300 s means a hang.
    if ! SPANHEAP_GCSTRESS=50 SPANHEAP_CHECKMARK=1 timeout 300 "$bin" --test-threads=2 >"$out/run.log" 2>&1; then
        cp "$out/run.log" "$out/fail-$i.log"
        echo "run $i/$runs FAILED (output in $out/fail-$i.log):"
        grep -E 'fatal|panicked|has been running' "$out/fail-$i.log" | head -n 5 || true
        failed=1
        break
    fi
    if [ $((i % 100)) = 0 ]; then
        echo "  $i/$runs runs passed ($(($(date +%s) - start)) s)"
    fi
done
if [ "$failed" = 0 ]; then
    echo "concurrent soak: $runs runs passed in $(($(date +%s) - start)) s (CPU hog: $([ "$hog" = 1 ] && echo on || echo off))"
fi
exit "$failed"

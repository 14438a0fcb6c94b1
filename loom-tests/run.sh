#!/usr/bin/env bash
# Runs every loom model in loom-tests/ against the real heap, collector and
# runtime code (RUSTFLAGS="--cfg loom" switches the sync shim to loom), then
# lists which model caught which broken variant.
#
# Each model has a correct test (`explore(..) > 1`: it must pass and see
# concurrency) and one test per broken variant (`sync::broken::is("..")`
# switched on: loom must report a failure, or the test fails). All of them
# are ordinary tests in one build, so this is one `cargo test`.
#
#   bash loom-tests/run.sh                      # the suite, preemption bound 2
#   LOOM_MAX_PREEMPTIONS=3 bash loom-tests/run.sh   # deeper (much slower)
#   bash loom-tests/run.sh --test barrier       # one file
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
mkdir -p target
log=target/loom-run.log
# A separate target dir: --cfg loom changes every crate's build.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p spanheap-loom-tests "$@" -- --nocapture --test-threads=2 2>&1 | tee "$log"
echo
echo "=== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS) ==="
grep -E "^model .*(explored|executions)|interleavings" "$log" | sed 's/^test [a-z0-9_]* \.\.\. //' || true
echo
echo "=== broken variants and the model that caught each ==="
grep -oE "model .* caught .*" "$log" || true

#!/usr/bin/env bash
# Fuzzes the shadow model (fuzz_targets/shadow_model.rs) for SECONDS
# (default 30), with libFuzzer under AddressSanitizer (cargo fuzz's
# default). Installs what it needs if missing: a nightly toolchain
# (cargo fuzz needs -Zsanitizer) and cargo-fuzz. The corpus is kept in
# fuzz/corpus/shadow_model (not committed); a crash leaves its input in
# fuzz/artifacts/shadow_model/ and fails the script. Prints the number of
# executions and their rate.
#
#   bash fuzz/run.sh [SECONDS]
#   cargo +nightly fuzz run shadow_model artifacts/shadow_model/crash-...   # replay
set -euo pipefail
secs="${1:-30}"
cd "$(dirname "$0")"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
# With cargo-fuzz installed, `cargo fuzz run`; without it (CI, a fresh
# machine: installing it takes ~5 min on 2 cores), the same build by hand:
# cargo-fuzz's coverage and sanitizer flags, then the libFuzzer binary.
# (FUZZ_DIRECT=1 takes the second way even with cargo-fuzz installed.)
if [ -z "${FUZZ_DIRECT:-}" ] && cargo fuzz --version >/dev/null 2>&1; then
    fuzz_cmd=(cargo +nightly fuzz run shadow_model corpus/shadow_model --)
else
    echo "fuzz/run.sh: cargo-fuzz not installed; building the target with its flags directly"
    RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Zsanitizer=address -Cdebug-assertions -Coverflow-checks" \
        cargo +nightly build --release --target x86_64-unknown-linux-gnu --bin shadow_model
    mkdir -p artifacts/shadow_model
    fuzz_cmd=(target/x86_64-unknown-linux-gnu/release/shadow_model corpus/shadow_model
        -artifact_prefix=artifacts/shadow_model/)
fi

mkdir -p corpus/shadow_model
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# -rss_limit_mb: every run builds a heap (two threads, arenas reserved
# lazily); ASan's shadow memory raises the resident size.
# -len_control=0: inputs up to -max_len from the start (libFuzzer would
# otherwise grow them slowly, and a short run would try only a handful of
# operations per input).
set +e
"${fuzz_cmd[@]}" \
    -max_total_time="$secs" -max_len=1024 -len_control=0 \
    -rss_limit_mb=4096 -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(#[0-9]+\s+(INITED|DONE|NEW)|==|thread|shadow model|SUMMARY|stat::)' | tail -40
status="${PIPESTATUS[0]}"
set -e
execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)"
rate="$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)"
if [ "$status" != 0 ]; then
    grep -E 'Test unit written to|panicked at|^shadow model' "$log" || true
fi
echo "fuzz shadow_model: ${execs:-?} executions (limit ${secs}s, ${rate:-?} exec/s), exit status $status"
exit "$status"

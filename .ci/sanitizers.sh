#!/usr/bin/env bash
# The test suite under AddressSanitizer (with LeakSanitizer) and a small
# subset of it under valgrind's memcheck (issue 8, "Reliability").
#
#   bash .ci/sanitizers.sh asan       # heap, gc, runtime tests (again under
#                                     # GC stress + checkmark), the graph demo
#                                     # test, the Lox conformance files: ASan+LSan
#   bash .ci/sanitizers.sh valgrind   # seven test binaries under memcheck
#   bash .ci/sanitizers.sh all        # both
#
# What each tool can and cannot see here:
# - The heap maps its own 64 MiB arenas (mmap), which either tool would see
#   as one addressable mapping. Both passes build with a feature (`asan`,
#   `valgrind`) that makes the heap describe its objects to the tool
#   (heap/src/sanitizer.rs): freed and never-allocated slots are poisoned,
#   so a read of a freed slot inside a span is reported too. They also see
#   everything the system allocator hands out: span and arena metadata
#   (`Box`, `Vec`, `FixAlloc` chunks), the payloads that objects own (a
#   `Vec` or `Box` inside a `Gc` object), drop glue run twice (a double
#   free of such a payload), finalizer closures, root and weak tables, and
#   leaks of any of them after a heap is dropped.
# - ASan runs on the nightly toolchain (`-Zsanitizer=address`) with the
#   explicit `--target`, which keeps proc-macros (spanheap-derive) and
#   build scripts uninstrumented; std is not instrumented (no build-std), so
#   bugs inside std's own code are missed. LeakSanitizer is part of the
#   ASan runtime on x86_64 Linux and runs at the exit of every test binary.
#   No suppressions: every leak it reported so far was real (see
#   docs/reliability.md). Tests that re-run their own binary in a child
#   process (checkmark, exhaustion's RLIMIT_AS cap) work under ASan as is.
# - valgrind serialises threads: it finds invalid accesses and leaks, not
#   races. It runs stable, dev-profile test binaries of the heap and
#   runtime crates built with the `valgrind` feature.
#
# Output ends with one "sanitizers: N passed, N failed" line (test cases
# over every binary and tool that ran). Logs: target/asan/asan.log and
# target/valgrind/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s ===\n' "$*"; }

passed=0
failed=0
binaries=0

# Adds up cargo/libtest "test result:" lines of a log into passed/failed.
count_results() {
    local p f
    read -r p f < <(awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^passed;?$/) p += $(i-1)
                if ($i ~ /^failed;?$/) f += $(i-1)
            }
        } END { printf "%d %d\n", p, f }' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
}

ensure_nightly() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal
    fi
}

ensure_valgrind() {
    # valgrind, and jq to find the test binaries in cargo's JSON output.
    command -v valgrind >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind jq
    else
        echo "valgrind or jq is missing and this is not root: install them (apt-get install valgrind jq)" >&2
        exit 1
    fi
}

run_asan() {
    step "AddressSanitizer + LeakSanitizer (nightly, -Zsanitizer=address)"
    ensure_nightly
    local host
    host=$(rustc +nightly -vV | sed -n 's/^host: //p')
    # Its own target dir: instrumented artifacts never mix with the
    # ordinary ones (and a rebuild of those does not discard these).
    export CARGO_TARGET_DIR=target/asan
    export RUSTFLAGS="-Zsanitizer=address"
    export RUSTDOCFLAGS="-Zsanitizer=address"
    # detect_leaks: LeakSanitizer at the exit of every test binary (the
    # default on x86_64 Linux; set so that it stays on). A leak report
    # fails the binary (exit 23). detect_stack_use_after_return: also
    # catch references to dead stack frames. abort_on_error=0: a report
    # exits with a readable stack instead of a core dump. Child processes
    # (the checkmark and exhaustion tests re-run their own binary) inherit
    # these and are instrumented the same way.
    export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=0"
    mkdir -p target/asan
    local log=target/asan/asan.log
    : >"$log"
    rustc +nightly --version | tee -a "$log"
    # Every test target of the heap and runtime crates (gc has unit tests
    # only), less the trybuild compile-fail test: it compiles programs
    # that must not compile, and runs none of ours.
    # Also left out: deep.rs (10 M objects and a 10 M-deep Box chain:
    # minutes under ASan, and it exercises stack depth, which ASan's
    # larger frames change) and bounded_memory.rs (it measures RSS, which
    # ASan's quarantine of freed system memory inflates by design).
    local tests=() f t
    for f in heap/tests/*.rs runtime/tests/*.rs; do
        t=$(basename "$f" .rs)
        case "$t" in compile_fail | deep | bounded_memory) continue ;; esac
        tests+=(--test "$t")
    done
    # The same package set in every run below, so that all three share
    # one build (a different set would unify features differently).
    # --features spanheap/asan: the heap tells ASan which bytes of its
    # arenas are objects (heap/src/sanitizer.rs), so a read of a freed or
    # never-allocated slot is reported like a use-after-free of a malloc
    # block; without it ASan sees each arena as one addressable mapping.
    local pkgs=(-p spanheap-heap -p spanheap-gc -p spanheap -p spanheap-examples --features spanheap/asan)
    local status=0
    nice -n 10 cargo +nightly test --target "$host" --no-fail-fast \
        "${pkgs[@]}" --lib "${tests[@]}" --test graph 2>&1 |
        tee -a "$log" || status=1
    # The typed-heap tests again with a collection every 50 allocations
    # and every mark re-checked: many more sweeps, so many more objects'
    # drop glue run (and run once) under ASan.
    local rt_tests=()
    for f in runtime/tests/*.rs; do
        t=$(basename "$f" .rs)
        case "$t" in compile_fail | deep | bounded_memory) continue ;; esac
        rt_tests+=(--test "$t")
    done
    SPANHEAP_GCSTRESS=50 SPANHEAP_CHECKMARK=1 nice -n 10 cargo +nightly test \
        --target "$host" --no-fail-fast "${pkgs[@]}" "${rt_tests[@]}" 2>&1 |
        tee -a "$log" || status=1
    # The Lox interpreter (ASan-built too) over its 202 conformance files,
    # each run normally and with --gc-stress; a sanitizer report in the
    # child fails its file (exit code and stderr are compared). Only the
    # `programs` test: the benchmark scripts and the 300,000-object
    # gctrace run under --gc-stress exceed their time limits under ASan.
    nice -n 10 cargo +nightly test --target "$host" "${pkgs[@]}" --test lox \
        -- --exact programs 2>&1 | tee -a "$log" || status=1
    binaries=$((binaries + $(grep -c '^     Running ' "$log" || true)))
    count_results "$log"
    local reports
    reports=$(grep -c -E '^==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)' "$log" || true)
    echo "asan: $reports sanitizer reports (log: $log)"
    [ "$reports" = 0 ] || status=1
    return $status
}

run_valgrind() {
    step "valgrind memcheck (a small subset, stable toolchain, dev profile)"
    ensure_valgrind
    valgrind --version
    mkdir -p target/valgrind
    # Each entry: package, test target, and libtest arguments (a filter
    # keeps the slow ones out: valgrind runs ~20-50x slower).
    # Not runtime's `collect`: its pacing tests bound the heap's peak,
    # which a collector thread starved by valgrind's one-thread-at-a-time
    # scheduling overshoots (`gc_off_collects_only_at_the_memory_limit`
    # failed so once), and it took 1-4 minutes of the budget.
    local subset=(
        "spanheap-heap alloc"
        "spanheap-heap threads"
        "spanheap finalizer"
        "spanheap derive"
        "spanheap ephemeron"
        "spanheap any"
        "spanheap census"
    )
    # One build for the whole subset, with the valgrind feature: the heap
    # describes its objects to memcheck (heap/src/sanitizer.rs), so a read
    # of a freed slot is an "Invalid read" (heap `alloc`'s
    # valgrind_reports_a_read_of_a_freed_slot shows it); without it
    # memcheck sees each arena as one addressable mapping.
    local names=() entry
    for entry in "${subset[@]}"; do
        names+=(--test "${entry#* }")
    done
    local artifacts
    artifacts=$(cargo test -p spanheap-heap -p spanheap --features spanheap/valgrind \
        "${names[@]}" --no-run --message-format=json)
    local status=0 pkg test exe log
    for entry in "${subset[@]}"; do
        read -r pkg test <<<"$entry"
        exe=$(jq -r --arg p "$pkg" --arg t "$test" 'select(.reason == "compiler-artifact"
                and .target.name == $t and .target.kind == ["test"]
                and (.package_id | contains("#" + $p + "@")))
            | .executable' <<<"$artifacts" | head -n 1)
        if [ -z "$exe" ]; then
            echo "valgrind: no test binary for $pkg --test $test" >&2
            status=1
            continue
        fi
        log=target/valgrind/$test.log
        echo "--- $pkg --test $test: $exe"
        binaries=$((binaries + 1))
        # Leaks: only "definitely lost" fails (threads still exiting when
        # the process ends leave "possibly lost" stacks). One test thread:
        # valgrind runs one thread at a time anyway.
        nice -n 10 valgrind -q --error-exitcode=1 --leak-check=full \
            --show-leak-kinds=definite --errors-for-leak-kinds=definite \
            "$exe" --test-threads=1 >"$log" 2>&1 || status=1
        grep -E '^test result:|^==[0-9]+== [A-Z]' "$log" || true
        count_results "$log"
    done
    return $status
}

mode=${1:-all}
status=0
case "$mode" in
asan) run_asan || status=1 ;;
valgrind) run_valgrind || status=1 ;;
all)
    run_asan || status=1
    run_valgrind || status=1
    ;;
*)
    echo "usage: $0 asan|valgrind|all" >&2
    exit 2
    ;;
esac
echo "sanitizers ($mode): $binaries test binaries"
echo "sanitizers: $passed passed, $failed failed"
exit $status

#!/usr/bin/env bash
# The side-by-side benchmarks of issue 7, in one command: installs the
# non-Rust peers (Go, bdwgc) if missing, builds every peer and the Lox
# interpreter, runs every workload on every peer, and writes the tables
# and charts.
#
#   bench/run.sh                  # full sizes, 3 runs per row: rewrites the
#                                 # generated part of docs/benchmarks.md and
#                                 # docs/benchmarks/*.svg (about an hour+)
#   bench/run.sh --quick          # small sizes, one run each; checks that all
#                                 # peers print the same result lines (CI);
#                                 # writes target/bench-quick/
#   bench/run.sh --only binary-trees,alloc --repeats 5
#   CLOX=/path/to/clox bench/run.sh --only lox   # adds clox to the Lox table
#
# Every argument goes to the orchestrator, harness-bench (its options:
# --quick, --repeats N, --only ID[,ID...] (group id prefixes: binary-trees,
# gcbench, alloc, latency, mark, go-malloc, lox), --out FILE, --charts DIR,
# --limit-s S (kill a run after S seconds, default 900), --long-s S (a row
# whose first run takes longer runs once, default 60)). See
# bench/harness/README.md. Needs cargo; installs golang-go, libgc-dev,
# pkg-config and build-essential with apt-get when they are missing (as
# root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! bash bench/harness/install-peers.sh >/dev/null 2>&1; then
    bash bench/harness/install-peers.sh --yes
fi
cargo build --release --manifest-path bench/harness/Cargo.toml --bins
bash bench/harness/build-peers.sh
cargo build --release -p spanheap-examples --bin lox
exec bench/harness/target/release/harness-bench "$@"

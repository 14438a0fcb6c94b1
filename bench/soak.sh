#!/usr/bin/env bash
# Soak run of the mixed workload (examples/src/soak.rs): two mutator
# threads for a long time, one sample line per minute; fails (exit 1) if
# a checksum breaks, a pause exceeds the bound or the RSS keeps growing.
#
#   bench/soak.sh            # 30 minutes (the run docs/reliability.md reports)
#   bench/soak.sh 30s        # CI's short version
#   bench/soak.sh 10m --threads 4 --seed 7
#
# Builds in release; the output goes to the terminal and to target/soak.log.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-30m}
shift || true

cargo build --release -p spanheap-examples --bin soak
mkdir -p target
# pipefail: the soak's exit status survives the tee.
target/release/soak --duration "$duration" "$@" 2>&1 | tee target/soak.log

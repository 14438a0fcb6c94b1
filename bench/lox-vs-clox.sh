#!/usr/bin/env bash
# The Lox interpreter (examples/src/lox) against clox, the C VM of
# *Crafting Interpreters*, on the benchmarks in examples/lox/bench:
# wall time per script, median of N runs (default 5), interleaved.
#
#   CLOX=/path/to/clox bash bench/lox-vs-clox.sh [runs]
#
# clox is not part of this repository: build it from the book's C sources
# (github.com/munificent/craftinginterpreters, directory c/), e.g.
#   gcc -std=c99 -O2 -o clox c/*.c
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
clox="${CLOX:?set CLOX to a clox binary}"
cargo build --release -q -p spanheap-examples --bin lox
lox=target/release/lox
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "| script | clox (s) | lox (s) | lox / clox |"
echo "|---|---|---|---|"
for f in examples/lox/bench/*.lox; do
    a=(); b=()
    for _ in $(seq "$runs"); do
        a+=("$( { /usr/bin/time -f "%e" "$clox" "$f" > /dev/null; } 2>&1 | tail -n 1)")
        b+=("$( { /usr/bin/time -f "%e" "$lox" "$f" > /dev/null; } 2>&1 | tail -n 1)")
    done
    ma=$(printf "%s\n" "${a[@]}" | median)
    mb=$(printf "%s\n" "${b[@]}" | median)
    printf "| %s | %s | %s | %.2f |\n" "$(basename "$f" .lox)" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
done

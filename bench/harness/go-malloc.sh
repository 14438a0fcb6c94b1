#!/usr/bin/env bash
# go-malloc.sh: runs the Go runtime's own malloc benchmarks with the
# installed Go (Debian's golang-go; issue 7) and summarises them. A
# measurement tool, not a harness workload: the spanheap side of the same
# shapes is `harness go-malloc <peer>` (README.md, src/go_malloc.rs).
#
#   bench/harness/go-malloc.sh [--quick] [--escape] [N]
#
# Runs, offline (GOPROXY=off, GOFLAGS cleared; the runtime package and its
# tests are in GOROOT):
#
#   go test -run '^$' -benchmem \
#     -bench '^BenchmarkMalloc(8|16|TypeInfo8|TypeInfo16|LargeStruct)$' \
#     -count N runtime
#
# N (default 5) is how many times each benchmark runs, each with go test's
# default -benchtime (1s). --quick: -benchtime=1000x -count 1 (checks that
# the tool works; the numbers mean nothing). --escape: run
# go/mallocescape's versions instead (the same five shapes, but the object
# escapes to the heap; see below) with the same flags.
#
# stdout, one line per benchmark, in this order: Malloc8, Malloc16,
# MallocTypeInfo8, MallocTypeInfo16, MallocLargeStruct:
#
#   go-malloc <Name> <median ns/op> <min ns/op> <max ns/op>
#
# (`go-malloc-escape` instead of `go-malloc` with --escape; <Name> without
# the `Benchmark` prefix and the `-GOMAXPROCS` suffix; ns/op as go test
# prints them; the median of an even count is the mean of the middle two).
# stderr: go test's header and, per benchmark, `allocs_per_op <Name> <v>`
# (the largest -benchmem allocs/op seen) and the go version used.
# Exit status: go test's, or 2 for bad arguments.
#
# Caveat (measured with Go 1.19.8): in the runtime's versions each new
# object's address only flows into a uintptr, so escape analysis keeps the
# object on the stack and -benchmem reports 0 allocs/op for all five:
# they time stack zeroing, not mallocgc. --escape measures mallocgc
# (1 allocs/op) and is the one to compare with a heap allocator.
#
# GOCACHE: go's default, unless that is not writable; then
# bench/harness/target-peers/gocache. Compiling the runtime's test binary
# takes about 30 s on a cold cache (2 cores), then each -count round about
# 7 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
    echo "usage: go-malloc.sh [--quick] [--escape] [N]   (N: runs per benchmark, default 5)"
}

count=5
quick=0
escape=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --escape) escape=1 ;;
        -h|--help) usage; exit 0 ;;
        ''|*[!0-9]*) echo "go-malloc.sh: bad argument: $arg" >&2; usage >&2; exit 2 ;;
        *) count=$arg ;;
    esac
done
if [ "$count" -lt 1 ]; then
    echo "go-malloc.sh: N must be at least 1" >&2
    usage >&2
    exit 2
fi
if ! command -v go >/dev/null 2>&1; then
    echo "go-malloc.sh: no go on PATH (apt-get install golang-go)" >&2
    exit 1
fi

export GOPROXY=off GOFLAGS=
cache=$(go env GOCACHE)
if ! { mkdir -p "$cache" && [ -w "$cache" ]; } 2>/dev/null; then
    export GOCACHE="$here/target-peers/gocache"
    mkdir -p "$GOCACHE"
    [ -e "$here/target-peers/.gitignore" ] || echo '*' > "$here/target-peers/.gitignore"
fi

flags=(-run '^$' -benchmem -bench '^BenchmarkMalloc(8|16|TypeInfo8|TypeInfo16|LargeStruct)$')
if [ "$quick" = 1 ]; then
    flags+=(-benchtime=1000x -count 1)
else
    flags+=(-count "$count")
fi

label=go-malloc
if [ "$escape" = 1 ]; then
    label=go-malloc-escape
    cd "$here/go"
    pkg=./mallocescape
else
    pkg=runtime
fi

echo "go-malloc.sh: $(go env GOVERSION), go test ${flags[*]} $pkg" >&2
raw=$(go test "${flags[@]}" "$pkg")

# Lines look like: BenchmarkMalloc8-2  1000000000  0.7529 ns/op  0 B/op  0 allocs/op
printf '%s\n' "$raw" | grep -v '^Benchmark' >&2 || true
for name in Malloc8 Malloc16 MallocTypeInfo8 MallocTypeInfo16 MallocLargeStruct; do
    rows=$(printf '%s\n' "$raw" | awk -v want="Benchmark$name" '
        { n = $1; sub(/-[0-9]+$/, "", n) }
        n == want && $4 == "ns/op" {
            allocs = ""
            for (i = 5; i < NF; i++) if ($(i + 1) == "allocs/op") allocs = $i
            print $3, allocs
        }')
    if [ -z "$rows" ]; then
        echo "go-malloc.sh: no result for Benchmark$name" >&2
        exit 1
    fi
    printf '%s\n' "$rows" | sort -g | awk -v label="$label" -v name="$name" '
        { v[NR] = $1; if ($2 != "" && $2 + 0 > a + 0) a = $2 }
        END {
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s %s %s %s\n", label, name, med, v[1], v[NR]
            printf "allocs_per_op %s %s\n", name, (a == "" ? 0 : a) > "/dev/stderr"
        }'
done

// The mark workload in Go: the throughput of one forced full collection
// of a large, fully live tree (the exact rules are at the top of the Rust
// harness's src/mark/mod.rs; this file follows them).
//
//	harness-go mark [--shape sequential|random] [--heap-mib M] [--threads W] [--quick]
//
// The live heap: N = M * 2^20 / 32 nodes (M = 64 by default, 4 with
// --quick unless --heap-mib is given), each a 32-byte struct {left, right
// *node; value, pad uint64} (Go's 32-byte size class: no header). The
// nodes form a complete binary tree in array numbering — node k's children
// are 2k+1 and 2k+2 when < N — and node k's value is k.
//
// Layout: the i-th allocated node is node order[i]. "sequential":
// order[i] = i. "random": a Fisher-Yates shuffle of 0..N-1 driven by
// SplitMix64 seeded with 0x6d61726b: for i from N-1 down to 1, j =
// below(i+1), swap order[i] and order[j], where below(m) is the high 64
// bits of next()*m (math/bits.Mul64). The layout_check metric, the
// wrapping sum of (i+1)*order[i], is the same in Rust, Go and C.
//
// Build: a []*node of N entries (indexed by node number) holds the nodes
// while node order[i] is allocated (&node{value: order[i]}) for i in
// 0..N, then each node's children are stored into it (plain field stores,
// with Go's write barrier if a cycle is marking), then the slice is
// dropped and only node 0 is kept, so the collector has to follow the
// pointers. Collections during the build are the runtime's own (GOGC).
//
// Measurement: runtime.GC() once (preliminary: it frees the slice and
// finishes the sweep, so the heap is steady), then runtime.GC() again,
// timed: collect_ms. runtime.GC blocks until the cycle's mark is done and
// then sweeps every span before returning, so collect_ms includes a full
// sweep; Go does not report one forced cycle's mark time (gctrace does,
// on its own stderr lines), so there is no mark_ms and
// mb_per_s_per_worker uses collect_ms. heap_bytes is MemStats.HeapAlloc
// after the collection. Then the tree is walked from the root, summing
// value: N(N-1)/2.
//
// --threads W: the marker workers, runtime.GOMAXPROCS(W). With the
// mutator blocked in runtime.GC, the runtime marks on every P: the
// dedicated background worker (25% of GOMAXPROCS, rounded) and idle-P
// workers for the others.
//
// Output: "mark {shape} heap_mib {M} nodes {N} sum {S}".
// Metrics: collect_ms, heap_bytes, mb_per_s_per_worker, mark_workers,
// build_ms, walk_ms, layout_check (and gc_cycles, max_pause_ns from
// pauses.go).
package main

import (
	"bufio"
	"fmt"
	"math/bits"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	markNodeBytes  = 32
	markSeed       = 0x6d61726b
	markDefaultMiB = 64
	markQuickMiB   = 4
)

type markNode struct {
	left, right *markNode
	value, pad  uint64
}

// markRand is SplitMix64 (Vigna's splitmix64.c).
type markRand struct{ state uint64 }

func (r *markRand) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a number in [0, m): the high word of next() * m.
func (r *markRand) below(m uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), m)
	return hi
}

func markHeapMiB(opt options) int {
	switch {
	case opt.heapMiB > 0:
		return opt.heapMiB
	case opt.quick:
		return markQuickMiB
	default:
		return markDefaultMiB
	}
}

// allocOrder: the i-th allocated node is node order[i].
func allocOrder(shape string, n int) []uint32 {
	order := make([]uint32, n)
	for i := range order {
		order[i] = uint32(i)
	}
	if shape == "random" {
		r := markRand{state: markSeed}
		for i := n - 1; i >= 1; i-- {
			j := r.below(uint64(i) + 1)
			order[i], order[j] = order[j], order[i]
		}
	}
	return order
}

func buildTree(order []uint32) *markNode {
	n := len(order)
	nodes := make([]*markNode, n)
	for _, k := range order {
		nodes[k] = &markNode{value: uint64(k)}
	}
	for k, nd := range nodes {
		if l := 2*k + 1; l < n {
			nd.left = nodes[l]
		}
		if r := 2*k + 2; r < n {
			nd.right = nodes[r]
		}
	}
	if n == 0 {
		return nil
	}
	return nodes[0] // nodes is dead once this returns
}

func sumTree(nd *markNode) uint64 {
	if nd == nil {
		return 0
	}
	return nd.value + sumTree(nd.left) + sumTree(nd.right)
}

func markMs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func markBench(opt options, out *bufio.Writer) error {
	workers := opt.threads
	runtime.GOMAXPROCS(workers)
	shape := opt.shape
	if shape == "" {
		shape = "sequential"
	}
	mib := markHeapMiB(opt)
	n := mib * (1 << 20) / markNodeBytes

	order := allocOrder(shape, n)
	var check uint64
	for i, k := range order {
		check += uint64(i+1) * uint64(k)
	}
	t0 := time.Now()
	root := buildTree(order)
	build := time.Since(t0)

	runtime.GC()
	t0 = time.Now()
	runtime.GC()
	collect := time.Since(t0)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	t0 = time.Now()
	sum := sumTree(root)
	walk := time.Since(t0)
	runtime.KeepAlive(root)

	if _, err := fmt.Fprintf(out, "mark %s heap_mib %d nodes %d sum %d\n", shape, mib, n, sum); err != nil {
		return err
	}
	metric("collect_ms", markMs(collect))
	metric("heap_bytes", ms0.HeapAlloc)
	secs := collect.Seconds()
	if secs < 1e-9 {
		secs = 1e-9
	}
	metric("mb_per_s_per_worker", float64(n*markNodeBytes)/1e6/secs/float64(workers))
	metric("mark_workers", workers)
	metric("build_ms", markMs(build))
	metric("walk_ms", markMs(walk))
	metric("layout_check", check)
	return nil
}

// isMarkFlag: --shape and --heap-mib, with their value as the next
// argument or after '='.
func isMarkFlag(arg string) bool {
	for _, f := range []string{"--shape", "--heap-mib"} {
		if arg == f || strings.HasPrefix(arg, f+"=") {
			return true
		}
	}
	return false
}

// parseMarkFlag reads the mark flag at args[i] into opt; it returns the
// index of the last argument it used, or a problem for the usage message.
func parseMarkFlag(args []string, i int, opt *options) (int, string) {
	name, value, found := strings.Cut(args[i], "=")
	if !found {
		i++
		if i >= len(args) {
			return i, name + " needs a value"
		}
		value = args[i]
	}
	switch name {
	case "--shape":
		if value != "sequential" && value != "random" {
			return i, "--shape takes sequential or random"
		}
		opt.shape = value
	default:
		m, err := strconv.Atoi(value)
		if err != nil || m < 1 || m > 65536 {
			return i, "--heap-mib takes a number from 1 to 65536"
		}
		opt.heapMiB = m
	}
	return i, ""
}

// markFlagsProblem: --shape and --heap-mib apply to mark only.
func markFlagsProblem(name string, opt options) string {
	if name != "mark" && (opt.shape != "" || opt.heapMiB != 0) {
		return "--shape and --heap-mib apply to the mark workload only"
	}
	return ""
}

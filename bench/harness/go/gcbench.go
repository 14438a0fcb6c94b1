// GCBench in Go.
//
// The GC benchmark of John Ellis and Pete Kovac (Java, Post Communications,
// 1997), as adapted to C by Hans Boehm (GCBench.c,
// https://hboehm.info/gc/gc_bench.html). Boehm's own caveats apply: it is
// "too regular" and now "most useful as a sanity test". Parameters as in
// the original:
//
//	stretch tree depth 18, long-lived tree depth 16, long-lived array of
//	500,000 doubles, tree depths 4, 6, ..., 16,
//	TreeSize(i) = 2^(i+1) - 1, NumIters(i) = 2 * TreeSize(18) / TreeSize(i);
//
// with --quick: stretch 12, long-lived 10, array 5,000, depths 4, 6, 8
// (NumIters then uses TreeSize(12)).
//
//  1. A stretch tree is built bottom-up and dropped.
//  2. A long-lived tree is built top-down and a long-lived []float64 is
//     filled with array[i] = 1/i (array[0] = 0); both stay live to the end.
//     (The original fills half the array and leaves array[0] = 1/0; every
//     peer of the harness fills all of it.)
//  3. For each depth d: NumIters(d) trees built top-down (a node is
//     allocated with empty children, then populate stores two new nodes
//     into it and recurses: new objects stored into older ones, which is
//     where Go's write barrier works while a cycle is marking), then as
//     many built bottom-up (makeTree: children first), each tree dropped
//     before the next. Each loop is timed.
//
// The node is {left, right, i, j} with i, j int32 (Java's int, C's int:
// a 24-byte node, as in the original).
//
// Output (stdout):
//
//	stretch depth 18
//	long-lived tree depth 16, array 500000
//	depth 4: 33824 trees top-down, 33824 bottom-up, check 31
//	...
//	long-lived nodes 131071, array[1000] 0.001000
//
// "check" is the node count of the last bottom-up tree, walked; the last
// line walks the long-lived tree and prints array[min(1000, A-1)].
// Metrics (stderr): topdown_ms_d<d>, bottomup_ms_d<d>.
//
// --threads 2: after steps 1 and 2, two goroutines each run the whole loop
// of step 3 with ceil(NumIters(d) / 2) trees of each kind per depth; the
// long-lived structures are shared (live throughout). Every NumIters is
// even at both sizes, so the printed count is the total built. The
// per-depth times are the slower goroutine's.
package main

import (
	"bufio"
	"fmt"
	"sync"
	"time"
)

type gcNode struct {
	left, right *gcNode
	i, j        int32
}

type gcParams struct {
	stretchDepth, longLivedDepth, arraySize, minDepth, maxDepth int
}

var (
	gcFull  = gcParams{18, 16, 500000, 4, 16}
	gcQuick = gcParams{12, 10, 5000, 4, 8}
)

func treeSize(depth int) int { return 1<<(depth+1) - 1 }

func (p gcParams) numIters(depth int) int {
	return 2 * treeSize(p.stretchDepth) / treeSize(depth)
}

// populate gives an existing node two new children, then recurses.
func populate(depth int, n *gcNode) {
	if depth <= 0 {
		return
	}
	depth--
	n.left = &gcNode{}
	n.right = &gcNode{}
	populate(depth, n.left)
	populate(depth, n.right)
}

// makeTree builds the children first, then the node that holds them.
func makeTree(depth int) *gcNode {
	if depth <= 0 {
		return &gcNode{}
	}
	return &gcNode{left: makeTree(depth - 1), right: makeTree(depth - 1)}
}

func countNodes(n *gcNode) int {
	if n == nil {
		return 0
	}
	return 1 + countNodes(n.left) + countNodes(n.right)
}

// depthResult is one goroutine's record of one depth.
type depthResult struct {
	iters             int
	topDown, bottomUp time.Duration
	check             int // nodes in the last bottom-up tree
}

// timeConstruction is the original's TimeConstruction, for every depth.
func timeConstruction(p gcParams, workers int) []depthResult {
	var results []depthResult
	for d := p.minDepth; d <= p.maxDepth; d += 2 {
		n := (p.numIters(d) + workers - 1) / workers
		var tree *gcNode

		start := time.Now()
		for i := 0; i < n; i++ {
			tree = &gcNode{}
			populate(d, tree)
		}
		topDown := time.Since(start)

		start = time.Now()
		for i := 0; i < n; i++ {
			tree = makeTree(d)
		}
		bottomUp := time.Since(start)

		results = append(results, depthResult{n, topDown, bottomUp, countNodes(tree)})
	}
	return results
}

func gcBench(opt options, out *bufio.Writer) error {
	p := gcFull
	if opt.quick {
		p = gcQuick
	}

	// Stretch the heap: build a big tree and drop it.
	_ = makeTree(p.stretchDepth)
	fmt.Fprintf(out, "stretch depth %d\n", p.stretchDepth)

	// Long-lived structures, live until the end of this function.
	longLived := &gcNode{}
	populate(p.longLivedDepth, longLived)
	array := make([]float64, p.arraySize)
	for i := 1; i < p.arraySize; i++ {
		array[i] = 1.0 / float64(i)
	}
	fmt.Fprintf(out, "long-lived tree depth %d, array %d\n", p.longLivedDepth, p.arraySize)

	results := make([][]depthResult, opt.threads)
	if opt.threads == 1 {
		results[0] = timeConstruction(p, 1)
	} else {
		var wg sync.WaitGroup
		for t := range results {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				results[t] = timeConstruction(p, opt.threads)
			}(t)
		}
		wg.Wait()
	}

	for k, d := 0, p.minDepth; d <= p.maxDepth; k, d = k+1, d+2 {
		built := 0
		var topDown, bottomUp time.Duration
		for _, r := range results {
			built += r[k].iters
			if r[k].topDown > topDown {
				topDown = r[k].topDown
			}
			if r[k].bottomUp > bottomUp {
				bottomUp = r[k].bottomUp
			}
		}
		fmt.Fprintf(out, "depth %d: %d trees top-down, %d bottom-up, check %d\n", d, built, built, results[0][k].check)
		metric(fmt.Sprintf("topdown_ms_d%d", d), float64(topDown.Nanoseconds())/1e6)
		metric(fmt.Sprintf("bottomup_ms_d%d", d), float64(bottomUp.Nanoseconds())/1e6)
	}

	i := p.arraySize - 1
	if i > 1000 {
		i = 1000
	}
	_, err := fmt.Fprintf(out, "long-lived nodes %d, array[1000] %.6f\n", countNodes(longLived), array[i])
	return err
}

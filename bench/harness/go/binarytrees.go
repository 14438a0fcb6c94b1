// binary-trees in Go.
//
// The Computer Language Benchmarks Game's binary-trees, "a simplistic
// adaptation of Hans Boehm's GCBench":
// https://benchmarksgame-team.pages.debian.net/benchmarksgame/description/binarytrees.html
// Rules kept here: perfect binary trees are fully created before any of
// their nodes can be collected; every node is its own allocation (&node{});
// the collector runs with its defaults (no GOGC or debug.SetGCPercent
// tuning, no pools or free lists).
//
// With D = 21 (10 with --quick) and min depth 4:
//  1. a stretch tree of depth D+1 is built, walked and dropped;
//  2. a long-lived tree of depth D is built and kept until the end;
//  3. for d = 4, 6, ..., D: 2^(D-d+4) trees of depth d are built, walked
//     and dropped, one at a time;
//  4. the long-lived tree is walked.
//
// A walk counts the nodes ("check"); the output is the Benchmarks Game's:
//
//	stretch tree of depth 22	 check: 8388607
//	2097152	 trees of depth 4	 check: 65011712
//	...
//	long lived tree of depth 21	 check: 4194303
//
// --threads 2: the long-lived tree is built first, then two goroutines each
// run every depth's loop on half of its iterations (iterations are powers of
// two, at least 16); the per-depth checks are summed after both finish and
// printed in depth order, then the long-lived tree is walked.
package main

import (
	"bufio"
	"fmt"
	"sync"
)

const minDepth = 4

type treeNode struct {
	left, right *treeNode
}

// bottomUpTree builds the children first, then their parent.
func bottomUpTree(depth int) *treeNode {
	if depth <= 0 {
		return &treeNode{}
	}
	return &treeNode{bottomUpTree(depth - 1), bottomUpTree(depth - 1)}
}

func (n *treeNode) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

// depthChecks runs this worker's share of every depth's loop and returns
// the summed checks, one per depth.
func depthChecks(maxDepth, worker, workers int) []int {
	var checks []int
	for d := minDepth; d <= maxDepth; d += 2 {
		iterations := 1 << (maxDepth - d + minDepth)
		share := iterations / workers
		if worker < iterations%workers {
			share++
		}
		check := 0
		for i := 0; i < share; i++ {
			check += bottomUpTree(d).check()
		}
		checks = append(checks, check)
	}
	return checks
}

func binaryTrees(opt options, out *bufio.Writer) error {
	n := 21
	if opt.quick {
		n = 10
	}
	maxDepth := n
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}

	stretch := maxDepth + 1
	fmt.Fprintf(out, "stretch tree of depth %d\t check: %d\n", stretch, bottomUpTree(stretch).check())

	longLived := bottomUpTree(maxDepth)

	results := make([][]int, opt.threads)
	if opt.threads == 1 {
		results[0] = depthChecks(maxDepth, 0, 1)
	} else {
		var wg sync.WaitGroup
		for t := range results {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				results[t] = depthChecks(maxDepth, t, opt.threads)
			}(t)
		}
		wg.Wait()
	}

	for k, d := 0, minDepth; d <= maxDepth; k, d = k+1, d+2 {
		iterations := 1 << (maxDepth - d + minDepth)
		check := 0
		for _, r := range results {
			check += r[k]
		}
		fmt.Fprintf(out, "%d\t trees of depth %d\t check: %d\n", iterations, d, check)
	}

	_, err := fmt.Fprintf(out, "long lived tree of depth %d\t check: %d\n", maxDepth, longLived.check())
	return err
}

// alloc: the allocation microbenchmark in Go.
//
// Steady-state allocate-and-drop of objects of one size, for S = 16, 64,
// 256, 4096 and 65536 bytes: N(S) = min(2^30 / S, 2^22) objects (N/256
// with --quick), each make([]byte, S) — what a Go program does for a
// buffer whose size is a run-time value (a [S]byte array type needs S at
// compile time). The runtime allocates it in a pointer-free ("noscan")
// span, zeroed, as the language requires. The most recent 1,000 are kept
// alive in a ring of slices and the older ones are left to the collector.
// Object i gets byte (i % S) = uint8(i); when it leaves the ring (replaced
// by object i + 1000) that byte is read back and added, as a uint64, to a
// checksum. Objects still in the ring at the end are not read (so with
// --quick, 64 objects of 64 KiB, the checksum is 0). This is the same for
// every peer; the checksum is sum(i % 256 for i < N - 1000).
//
// Output (stdout), per size: "alloc <S> <N> <checksum>".
// Metric (stderr): ns_per_alloc_<S>, the loop's time divided by N (the
// write, the read-back and the ring store included).
//
// No goroutine variant: --threads 2 is unsupported (exit 3).
package main

import (
	"bufio"
	"fmt"
	"time"
)

const ringSize = 1000

var allocSizes = []int{16, 64, 256, 4096, 65536}

func allocCount(size int, quick bool) int {
	n := (1 << 30) / size
	if n > 1<<22 {
		n = 1 << 22
	}
	if quick {
		n /= 256
	}
	return n
}

func allocBench(opt options, out *bufio.Writer) error {
	for _, size := range allocSizes {
		n := allocCount(size, opt.quick)
		ring := make([][]byte, ringSize)
		var checksum uint64

		start := time.Now()
		for i := 0; i < n; i++ {
			obj := make([]byte, size)
			obj[i%size] = uint8(i)
			slot := &ring[i%ringSize]
			if old := *slot; old != nil {
				checksum += uint64(old[(i-ringSize)%size])
			}
			*slot = obj
		}
		elapsed := time.Since(start)

		if _, err := fmt.Fprintf(out, "alloc %d %d %d\n", size, n, checksum); err != nil {
			return err
		}
		metric(fmt.Sprintf("ns_per_alloc_%d", size), float64(elapsed.Nanoseconds())/float64(n))
	}
	return nil
}

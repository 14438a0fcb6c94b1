// latency: Go's GC latency test, in Go.
//
// The program the Go issue tracker used to measure GC pauses
// (golang/go#9477, the program of Pusher's 2016 write-up "Golang's
// Real-time GC in Theory and Practice"), with every push's time kept:
// a window of W messages stays live in a ring; push i (i = 0 .. P-1)
// allocates a fresh 1024-byte message with make([]byte, 1024) — a
// pointer-free ("noscan") allocation — fills every byte with byte(i), and
// stores it in slot i % W. When i >= W it replaces message j = i - W,
// which becomes garbage; before that, its byte j % 1024 is read and added,
// as a uint64, to a checksum. Every push is timed with time.Now /
// time.Since (the monotonic clock) around the allocation, the fill, the
// read-back and the store, and every push's time is kept (uint32
// nanoseconds, saturating), not only the worst.
//
// Sizes: W = 200,000 (195 MiB live), P = 2,000,000; --quick: W = 2,000,
// P = 20,000. --threads 2: two goroutines, each with its own window of
// W/2 messages making P/2 pushes (numbered from 0 in each), started
// together once both windows exist; the checksum is their sum.
//
// Output (stdout): "latency window <W> pushes <P> checksum <C>", W and P
// the totals over the goroutines; C = T * sum(j % 256 for j < P/T - W/T).
//
// Metrics (stderr), over every push of every goroutine, nearest-rank:
// max_push_ns, p99_push_ns, p999_push_ns; p99_pause_ns, the 99th
// percentile of MemStats.PauseNs over the cycles of the run still in its
// 256-entry buffer (a full run has far fewer cycles); gc_cycles and
// max_pause_ns come from pauses.go as for every workload.
package main

import (
	"bufio"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"
)

const (
	latencyMsg    = 1024
	latencyWindow = 200000
	latencyPushes = 2000000
	latencyQuick  = 100 // --quick divides both sizes by this
)

// latencyMessage is push n's message, as the original program builds it.
func latencyMessage(n int) []byte {
	m := make([]byte, latencyMsg)
	for i := range m {
		m[i] = byte(n)
	}
	return m
}

// latencyRun runs one goroutine's pushes through a window of w
// messages, storing push i's time in times[i]; it waits on start after
// building its window and returns the checksum.
func latencyRun(w int, times []uint32, ready *sync.WaitGroup, start <-chan struct{}) uint64 {
	window := make([][]byte, w)
	ready.Done()
	<-start
	var checksum uint64
	for i := range times {
		t0 := time.Now()
		slot := &window[i%w]
		if old := *slot; old != nil {
			checksum += uint64(old[(i-w)%latencyMsg])
		}
		*slot = latencyMessage(i)
		d := time.Since(t0)
		if d > math.MaxUint32 {
			d = math.MaxUint32
		}
		times[i] = uint32(d)
	}
	return checksum
}

// nearestRank is the value at quantile q of sorted v.
func nearestRank(v []uint64, q float64) uint64 {
	if len(v) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(v))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(v) {
		rank = len(v)
	}
	return v[rank-1]
}

func latencyBench(opt options, out *bufio.Writer) error {
	w, p := latencyWindow, latencyPushes
	if opt.quick {
		w, p = w/latencyQuick, p/latencyQuick
	}
	t := opt.threads
	w, p = w/t, p/t

	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	times := make([][]uint32, t)
	sums := make([]uint64, t)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < t; g++ {
		times[g] = make([]uint32, p)
		ready.Add(1)
		done.Add(1)
		go func(g int) {
			defer done.Done()
			sums[g] = latencyRun(w, times[g], &ready, start)
		}(g)
	}
	ready.Wait()
	close(start)
	done.Wait()

	var checksum uint64
	all := make([]uint64, 0, p*t)
	for g := 0; g < t; g++ {
		checksum += sums[g]
		for _, d := range times[g] {
			all = append(all, uint64(d))
		}
	}
	if _, err := fmt.Fprintf(out, "latency window %d pushes %d checksum %d\n", w*t, p*t, checksum); err != nil {
		return err
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	metric("max_push_ns", all[len(all)-1])
	metric("p99_push_ns", nearestRank(all, 0.99))
	metric("p999_push_ns", nearestRank(all, 0.999))

	// The cycles of this run still in PauseNs (cycle c is at
	// PauseNs[(c+255)%256]).
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var pauses []uint64
	for c := before.NumGC + 1; c <= ms.NumGC; c++ {
		if ms.NumGC-c < 256 {
			pauses = append(pauses, ms.PauseNs[(c+255)%256])
		}
	}
	sort.Slice(pauses, func(a, b int) bool { return pauses[a] < pauses[b] })
	metric("p99_pause_ns", nearestRank(pauses, 0.99))
	return nil
}

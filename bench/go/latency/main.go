// Go's GC latency test (the "gc latency" benchmark of Pusher's 2016
// write-up, as ported to other runtimes by Gabriel Scherer), written to
// match examples/src/gc_latency.rs in spanheap so that both report the
// same numbers.
//
// A window of `window` messages stays live in a ring; each push allocates
// a fresh 1 KiB message whose bytes are all byte(push index) and stores it
// over the oldest slot (index % window). Every push is timed (time.Now
// around the allocation, the fill and the store) and all push times are
// kept, so the program prints the maximum, percentiles and mean. The
// first `window` pushes fill the ring; they are measured too, as in the
// original program.
//
// Messages are *[1024]byte (an 8-byte pointer per slot, like spanheap's
// Option<Gc<[u8; 1024]>>), not []byte (a 24-byte slice header). The fill
// copies doubling prefixes, because Go compiles a byte loop with a
// non-zero value to a byte loop, not to memset, while Rust's [b; 1024]
// is a memset.
//
// With -threads N, N goroutines each keep their own window of window/N
// messages and make pushes/N pushes (same live set and total work); they
// start together and their push times are pooled. GOMAXPROCS is left at
// its default (the number of CPUs), so Go's concurrent mark workers and
// background sweeper may use every core.
//
// After the run it prints runtime.MemStats: NumGC, PauseTotalNs, the
// largest of the recorded PauseNs (Go keeps the last 256 cycles; each
// entry is the sum of that cycle's two stop-the-world pauses), and
// GCCPUFraction. The last line, "RESULT key=value ...", is parsed by
// bench/gc-latency.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
)

const msgSize = 1024

type msg = *[msgSize]byte

func mkMessage(n int) msg {
	m := new([msgSize]byte)
	m[0] = byte(n)
	for filled := 1; filled < msgSize; filled *= 2 {
		copy(m[filled:], m[:filled])
	}
	return m
}

type slowStep struct {
	ns     uint32
	thread int
	push   int
}

// gates: all workers start pushing together, and the run (wall time)
// ends when all have finished pushing; each worker then checks its window.
type gates struct {
	ready, pushed sync.WaitGroup
	start, verify chan struct{}
}

func worker(window, pushes int, g *gates) []uint32 {
	ring := make([]msg, window)
	lat := make([]uint32, pushes)
	g.ready.Done()
	<-g.start
	for j := 0; j < pushes; j++ {
		t0 := time.Now()
		m := mkMessage(j)
		ring[j%window] = m
		d := time.Since(t0)
		if d > time.Duration(^uint32(0)) {
			d = time.Duration(^uint32(0))
		}
		lat[j] = uint32(d)
	}
	g.pushed.Done()
	<-g.verify
	// Check that every slot holds the message of its last push.
	for s := 0; s < window && s < pushes; s++ {
		j := s + (pushes-1-s)/window*window
		for _, b := range ring[s] {
			if b != byte(j) {
				fmt.Fprintf(os.Stderr, "error: slot %d does not hold the message of push %d\n", s, j)
				os.Exit(1)
			}
		}
	}
	runtime.KeepAlive(ring)
	return lat
}

func quantile(v []uint32, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	rank := int(q*float64(len(v)) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(v) {
		rank = len(v)
	}
	return float64(v[rank-1])
}

func main() {
	window := flag.Int("window", 200000, "live messages (1 KiB each)")
	pushes := flag.Int("pushes", 2000000, "messages pushed")
	threads := flag.Int("threads", 1, "goroutines, each with window/threads live messages and pushes/threads pushes")
	flag.Parse()
	if *threads < 1 || *window < *threads || *pushes < *threads {
		fmt.Fprintln(os.Stderr, "error: threads must be at least 1, window and pushes at least threads")
		os.Exit(2)
	}
	winT, pushT := *window / *threads, *pushes / *threads

	g := &gates{start: make(chan struct{}), verify: make(chan struct{})}
	g.ready.Add(*threads)
	g.pushed.Add(*threads)
	results := make([][]uint32, *threads)
	var done sync.WaitGroup
	done.Add(*threads)
	for t := 0; t < *threads; t++ {
		t := t
		go func() {
			defer done.Done()
			results[t] = worker(winT, pushT, g)
		}()
	}
	g.ready.Wait()
	t0 := time.Now()
	close(g.start)
	g.pushed.Wait()
	wall := time.Since(t0)
	close(g.verify)
	done.Wait()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	var slow []slowStep
	var all []uint32
	var sum uint64
	var maxSteady uint32 // once the ring is full (push index >= window)
	for t, r := range results {
		for j, x := range r {
			sum += uint64(x)
			if j >= winT && x > maxSteady {
				maxSteady = x
			}
			slow = append(slow, slowStep{x, t, j})
			if len(slow) > 4096 {
				sort.Slice(slow, func(a, b int) bool { return slow[a].ns > slow[b].ns })
				slow = slow[:10]
			}
		}
		all = append(all, r...)
	}
	sort.Slice(slow, func(a, b int) bool { return slow[a].ns > slow[b].ns })
	if len(slow) > 10 {
		slow = slow[:10]
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	n := len(all)
	mean := float64(sum) / float64(n)
	max := float64(all[n-1])
	p50, p99, p999, p9999 := quantile(all, 0.5), quantile(all, 0.99), quantile(all, 0.999), quantile(all, 0.9999)
	over := func(us uint32) int {
		return n - sort.Search(n, func(i int) bool { return all[i] > us*1000 })
	}

	var pauseMax uint64
	recorded := int(ms.NumGC)
	if recorded > len(ms.PauseNs) {
		recorded = len(ms.PauseNs)
	}
	for i := 0; i < recorded; i++ {
		if ms.PauseNs[i] > pauseMax {
			pauseMax = ms.PauseNs[i]
		}
	}

	fmt.Printf("gc-latency: Go %s, window %d messages of %d B (%.0f MiB live), %d pushes, %d goroutine(s), GOMAXPROCS %d, GOGC=%s\n",
		runtime.Version(), winT**threads, msgSize, float64(winT**threads*msgSize)/(1<<20), pushT**threads, *threads,
		runtime.GOMAXPROCS(0), gogc())
	fmt.Println()
	fmt.Printf("push time, over %d pushes:\n", n)
	fmt.Printf("  max %.1f µs   p99.99 %.1f µs   p99.9 %.1f µs   p99 %.2f µs   p50 %.2f µs   mean %.0f ns\n",
		max/1e3, p9999/1e3, p999/1e3, p99/1e3, p50/1e3, mean)
	fmt.Printf("  max once the ring is full: %.1f µs\n", float64(maxSteady)/1e3)
	fmt.Printf("  pushes over 250 µs: %d, over 1 ms: %d, over 10 ms: %d\n", over(250), over(1000), over(10000))
	fmt.Printf("wall %.3f s\n", wall.Seconds())
	fmt.Printf("slowest pushes (push index per goroutine; the ring is full from index %d):\n", winT)
	for _, s := range slow {
		fmt.Printf("  %9.1f µs  goroutine %d push %8d\n", float64(s.ns)/1e3, s.thread, s.push)
	}
	fmt.Println()
	fmt.Printf("runtime.MemStats: NumGC %d, PauseTotalNs %.1f ms, max PauseNs %.1f µs (over the last %d cycles), GCCPUFraction %.1f %%\n",
		ms.NumGC, float64(ms.PauseTotalNs)/1e6, float64(pauseMax)/1e3, recorded, 100*ms.GCCPUFraction)
	fmt.Printf("  HeapInuse %.1f MiB, NextGC %.1f MiB, Sys %.1f MiB\n",
		float64(ms.HeapInuse)/(1<<20), float64(ms.NextGC)/(1<<20), float64(ms.Sys)/(1<<20))
	cpu := processCPU() // the whole process, up to here
	fmt.Printf("process CPU %.2f s\n", cpu)
	fmt.Println()
	fmt.Printf("RESULT impl=go threads=%d window=%d pushes=%d max_us=%.1f max_steady_us=%.1f p99_us=%.2f p999_us=%.1f p9999_us=%.1f mean_ns=%.0f total_s=%.3f gcs=%d pause_total_ms=%.1f pause_max_us=%.0f gc_cpu_pct=%.1f cpu_s=%.2f\n",
		*threads, winT**threads, pushT**threads, max/1e3, float64(maxSteady)/1e3, p99/1e3, p999/1e3, p9999/1e3, mean, wall.Seconds(),
		ms.NumGC, float64(ms.PauseTotalNs)/1e6, float64(pauseMax)/1e3, 100*ms.GCCPUFraction, cpu)
}

// processCPU is the user + system CPU time of the whole process so far, in
// seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func gogc() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return "100 (default)"
}

// Stop-the-world pause statistics for harness-go.
//
// runtime.MemStats.PauseNs is a circular buffer of the last 256 cycles'
// pause times (each entry the sum of the cycle's two stop-the-world
// pauses, sweep termination and mark termination). The allocation
// workload runs well over 256 cycles (a live heap of a few KiB collects
// every 4 MiB), so reading it once at the end would miss most of them.
// A watcher goroutine reads the completed-cycle count every 10 ms from
// runtime/metrics (no stop-the-world) and, once 128 cycles have gone by
// since it last looked, calls runtime.ReadMemStats (one short
// stop-the-world, not itself a GC pause) and folds the new entries into
// the maximum. Cycles that completed between two reads but fell out of the
// buffer are counted and reported as pause_cycles_missed (only if any).
package main

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

type pauseWatcher struct {
	mu     sync.Mutex
	seen   uint32 // cycles already folded in
	maxNs  uint64
	missed uint32
	done   chan struct{}
	wg     sync.WaitGroup
}

func watchPauses() *pauseWatcher {
	w := &pauseWatcher{done: make(chan struct{})}
	w.wg.Add(1)
	go w.watch()
	return w
}

func (w *pauseWatcher) watch() {
	defer w.wg.Done()
	sample := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			continue
		}
		w.mu.Lock()
		behind := sample[0].Value.Uint64() >= uint64(w.seen)+128
		w.mu.Unlock()
		if behind {
			w.fold()
		}
	}
}

// fold reads MemStats and takes the maximum over the cycles not seen yet.
func (w *pauseWatcher) fold() *runtime.MemStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.mu.Lock()
	defer w.mu.Unlock()
	first := w.seen + 1
	if ms.NumGC > 256 && first < ms.NumGC-255 {
		w.missed += ms.NumGC - 255 - first
		first = ms.NumGC - 255
	}
	for c := first; c <= ms.NumGC; c++ { // cycle c is at PauseNs[(c+255)%256]
		if p := ms.PauseNs[(c+255)%256]; p > w.maxNs {
			w.maxNs = p
		}
	}
	if ms.NumGC > w.seen {
		w.seen = ms.NumGC
	}
	return &ms
}

// report stops the watcher and prints gc_cycles and max_pause_ns.
func (w *pauseWatcher) report() {
	close(w.done)
	w.wg.Wait()
	ms := w.fold()
	metric("gc_cycles", ms.NumGC)
	metric("max_pause_ns", w.maxNs)
	if w.missed > 0 {
		metric("pause_cycles_missed", w.missed)
	}
}

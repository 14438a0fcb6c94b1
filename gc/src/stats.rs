//! Collector statistics and the `SPANHEAP_GCTRACE` line (Go's
//! `runtime.MemStats` GC fields, and the `gctrace` line printed by
//! `gcMarkTermination` in `mgc.go`).

use spanheap_heap::MemStats;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// How many recent pauses [`GcStats::pauses`] keeps (Go's `PauseNs` ring).
pub const PAUSE_HISTORY: usize = 256;

/// A snapshot of the collector's and the heap's statistics.
#[derive(Clone, Debug)]
pub struct GcStats {
    /// Completed collection cycles (Go's `NumGC`).
    pub num_gc: u64,
    /// Cycles started by an explicit `collect()` (Go's `NumForcedGC`).
    pub num_forced_gc: u64,
    /// Total stop-the-world time (Go's `PauseTotalNs`).
    pub pause_total: Duration,
    /// The most recent pauses, oldest first, at most [`PAUSE_HISTORY`].
    pub pauses: Vec<Duration>,
    /// Longest pause so far.
    pub pause_max: Duration,
    /// Wall time of all concurrent mark phases (mutators run meanwhile;
    /// not pauses).
    pub mark_total: Duration,
    /// Wall time of the last cycle's concurrent mark phase: with
    /// `heap_marked`, the mark's throughput.
    pub last_mark: Duration,
    /// Time mutators spent scanning in mark assists (Go's
    /// `/gc/cpu/assist`), summed over all mutators and cycles. Not pauses:
    /// only the allocating mutator is slowed, inside its allocation.
    pub assist_total: Duration,
    /// Time mutators spent waiting for the mark because they were over
    /// the heap goal with nothing to scan (Go's `gcParkAssist`), summed
    /// over all mutators and cycles; at most 10 ms per span refill.
    pub assist_wait_total: Duration,
    /// When the last cycle ended, since the heap was created.
    pub last_gc: Option<Duration>,
    /// Bytes marked live by the last cycle.
    pub heap_marked: u64,
    /// Heap goal set by the last cycle (`u64::MAX`: no goal).
    pub heap_goal: u64,
    /// Objects marked by the last cycle.
    pub last_marked_objects: u64,
    /// Scan objects whose trace function ran, over all cycles (noscan
    /// objects are never scanned).
    pub scanned_objects: u64,
    /// `Drop` impls of collected objects that panicked (caught).
    pub drop_panics: u64,
    /// Live roots.
    pub roots: usize,
    /// Live weak references.
    pub weak_refs: usize,
    /// Weak references cleared because their target died, over all cycles.
    pub weak_cleared: u64,
    /// Objects with a finalizer that has not been queued yet.
    pub finalizers_registered: usize,
    /// Finalizers queued (their objects unreachable), not yet run.
    pub finalizers_ready: usize,
    /// Finalizers run, over the heap's life.
    pub finalizers_run: u64,
    /// Finalizers that panicked (caught).
    pub finalizer_panics: u64,
    /// The heap's memory statistics.
    pub mem: MemStats,
}

/// Mutable history kept by the collector.
#[derive(Default)]
pub(crate) struct History {
    pub(crate) num_gc: u64,
    pub(crate) num_forced_gc: u64,
    pub(crate) pause_total: Duration,
    pub(crate) pauses: VecDeque<Duration>,
    pub(crate) pause_max: Duration,
    pub(crate) mark_total: Duration,
    pub(crate) last_mark: Duration,
    pub(crate) last_gc: Option<Duration>,
    pub(crate) heap_marked: u64,
    pub(crate) heap_goal: u64,
    pub(crate) last_marked_objects: u64,
    pub(crate) scanned_objects: u64,
    pub(crate) weak_cleared: u64,
}

impl History {
    pub(crate) fn record_pause(&mut self, d: Duration) {
        if self.pauses.len() == PAUSE_HISTORY {
            self.pauses.pop_front();
        }
        self.pauses.push_back(d);
        self.pause_total += d;
        self.pause_max = self.pause_max.max(d);
    }
}

/// One cycle's numbers: what `SPANHEAP_GCTRACE=1` prints and the
/// `tracing` event carries.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleTrace {
    /// Cycle number, from 1.
    pub cycle: u64,
    /// Start of the cycle since the heap was created.
    pub at: Duration,
    /// Wall-clock phases: sweep termination, mark, mark termination
    /// (weak clearing, sweep start, pacing).
    pub sweep_term: Duration,
    /// Mark phase.
    pub mark: Duration,
    /// Mark termination.
    pub mark_term: Duration,
    /// `heap_live` when the cycle started.
    pub heap_before: u64,
    /// `heap_live` when marking ended.
    pub heap_after: u64,
    /// Bytes marked.
    pub heap_marked: u64,
    /// The new goal.
    pub goal: u64,
    /// Objects marked.
    pub marked_objects: u64,
    /// Mark workers used.
    pub workers: usize,
    /// Whether `collect()` forced the cycle.
    pub forced: bool,
}

fn mb(b: u64) -> u64 {
    b >> 20
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for CycleTrace {
    /// `gc 3 @0.120s: 0.010+1.2+0.030 ms clock, 12->12->5 MB, 10 MB goal, 1 W`
    /// — the shape of Go's `gctrace=1` line: cycle, time since start, the
    /// phases' wall-clock times, heap at start → at end of mark → marked,
    /// the next goal, mark workers; `(forced)` for `collect()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gc {} @{:.3}s: {:.3}+{:.3}+{:.3} ms clock, {}->{}->{} MB, ",
            self.cycle,
            self.at.as_secs_f64(),
            ms(self.sweep_term),
            ms(self.mark),
            ms(self.mark_term),
            mb(self.heap_before),
            mb(self.heap_after),
            mb(self.heap_marked),
        )?;
        if self.goal == u64::MAX {
            write!(f, "no goal")?;
        } else {
            write!(f, "{} MB goal", mb(self.goal))?;
        }
        write!(f, ", {} objects, {} W", self.marked_objects, self.workers)?;
        if self.forced {
            write!(f, " (forced)")?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn trace_line_shape() {
        let t = CycleTrace {
            cycle: 3,
            at: Duration::from_millis(120),
            sweep_term: Duration::from_micros(10),
            mark: Duration::from_micros(1200),
            mark_term: Duration::from_micros(30),
            heap_before: 12 << 20,
            heap_after: 12 << 20,
            heap_marked: 5 << 20,
            goal: 10 << 20,
            marked_objects: 42,
            workers: 1,
            forced: true,
        };
        assert_eq!(
            t.to_string(),
            "gc 3 @0.120s: 0.010+1.200+0.030 ms clock, 12->12->5 MB, 10 MB goal, 42 objects, 1 W (forced)"
        );
    }
}

//! Sweeping: turning a span's mark bits into its allocation state, lazily,
//! in the background, or all at once, under the sweepgen protocol.
//!
//! Mirrors Go's `mgcsweep.go` (`sweepone`, `sweepLocked.sweep`,
//! `activeSweep`, `finishsweep_m`) and `gcSweep` in `mgc.go`. The sweepgen
//! table is in `mspan.rs`; the swept/unswept span sets are in `mcentral.rs`.
//!
//! ## A cycle, as the collector drives it
//! 1. `finish_sweep` (Go's sweep termination): sweep every span that is
//!    still unswept, wait for concurrent sweepers, rotate the gcBits epochs.
//!    After it, every in-use span is at `sweepgen == sg` (or `sg + 3`,
//!    cached) and all mark bitmaps are zero.
//! 2. Marking sets mark bits (the collector's business).
//! 3. `begin_sweep` with the world stopped (Go's `gcSweep`): `sg += 2`.
//!    Every span is now "needs sweeping" without being touched; mcaches
//!    notice the new generation on their next allocation and flush.
//! 4. Spans are swept by whoever gets to them first, each exactly once
//!    (only the `sg-2 → sg-1` CAS confers ownership): `sweep_one` (a
//!    background sweeper, or proportional sweeping by the pacer),
//!    `MCentral::cache_span` (lazily, for the class it needs), `reclaim`
//!    (before a large allocation), or `uncache_span` (stale cached spans).
//!
//! ## Active sweepers
//! `ActiveSweep.state` packs a "drained" bit (no unswept span left in any
//! set) with the number of sweepers currently between `begin` and `end`.
//! Sweeping is complete exactly when the state is `DRAINED` with a count of
//! zero and no stale cached span remains (Go's `activeSweep`).

use crate::error::AllocError;
use crate::mheap::MHeap;
use crate::mspan::{NUM_SPAN_CLASSES, SpanClass, SpanRef, SpanState};
use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The "no unswept spans left" bit of `ActiveSweep::state`.
const SWEEP_DRAINED: u32 = 1 << 31;

/// Go's `activeSweep`.
pub(crate) struct ActiveSweep {
    /// `DRAINED` bit | number of active sweepers.
    state: AtomicU32,
}

impl ActiveSweep {
    fn new() -> Self {
        ActiveSweep {
            state: AtomicU32::new(SWEEP_DRAINED),
        }
    }

    /// Registers a sweeper. Returns false if there is nothing to sweep.
    pub(crate) fn begin(&self) -> bool {
        let mut st = self.state.load(Ordering::Relaxed);
        loop {
            if st & SWEEP_DRAINED != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(st, st + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(v) => st = v,
            }
        }
    }

    /// Unregisters a sweeper registered by `begin`.
    pub(crate) fn end(&self) {
        // Release: a thread that sees the count drop to zero (isDone, with
        // Acquire) sees everything this sweeper wrote.
        let prev = self.state.fetch_sub(1, Ordering::Release);
        debug_assert!(prev & !SWEEP_DRAINED != 0, "mismatched sweep begin/end");
    }

    /// Records that the unswept sets are empty. Returns true for the caller
    /// that set the bit.
    fn mark_drained(&self) -> bool {
        self.state.fetch_or(SWEEP_DRAINED, Ordering::AcqRel) & SWEEP_DRAINED == 0
    }

    /// Drained and no sweeper active.
    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == SWEEP_DRAINED
    }

    fn reset(&self) {
        self.state.store(0, Ordering::Release);
    }
}

/// Sweep bookkeeping of one heap.
pub(crate) struct SweepState {
    pub(crate) active: ActiveSweep,
    /// Cursor over (span class, partial/full) for `sweep_one`; only grows
    /// during a cycle (Go's `sweepClass`).
    central_index: AtomicU32,
    /// Spans that were in an mcache when the current sweep began and have
    /// not been returned since. Sweeping is incomplete while this is > 0.
    stale_cached: AtomicUsize,
}

impl SweepState {
    pub(crate) fn new() -> Self {
        SweepState {
            active: ActiveSweep::new(),
            central_index: AtomicU32::new(SWEEP_CLASSES),
            stale_cached: AtomicUsize::new(0),
        }
    }

    /// SeqCst, as is `finish_sweep`'s load: a mutator that returns a
    /// stale span then reads the collector's "waiting" flag, and the
    /// collector sets that flag then checks this count (Dekker; see
    /// `Inner::notify_collector` in spanheap-gc).
    pub(crate) fn stale_cached_spans_dec(&self) {
        self.stale_cached.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Number of (span class, partial/full) pairs `sweep_one` walks.
const SWEEP_CLASSES: u32 = (NUM_SPAN_CLASSES * 2) as u32;

/// Why sweeping could not be completed or a new sweep not begun.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SweepError {
    /// Some mcaches still hold spans cached before the current sweep began;
    /// they are swept when those mcaches flush (`MCache::release_all`, or
    /// their next allocation). The collector must flush every mcache before
    /// sweeping can finish (Go's `forEachP(prepareForSweep)`).
    UnflushedCaches {
        /// Stale spans still cached.
        spans: usize,
    },
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::UnflushedCaches { spans } => write!(
                f,
                "sweep incomplete: {spans} spans are still cached in mcaches that have not flushed since the sweep began"
            ),
        }
    }
}

impl std::error::Error for SweepError {}

impl MHeap {
    /// Sweeps a span owned by the caller as sweeper (`sweepgen == sg-1`).
    /// With `preserve`, the caller keeps the span (to allocate from it);
    /// otherwise it goes to the right swept set or, if empty, back to the
    /// page heap. Returns the number of pages freed to the page heap.
    pub(crate) fn sweep_span(&self, s: SpanRef, preserve: bool) -> usize {
        let sg = self.sweepgen();
        debug_assert_eq!(s.sweepgen(), sg.wrapping_sub(1), "sweep of unowned span");
        debug_assert_eq!(s.state(), SpanState::InUse);
        let spc = s.spanclass();
        let npages = s.npages();
        let base = s.base();
        let counts = {
            let mut hook_call;
            // SAFETY: we own `s` as its sweeper (asserted above).
            let wants_hook = !spc.noscan() && unsafe { s.needs_free_hook() };
            let hook: Option<&mut dyn FnMut(usize)> = match (&self.free_hook, wants_hook) {
                (Some(h), true) => {
                    hook_call = |addr: usize| h(addr);
                    Some(&mut hook_call)
                }
                _ => None,
            };
            let poison = self.config.poison_freed || self.config.never_reuse;
            // SAFETY: we own `s` as its sweeper (sweepgen == sg-1, asserted
            // above) — obligation 1; marking never runs while spans are
            // unswept (a cycle's mark starts after `finish_sweep`) —
            // obligation 2.
            unsafe { s.sweep_bits(&self.gcbits, hook, poison) }
        };
        if let Some(a) = self.arenas.arena_of(base) {
            a.clear_page_marked((base - a.base) >> crate::sizeclasses::PAGE_SHIFT);
        }
        self.stats.record_sweep(spc, counts.nfreed, s.elemsize());
        // The release point of the sweep: whoever next sees `sg` (a popper,
        // an mcache) sees the swept bitmaps and counts.
        s.store_sweepgen(sg);
        if preserve {
            return 0;
        }
        if counts.nalloc == 0 {
            // Nothing survived (for a large span: its object died).
            if self.config.never_reuse {
                // efence: the pages are never handed out again.
                self.retire_span(s);
                return 0;
            }
            self.free_span(s);
            return npages;
        }
        let central = self.central(spc);
        if counts.nalloc < s.nelems() {
            central.partial_swept(sg).push(s);
        } else {
            central.full_swept(sg).push(s);
        }
        0
    }

    /// Pops the next span that may need sweeping (Go's `nextSpanForSweep`).
    fn next_span_for_sweep(&self) -> Option<SpanRef> {
        let sg = self.sweepgen();
        let mut sc = self.sweep.central_index.load(Ordering::Relaxed);
        while sc < SWEEP_CLASSES {
            let spc = SpanClass((sc >> 1) as u8);
            let full = sc & 1 != 0;
            let c = self.central(spc);
            let s = if full {
                c.full_unswept(sg).pop()
            } else {
                c.partial_unswept(sg).pop()
            };
            if s.is_some() {
                self.sweep.central_index.fetch_max(sc, Ordering::Relaxed);
                return s;
            }
            sc += 1;
        }
        self.sweep
            .central_index
            .fetch_max(SWEEP_CLASSES, Ordering::Relaxed);
        None
    }

    /// Sweeps one span (Go's `sweepone`). Returns `Some(pages)` for the
    /// pages swept, or None when no unswept span is left. Safe to call from
    /// any thread (a background sweeper, or a mutator paying sweep credit).
    pub fn sweep_one(&self) -> Option<usize> {
        self.sweep_one_freeing().map(|(swept, _)| swept)
    }

    /// `sweep_one`, also reporting how many pages went back to the page heap.
    fn sweep_one_freeing(&self) -> Option<(usize, usize)> {
        if !self.sweep.active.begin() {
            return None;
        }
        let sg = self.sweepgen();
        let mut result = None;
        while let Some(s) = self.next_span_for_sweep() {
            if s.try_acquire_sweep(sg) {
                let npages = s.npages();
                let freed = self.sweep_span(s, false);
                result = Some((npages, freed));
                break;
            }
            // Claimed by a concurrent sweeper, which will place it.
        }
        if result.is_none() {
            self.sweep.active.mark_drained();
        }
        self.sweep.active.end();
        result
    }

    /// Sweeps until `npages` pages have gone back to the page heap or
    /// nothing is left to sweep (Go's `mheap.reclaim`, without its
    /// page-mark filter). Called before allocating large spans so that the
    /// heap reuses garbage before it grows.
    pub(crate) fn reclaim(&self, npages: usize) {
        let mut freed = 0;
        while freed < npages {
            match self.sweep_one_freeing() {
                Some((_, f)) => freed += f,
                None => break,
            }
        }
    }

    /// [`MHeap::alloc_span`], except that at the hard heap limit it first
    /// sweeps the garbage the last mark found — every class, since any
    /// dead span gives its pages back — and tries once more. A refusal
    /// then means that live objects (or garbage no mark has seen yet), not
    /// spans awaiting their sweep, fill the limit: before, a refill of a
    /// class with no span of its own was refused after a `collect()` while
    /// other classes' unswept spans held the room.
    pub(crate) fn alloc_span_reclaiming(
        &self,
        npages: usize,
        spc: SpanClass,
    ) -> Result<SpanRef, AllocError> {
        match self.alloc_span(npages, spc) {
            Err(AllocError::HeapLimit { .. }) => {
                while self.sweep_one().is_some() {}
                self.alloc_span(npages, spc)
            }
            r => r,
        }
    }

    /// Whether every span has been swept this cycle.
    pub fn sweep_done(&self) -> bool {
        self.sweep.active.is_done() && self.sweep.stale_cached.load(Ordering::Acquire) == 0
    }

    /// Completes the current sweep (Go's `finishsweep_m`): sweeps every
    /// remaining span and waits for concurrent sweepers. Call it before a
    /// new mark phase (marking needs every span swept, so that its mark
    /// bits are fresh). The bitmap arenas of two cycles ago are recycled at
    /// the next `begin_sweep`.
    ///
    /// Fails if some mcache still holds a span from before the sweep
    /// began: the collector must flush every mcache first.
    pub fn finish_sweep(&self) -> Result<(), SweepError> {
        while self.sweep_one().is_some() {}
        // Lazy sweepers in cache_span may still be running.
        while !self.sweep.active.is_done() {
            crate::sync::hint::spin_loop();
            crate::sync::thread::yield_now();
        }
        let stale = self.sweep.stale_cached.load(Ordering::SeqCst);
        if stale > 0 {
            return Err(SweepError::UnflushedCaches { spans: stale });
        }
        #[cfg(feature = "expensive-checks")]
        if let Err(e) = self.verify() {
            crate::throw(&format!(
                "expensive-checks: heap invalid after finish_sweep: {e}"
            ));
        }
        Ok(())
    }

    /// Starts a sweep (Go's `gcSweep`): `sweepgen += 2`, which makes every
    /// span "needs sweeping" at once, and allocate-black off, in the same
    /// store. Call after marking has finished. Mutators may keep
    /// allocating meanwhile: the change happens under `sweep_gate` held
    /// exclusively, so no mcache slow path straddles it, and fast paths
    /// only use spans they have cached (see `MHeap::sweep_gate`).
    ///
    /// Fails (changing nothing) if the previous sweep has not finished:
    /// call [`MHeap::finish_sweep`] first.
    ///
    /// # Safety
    /// 1. Marking is complete: no mark bit will be set by a marker until
    ///    the next `finish_sweep` has returned (objects may still be
    ///    allocated black by mcaches that have not seen the change, in
    ///    spans they have cached; that is accounted for).
    pub unsafe fn begin_sweep(&self) -> Result<(), SweepError> {
        self.finish_sweep()?;
        let _gate = self.sweep_gate.write();
        // Nothing can have become unswept since: only begin_sweep makes
        // spans unswept, and the gate excludes every mcache slow path.
        let stale = self.sweep.stale_cached.load(Ordering::Acquire);
        if stale > 0 {
            return Err(SweepError::UnflushedCaches { spans: stale });
        }
        let l = self.lock.lock();
        // Every in-use span has been swept since the last rotation (the
        // finish_sweep above); the bitmap allocator is used only under the
        // heap lock (span init) or by sweeps, and there is none: recycle
        // the bitmaps of two cycles ago (gcbits.rs).
        self.gcbits.next_epoch();
        let sg = self.sweepgen().wrapping_add(2);
        // The gate keeps every mcache out of cache/uncache, so the count of
        // cached spans is exact; each of them is now stale.
        self.sweep
            .stale_cached
            .store(self.stats.cached_spans(), Ordering::Relaxed);
        self.sweep.central_index.store(0, Ordering::Relaxed);
        if crate::sync::broken::is("begin_sweep_reset_first") {
            // loom-tests broken variant: the order before the fix below
            // (loom-tests/tests/heap_sweepgen.rs).
            self.sweep.active.reset();
            self.set_sweepgen(sg);
        } else {
            // The new sweepgen first, then the sweepers' state (Go's
            // `gcSweep` order). `sweep_one` runs on any thread without
            // the gate; one that registers after the reset (its Acquire
            // CAS in `begin` reads the reset's Release store) sees the new
            // sweepgen and cursor. Reset first, a sweeper slipping in
            // between read the old sweepgen, found the old generation's
            // unswept sets empty and marked the *new* sweep drained: it
            // then finished with every span unswept.
            self.set_sweepgen(sg);
            self.sweep.active.reset();
        }
        drop(l);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn active_sweep_states() {
        let a = ActiveSweep::new();
        // A new heap has nothing to sweep.
        assert!(a.is_done());
        assert!(!a.begin());
        a.reset();
        assert!(!a.is_done(), "a reset sweep is not done");
        assert!(a.begin());
        assert!(a.begin());
        assert!(a.mark_drained(), "first drainer wins");
        assert!(!a.mark_drained());
        assert!(!a.begin(), "no new sweepers once drained");
        a.end();
        assert!(!a.is_done(), "one sweeper still active");
        a.end();
        assert!(a.is_done());
    }
}

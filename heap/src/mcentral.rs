//! Central free lists: per span class, the spans that mcaches draw from.
//!
//! Mirrors Go's `mcentral.go` (the Go 1.15+ design) and the role of
//! `mspanset.go`. See the crate docs for the overview.
//!
//! Each `MCentral` holds four span sets: `partial` (spans with a free slot)
//! and `full` (spans without), each in two generations indexed by sweepgen
//! parity. With `sg` the heap's sweepgen, `partial[sg/2 % 2]` holds *swept*
//! spans and `partial[1 - sg/2 % 2]` *unswept* ones (and likewise `full`).
//! Bumping `sg` by 2 therefore turns every swept set into the unswept set of
//! the new cycle without touching a single span.
//!
//! Invariants:
//! - a span is in at most one set, and a span in a set is in no mcache;
//! - a span in a swept set has `sweepgen == sg`; a span in an unswept set has
//!   `sweepgen == sg - 2` unless a sweeper has claimed it (`sg - 1`), in which
//!   case that sweeper — not the popper — decides where it goes next;
//! - popping a span transfers ownership of its owner-only fields to the
//!   popper (the set's lock orders the hand-off).
//!
//! ## Span sets
//! Go's `spanSet` is a lock-free, block-structured queue. Ours is a
//! `Vec` behind a `parking_lot` mutex (through the sync shim): an mcentral is
//! touched once per span refill (every 1–1024 allocations), the critical
//! section is a push or pop, and a model checker can explore it exhaustively.
//! The interface (`push`, `pop`) is Go's, so a lock-free set can replace it
//! without touching callers.

use crate::error::AllocError;
use crate::mheap::MHeap;
use crate::mspan::{SpanClass, SpanRef};
use crate::sizeclasses::class_npages;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// How many unswept spans `cache_span` may sweep looking for free space
/// before it gives up and grows the heap (Go's `spanBudget`). Bounds the
/// latency of one refill; costs at most ~1% extra heap (Go's estimate).
const SPAN_BUDGET: usize = 100;

/// A set of spans (Go's `spanSet`): push and pop, LIFO.
pub(crate) struct SpanSet {
    spans: Mutex<Vec<SpanRef>>,
    /// `spans.len()`, written under the lock, read without it so that
    /// popping an empty set — the common case for unswept sets — takes no
    /// lock. A racy "empty" answer is harmless: a span pushed concurrently
    /// is found by the next pop, exactly as if the push had come later.
    len: AtomicUsize,
}

impl SpanSet {
    fn new() -> Self {
        SpanSet {
            spans: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
        }
    }
    /// Adds `s`; ownership of `s` passes to the set.
    pub(crate) fn push(&self, s: SpanRef) {
        let mut v = self.spans.lock();
        v.push(s);
        self.len.store(v.len(), Ordering::Relaxed);
    }
    /// Removes some span; its ownership passes to the caller.
    pub(crate) fn pop(&self) -> Option<SpanRef> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        if crate::sync::broken::is("spanset_pop_split") {
            // loom-tests broken variant: pick the span under the lock and
            // take it out under a second acquisition, so two poppers can
            // both pick it (loom-tests/tests/heap_mcentral.rs).
            let s = self.spans.lock().last().copied()?;
            let mut v = self.spans.lock();
            v.retain(|&t| t != s);
            self.len.store(v.len(), Ordering::Relaxed);
            return Some(s);
        }
        let mut v = self.spans.lock();
        let s = v.pop();
        self.len.store(v.len(), Ordering::Relaxed);
        s
    }
    /// Number of spans in the set.
    pub(crate) fn len(&self) -> usize {
        self.spans.lock().len()
    }
    /// Runs `f` on every span of the set with the set's lock held, so the
    /// set (and through it `f`) owns them for the duration.
    fn with_each(&self, mut f: impl FnMut(SpanRef) -> Result<(), String>) -> Result<(), String> {
        let spans = self.spans.lock();
        for &s in spans.iter() {
            f(s)?;
        }
        Ok(())
    }
}

/// The central list of one span class.
pub struct MCentral {
    spanclass: SpanClass,
    partial: [SpanSet; 2],
    full: [SpanSet; 2],
}

impl MCentral {
    pub(crate) fn new(spanclass: SpanClass) -> Self {
        MCentral {
            spanclass,
            partial: [SpanSet::new(), SpanSet::new()],
            full: [SpanSet::new(), SpanSet::new()],
        }
    }

    #[inline]
    fn swept_idx(sg: u32) -> usize {
        ((sg / 2) % 2) as usize
    }
    /// Spans with free slots, swept this cycle.
    pub(crate) fn partial_swept(&self, sg: u32) -> &SpanSet {
        &self.partial[Self::swept_idx(sg)]
    }
    /// Spans with free slots (as of their last sweep), not yet swept.
    pub(crate) fn partial_unswept(&self, sg: u32) -> &SpanSet {
        &self.partial[1 - Self::swept_idx(sg)]
    }
    /// Full spans, swept this cycle.
    pub(crate) fn full_swept(&self, sg: u32) -> &SpanSet {
        &self.full[Self::swept_idx(sg)]
    }
    /// Full spans (as of their last sweep), not yet swept.
    pub(crate) fn full_unswept(&self, sg: u32) -> &SpanSet {
        &self.full[1 - Self::swept_idx(sg)]
    }

    /// Number of spans in all four sets (for stats and tests).
    pub fn span_count(&self) -> usize {
        self.partial
            .iter()
            .chain(&self.full)
            .map(SpanSet::len)
            .sum()
    }

    /// Checks every span in this class's sets (Go's span-set invariants
    /// plus the span's own bitmap/count consistency); records each span in
    /// `seen` to catch a span in two places.
    pub(crate) fn verify(
        &self,
        heap: &MHeap,
        seen: &mut std::collections::HashSet<SpanRef>,
    ) -> Result<(), String> {
        let sg = heap.sweepgen();
        let sets = [
            (self.partial_swept(sg), sg, Some(false)),
            (self.full_swept(sg), sg, Some(true)),
            (self.partial_unswept(sg), sg.wrapping_sub(2), None),
            (self.full_unswept(sg), sg.wrapping_sub(2), None),
        ];
        for (set, want_sg, want_full) in sets {
            set.with_each(|s| {
                if !seen.insert(s) {
                    return Err(format!("{s:?} is in two span sets or caches"));
                }
                if s.spanclass() != self.spanclass {
                    return Err(format!("{s:?} in the central list of {:?}", self.spanclass));
                }
                if s.sweepgen() != want_sg {
                    return Err(format!("{s:?} in a set that needs sweepgen {want_sg}"));
                }
                // SAFETY: the set's lock is held, so the set owns `s`
                // (ownership protocol case 3) and nobody else touches it.
                unsafe { s.verify_owned() }?;
                // SAFETY: as above.
                let full = unsafe { s.nfree() } == 0;
                if want_full.is_some_and(|f| f != full) {
                    return Err(format!("{s:?}: full={full} in the wrong swept set"));
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// A span with at least one free slot, owned by the caller, swept, with
    /// its `alloc_cache` primed (Go's `cacheSpan`). The caller (an mcache)
    /// then marks it cached by storing `sg + 3`.
    pub(crate) fn cache_span(&self, heap: &MHeap) -> Result<SpanRef, AllocError> {
        let sg = heap.sweepgen();
        if let Some(s) = self.partial_swept(sg).pop() {
            return Ok(Self::have_span(s));
        }
        // Sweep for free space, within a budget. Register as an active
        // sweeper so that `finish_sweep` waits for us.
        let sl = heap.sweep.active.begin();
        if sl {
            let mut budget = SPAN_BUDGET;
            while budget > 0 {
                let Some(s) = self.partial_unswept(sg).pop() else {
                    break;
                };
                budget -= 1;
                if s.try_acquire_sweep(sg) {
                    heap.sweep_span(s, true);
                    heap.sweep.active.end();
                    return Ok(Self::have_span(s));
                }
                // Someone else claimed it and will put it where it belongs.
            }
            while budget > 0 {
                let Some(s) = self.full_unswept(sg).pop() else {
                    break;
                };
                budget -= 1;
                if s.try_acquire_sweep(sg) {
                    heap.sweep_span(s, true);
                    // SAFETY: we own `s` as its sweeper.
                    if unsafe { s.nfree() } > 0 {
                        heap.sweep.active.end();
                        return Ok(Self::have_span(s));
                    }
                    // Sweeping freed nothing: it stays full.
                    self.full_swept(sg).push(s);
                }
            }
            heap.sweep.active.end();
        }
        let s = self.grow(heap)?;
        Ok(Self::have_span(s))
    }

    fn have_span(s: SpanRef) -> SpanRef {
        // SAFETY: the caller owns `s` (popped, swept by us, or fresh).
        unsafe {
            debug_assert!(s.nfree() > 0, "cache_span: span has no free space");
            s.prime_alloc_cache();
        }
        s
    }

    /// Returns a span from an mcache (Go's `uncacheSpan`). A span cached
    /// before the current sweep began (`sg + 1`) is swept here.
    ///
    /// The caller owned `s` as its mcache and gives that ownership up.
    pub(crate) fn uncache_span(&self, heap: &MHeap, s: SpanRef) {
        let sg = heap.sweepgen();
        let stale = s.sweepgen() == sg.wrapping_add(1);
        if stale {
            // Nobody else can reach the span (it is in no set), so no CAS is
            // needed to become its sweeper.
            s.store_sweepgen(sg.wrapping_sub(1));
            if crate::sync::broken::is("uncache_stale_dec_early") {
                // loom-tests broken variant: the order before 37b4b25,
                // count down first (loom-tests/tests/heap_sweepgen.rs).
                heap.sweep.stale_cached_spans_dec();
                heap.sweep_span(s, false);
                return;
            }
            heap.sweep_span(s, false);
            // Only now: `finish_sweep` reports the sweep finished once the
            // count is 0, and the collector then lets markers set mark bits.
            // Counting the span down before its sweep let a mark start
            // while this sweep was still running; the sweep then replaced
            // the span's mark bitmap, losing marks the new cycle had set
            // in it (found by the concurrent stress + checkmark test, about
            // 1 run in 130 under CPU load).
            heap.sweep.stale_cached_spans_dec();
        } else {
            debug_assert_eq!(s.sweepgen(), sg.wrapping_add(3), "uncache of uncached span");
            s.store_sweepgen(sg);
            // SAFETY: we still own the span until it is pushed.
            if unsafe { s.nfree() } > 0 {
                self.partial_swept(sg).push(s);
            } else {
                self.full_swept(sg).push(s);
            }
        }
    }

    /// A fresh span for this class from the page heap (Go's `grow`).
    fn grow(&self, heap: &MHeap) -> Result<SpanRef, AllocError> {
        let npages = class_npages(self.spanclass.sizeclass());
        heap.alloc_span_reclaiming(npages, self.spanclass)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{HeapConfig, MCache, SpanClass};

    #[test]
    fn span_sets_swap_roles_with_sweepgen_parity() {
        let c = MCentral::new(SpanClass::new(5, false));
        for sg in [0u32, 2, 4, 6] {
            let same = std::ptr::eq(c.partial_swept(sg), c.partial_unswept(sg + 2));
            assert!(
                same,
                "sg={sg}: this cycle's swept set is next cycle's unswept set"
            );
            assert!(std::ptr::eq(c.full_swept(sg), c.full_unswept(sg + 2)));
            assert!(!std::ptr::eq(c.partial_swept(sg), c.partial_unswept(sg)));
        }
    }

    #[test]
    fn uncached_spans_land_in_the_right_set() {
        let heap = crate::sync::Arc::new(crate::MHeap::new(HeapConfig::default()).unwrap());
        let mut m = MCache::new(heap.clone());
        let spc = SpanClass::new(crate::sizeclasses::size_to_class(1024), false);
        // One object: the span goes back partial; fill one: it goes back full.
        m.alloc(crate::AllocRequest::scan(1024)).unwrap();
        m.release_all();
        let sg = heap.sweepgen();
        assert_eq!(heap.central(spc).partial_swept(sg).len(), 1);
        for _ in 0..crate::sizeclasses::class_nobjs(spc.sizeclass()) - 1 {
            m.alloc(crate::AllocRequest::scan(1024)).unwrap();
        }
        m.release_all();
        assert_eq!(heap.central(spc).partial_swept(sg).len(), 0);
        assert_eq!(heap.central(spc).full_swept(sg).len(), 1);
        assert_eq!(heap.central(spc).span_count(), 1);
        heap.verify().unwrap();
    }
}

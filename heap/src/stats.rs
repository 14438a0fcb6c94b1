//! Heap statistics: per-size-class counts and the memory-state totals of
//! Go's `runtime.MemStats`.
//!
//! Mirrors `mstats.go`. As in Go, the allocation fast path does not touch
//! shared counters: an mcache publishes the allocations made from a span
//! when it gives the span back (refill or `release_all`). It publishes them
//! into its own [`LocalStats`] shard — one per mcache, on its own cache
//! lines, written only by its owner with plain load+store (no locked RMW,
//! no contention between mutators: Go's per-P `heapStats` shards) — and
//! `MHeap::stats` sums the shards. Frees are counted by the sweeper. So a
//! snapshot is exact for everything that has been flushed;
//! `MCache::release_all` before `MHeap::stats` makes it exact, as
//! `ReadMemStats` does by stopping the world and flushing.
//!
//! Invariant (after a flush): `heap_objects == Σ mallocs − Σ frees` and
//! `heap_alloc == Σ (mallocs − frees) × class size + large bytes in use`.

use crate::gcbits::GC_BITS_ARENA_WORDS;
use crate::mheap::HeapLocked;
use crate::mspan::{MSpan, SpanClass};
use crate::sizeclasses::{NUM_SIZE_CLASSES, PAGE_SHIFT, class_size};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
/// Per-size-class counters: reporting only, not modelled by loom (shim).
use crate::sync::unmodeled::AtomicU64 as ClassCounter;
use crate::sync::{Arc, Mutex};

/// One mcache's counters. Written only by the owning mcache (relaxed load
/// + store: a single writer cannot lose updates), read by anyone.
#[repr(align(128))]
pub(crate) struct LocalStats {
    /// Objects allocated per size class, published at uncache.
    small_mallocs: Box<[ClassCounter]>,
    /// Tiny allocations combined into an existing block.
    tiny_allocs: AtomicU64,
    /// Spans currently cached by the owning mcache.
    pub(crate) cached_spans: AtomicUsize,
}

impl LocalStats {
    fn new() -> Self {
        LocalStats {
            small_mallocs: (0..NUM_SIZE_CLASSES)
                .map(|_| ClassCounter::new(0))
                .collect(),
            tiny_allocs: AtomicU64::new(0),
            cached_spans: AtomicUsize::new(0),
        }
    }

    /// Single-writer increment (the owner is the only writer).
    #[inline]
    fn bump(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    pub(crate) fn record_small_mallocs(&self, class: u8, n: usize) {
        let c = &self.small_mallocs[class as usize];
        c.store(c.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_tiny_allocs(&self, n: u64) {
        Self::bump(&self.tiny_allocs, n);
    }

    pub(crate) fn add_cached_spans(&self, delta: isize) {
        let v = self.cached_spans.load(Ordering::Relaxed);
        self.cached_spans
            .store(v.wrapping_add_signed(delta), Ordering::Relaxed);
    }
}

/// Shared counters, updated with relaxed atomic adds.
pub(crate) struct HeapStats {
    /// Objects allocated per size class (class 0 unused).
    small_mallocs: Box<[ClassCounter]>,
    /// Objects freed per size class.
    small_frees: Box<[ClassCounter]>,
    large_mallocs: AtomicU64,
    large_alloc_bytes: AtomicU64,
    large_frees: AtomicU64,
    large_free_bytes: AtomicU64,
    tiny_allocs: AtomicU64,
    released_total: AtomicU64,
    /// Shards of live mcaches. A dropped mcache's counts are folded into
    /// the fields above and its shard removed.
    shards: Mutex<Vec<Arc<LocalStats>>>,
}

impl HeapStats {
    pub(crate) fn new() -> Self {
        HeapStats {
            small_mallocs: (0..NUM_SIZE_CLASSES)
                .map(|_| ClassCounter::new(0))
                .collect(),
            small_frees: (0..NUM_SIZE_CLASSES)
                .map(|_| ClassCounter::new(0))
                .collect(),
            large_mallocs: AtomicU64::new(0),
            large_alloc_bytes: AtomicU64::new(0),
            large_frees: AtomicU64::new(0),
            large_free_bytes: AtomicU64::new(0),
            tiny_allocs: AtomicU64::new(0),
            released_total: AtomicU64::new(0),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// A new shard for a new mcache.
    pub(crate) fn register(&self) -> Arc<LocalStats> {
        let s = Arc::new(LocalStats::new());
        self.shards.lock().push(s.clone());
        s
    }

    /// Folds a retiring mcache's shard into the global counters.
    pub(crate) fn unregister(&self, shard: &Arc<LocalStats>) {
        let mut shards = self.shards.lock();
        shards.retain(|s| !Arc::ptr_eq(s, shard));
        for (g, l) in self.small_mallocs.iter().zip(shard.small_mallocs.iter()) {
            g.fetch_add(l.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.tiny_allocs
            .fetch_add(shard.tiny_allocs.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Spans cached by all live mcaches. Exact only while no mcache runs
    /// (the caller stops the world).
    pub(crate) fn cached_spans(&self) -> usize {
        self.shards
            .lock()
            .iter()
            .map(|s| s.cached_spans.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn record_large_malloc(&self, bytes: usize) {
        self.large_mallocs.fetch_add(1, Ordering::Relaxed);
        self.large_alloc_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_sweep(&self, spc: SpanClass, nfreed: usize, elemsize: usize) {
        if nfreed == 0 {
            return;
        }
        if spc.sizeclass() == 0 {
            self.large_frees.fetch_add(1, Ordering::Relaxed);
            self.large_free_bytes
                .fetch_add(elemsize as u64, Ordering::Relaxed);
        } else {
            self.small_frees[spc.sizeclass() as usize].fetch_add(nfreed as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_scavenge(&self, bytes: usize) {
        self.released_total
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        l: &HeapLocked,
        gcbits_sys: usize,
        heap_live: u64,
        sweepgen: u32,
        arena_size: usize,
    ) -> MemStats {
        let shards = self.shards.lock();
        let local_mallocs = |c: usize| -> u64 {
            shards
                .iter()
                .map(|s| s.small_mallocs[c].load(Ordering::Relaxed))
                .sum()
        };
        let tiny: u64 = self.tiny_allocs.load(Ordering::Relaxed)
            + shards
                .iter()
                .map(|s| s.tiny_allocs.load(Ordering::Relaxed))
                .sum::<u64>();
        let mut by_size = Vec::with_capacity(NUM_SIZE_CLASSES);
        let (mut mallocs, mut frees, mut alloc_bytes, mut total_alloc) = (0u64, 0u64, 0u64, 0u64);
        for c in 1..NUM_SIZE_CLASSES {
            let m = self.small_mallocs[c].load(Ordering::Relaxed) + local_mallocs(c);
            let f = self.small_frees[c].load(Ordering::Relaxed);
            let size = class_size(c as u8) as u64;
            by_size.push(ClassStats {
                class: c as u8,
                size: size as usize,
                mallocs: m,
                frees: f,
            });
            mallocs += m;
            frees += f;
            alloc_bytes += m.saturating_sub(f) * size;
            total_alloc += m * size;
        }
        let lm = self.large_mallocs.load(Ordering::Relaxed);
        let lf = self.large_frees.load(Ordering::Relaxed);
        let lab = self.large_alloc_bytes.load(Ordering::Relaxed);
        let lfb = self.large_free_bytes.load(Ordering::Relaxed);
        let in_use = (l.pages_in_use << PAGE_SHIFT) as u64;
        let free = (l.pages.free_pages() << PAGE_SHIFT) as u64;
        let released = (l.pages.scavenged_pages() << PAGE_SHIFT) as u64;
        let span_size = std::mem::size_of::<MSpan>() as u64;
        MemStats {
            heap_alloc: alloc_bytes + lab.saturating_sub(lfb),
            total_alloc: total_alloc + lab,
            heap_sys: l.mapped as u64,
            heap_inuse: in_use,
            heap_idle: free,
            heap_released: released,
            heap_objects: (mallocs + lm).saturating_sub(frees + lf),
            mallocs: mallocs + lm,
            frees: frees + lf,
            tiny_allocs: tiny,
            large_mallocs: lm,
            large_frees: lf,
            large_bytes_in_use: lab.saturating_sub(lfb),
            mspan_inuse: l.allspans.len() as u64 * span_size,
            gc_sys: gcbits_sys as u64,
            released_total: self.released_total.load(Ordering::Relaxed),
            heap_live,
            sweepgen,
            arenas: (l.pages.pages() << PAGE_SHIFT) as u64 / arena_size as u64,
            by_size,
            gcbits_arena_bytes: (GC_BITS_ARENA_WORDS * 8) as u64,
        }
    }
}

/// Per-size-class counters (Go's `MemStats.BySize`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// Size class (1..=67).
    pub class: u8,
    /// Bytes per object.
    pub size: usize,
    /// Objects allocated (flushed).
    pub mallocs: u64,
    /// Objects freed by sweeping.
    pub frees: u64,
}

/// A snapshot of heap statistics (the memory part of Go's
/// `runtime.MemStats`). All sizes in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemStats {
    /// Bytes of allocated objects (flushed counts): small objects at their
    /// class size, large objects at their page-rounded size.
    pub heap_alloc: u64,
    /// Cumulative bytes allocated.
    pub total_alloc: u64,
    /// Bytes of heap memory mapped from the OS (committed).
    pub heap_sys: u64,
    /// Bytes in in-use spans.
    pub heap_inuse: u64,
    /// Bytes in free pages (released or not).
    pub heap_idle: u64,
    /// Bytes of free pages returned to the OS (or never touched).
    pub heap_released: u64,
    /// Live objects (flushed counts).
    pub heap_objects: u64,
    /// Cumulative objects allocated (a tiny block counts once, as Go's
    /// `Mallocs`; allocations = `mallocs + tiny_allocs`).
    pub mallocs: u64,
    /// Cumulative objects freed.
    pub frees: u64,
    /// Tiny allocations combined into an already-allocated tiny block.
    pub tiny_allocs: u64,
    /// Cumulative large objects allocated.
    pub large_mallocs: u64,
    /// Cumulative large objects freed.
    pub large_frees: u64,
    /// Bytes of large objects in use.
    pub large_bytes_in_use: u64,
    /// Bytes of span structures (Go's `MSpanInuse`).
    pub mspan_inuse: u64,
    /// Bytes of mark/alloc bitmap arenas (part of Go's `GCSys`).
    pub gc_sys: u64,
    /// Cumulative bytes released to the OS by the scavenger.
    pub released_total: u64,
    /// Go's `heapLive` (pacer input).
    pub heap_live: u64,
    /// The heap's sweepgen.
    pub sweepgen: u32,
    /// Arenas in the page index space (including separators).
    pub arenas: u64,
    /// Per-class counters, classes 1..=67.
    pub by_size: Vec<ClassStats>,
    /// Size of one gcBits arena.
    pub gcbits_arena_bytes: u64,
}

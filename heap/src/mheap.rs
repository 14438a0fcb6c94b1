//! The page heap: arenas, the page allocator, span allocation, and the
//! per-class central lists. One `MHeap` per spanheap heap.
//!
//! Mirrors Go's `mheap.go` (`mheap`, `allocSpan`, `freeSpanLocked`, `grow`,
//! `sysAlloc`'s arena hints from `malloc.go`). See the crate docs for the
//! overview.
//!
//! ## Locking
//! `lock` (Go's `mheap_.lock`) protects [`HeapLocked`]: the page allocator,
//! the span fixalloc, the arena list and growth frontier. It is a leaf with
//! respect to the span-set locks: code holding `lock` never takes a span-set
//! lock, except `alloc_span`'s callers, which push *after* releasing it.
//! Lock order: span set → `lock` → gcBits arenas.
//!
//! ## Page index space
//! The page allocator works on dense page numbers. Arena `k` (its
//! `ordinal`) covers pages `k * pages_per_arena ..`. Arenas reserved at
//! consecutive addresses get consecutive ordinals, so runs may straddle
//! them (large objects bigger than an arena need that); a non-contiguous
//! arena skips one ordinal, which stays "not present" in the page allocator
//! and so separates the two address ranges.
//!
//! ## Memory states (Go's `mem.go`), in bytes
//! `reserved ≥ mapped = in_use + free` (plus, briefly, the pages the
//! scavenger is releasing without the lock), and `free = released + dirty`:
//! * reserved: arenas' address space (PROT_NONE until mapped);
//! * mapped (`heap_sys`): committed chunk by chunk (4 MiB) as the heap grows;
//! * in_use: pages in spans;
//! * released: free pages whose memory went back to the OS (or never left
//!   it) — they read as zero, so spans built only of them skip zeroing.

use crate::arena::{ArenaIndex, HeapArena};
use crate::error::{AllocError, ConfigError};
use crate::fixalloc::FixAlloc;
use crate::gcbits::GcBitsArenas;
use crate::mcentral::MCentral;
use crate::mspan::{MSpan, NUM_SPAN_CLASSES, SpanClass, SpanRef, SpanState};
use crate::os;
use crate::pagealloc::{PALLOC_CHUNK_PAGES, PageAlloc};
use crate::sizeclasses::{PAGE_SHIFT, PAGE_SIZE};
use crate::stats::{HeapStats, MemStats};
use crate::sweep::SweepState;
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard, RwLock};

/// Bytes per page-allocator chunk (512 pages = 4 MiB); the unit of commit.
pub const CHUNK_BYTES: usize = PALLOC_CHUNK_PAGES * PAGE_SIZE;

/// Default arena size: 64 MiB, Go's on 64-bit Linux.
pub const DEFAULT_ARENA_SIZE: usize = 64 << 20;

/// Bit of `alloc_state` meaning "allocate black" (marking is running).
pub(crate) const ALLOC_BLACK: u64 = 1;
/// `alloc_state` bits 1..33 hold the sweepgen; above them, the handshake
/// generation (see [`MHeap::request_handshake`]).
pub(crate) const HANDSHAKE_SHIFT: u32 = 33;
/// The sweepgen and allocate-black bits of `alloc_state`.
pub(crate) const SG_BLACK_MASK: u64 = (1 << HANDSHAKE_SHIFT) - 1;

/// Called by the sweeper for each freed object of a *scan* span, with the
/// object's address, before its slot can be reused. The collector runs
/// drop glue / finalizer bookkeeping here. It must not allocate from or
/// free into this heap (it may run inside an allocation's slow path).
pub type FreeHook = Box<dyn Fn(usize) + Send + Sync>;

/// Heap configuration. Build with `HeapConfig::default()` and the setters.
#[derive(Clone, Debug)]
pub struct HeapConfig {
    /// Arena size in bytes: power of two, 4 MiB ..= 1 GiB (default 64 MiB).
    pub arena_size: usize,
    /// Largest single allocation in bytes (default 1 TiB).
    pub max_object_size: usize,
    /// Hard limit on bytes of pages in spans; allocations past it fail with
    /// [`AllocError::HeapLimit`] (default: none).
    pub heap_limit: Option<usize>,
    /// Free memory the scavenger keeps mapped, as a percentage on top of the
    /// in-use heap (Go's `retainExtraPercent`, default 10).
    pub retain_extra_percent: usize,
    /// **Debug.** Fill every freed object with [`POISON_BYTE`] when its
    /// span is swept (after its drop hook ran), so that a dangling pointer
    /// reads poison rather than stale data (default off).
    pub poison_freed: bool,
    /// **Debug** (Go's `GODEBUG=efence=1`). Every object gets pages of its
    /// own, and pages of a freed object are never reused: they stay
    /// mapped, are poisoned, and leave the page map, so a dangling pointer
    /// reads [`POISON_BYTE`]s instead of a newer object. Memory is never
    /// returned, so this is for tests of modest size (default off).
    pub never_reuse: bool,
}

/// The byte freed objects are filled with under
/// [`HeapConfig::poison_freed`] and [`HeapConfig::never_reuse`].
pub const POISON_BYTE: u8 = 0xDB;

impl Default for HeapConfig {
    fn default() -> Self {
        HeapConfig {
            arena_size: DEFAULT_ARENA_SIZE,
            max_object_size: 1 << 40,
            heap_limit: None,
            retain_extra_percent: 10,
            poison_freed: false,
            never_reuse: false,
        }
    }
}

impl HeapConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = self.arena_size;
        if !a.is_power_of_two() || !(CHUNK_BYTES..=1 << 30).contains(&a) {
            return Err(ConfigError::BadArenaSize(a));
        }
        if self.max_object_size == 0 {
            return Err(ConfigError::BadMaxObjectSize(0));
        }
        if let Some(l) = self.heap_limit
            && l < a
        {
            return Err(ConfigError::BadHeapLimit(l));
        }
        Ok(())
    }
}

/// State under `mheap.lock`.
pub(crate) struct HeapLocked {
    pub(crate) pages: PageAlloc,
    spanalloc: FixAlloc<MSpan>,
    /// Every span struct ever allocated (dead ones included), for heap walks
    /// (Go's `allspans`).
    pub(crate) allspans: Vec<SpanRef>,
    /// Base address of each ordinal's arena; None for separator ordinals.
    arena_bases: Vec<Option<usize>>,
    /// Reservations to unmap on drop: (base, bytes).
    reservations: Vec<(usize, usize)>,
    /// Growth frontier: next uncommitted page index (dense space), and the
    /// end of the reserved range it lies in.
    frontier: usize,
    frontier_end: usize,
    /// Pages in in-use spans, plus `retired_pages`.
    pub(crate) pages_in_use: usize,
    /// Pages of freed spans that are never reused
    /// ([`HeapConfig::never_reuse`]): allocated in the page allocator,
    /// in no span, poisoned. Counted in `pages_in_use` (they stay mapped
    /// and count against the heap limit).
    retired_pages: usize,
    /// Pages the scavenger has taken out of the free set and is releasing
    /// to the OS without the lock (`MHeap::scavenge`): neither free nor in
    /// a span until it returns them.
    scavenging_pages: usize,
    /// Committed bytes.
    pub(crate) mapped: usize,
}

/// Aligns (and so pads) `T` to 128 bytes — two cache lines, covering the
/// adjacent-line prefetcher — so that hot written fields do not share lines
/// with read-mostly ones (crossbeam's `CachePadded`).
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The page heap. Shared by all mutators (`Arc<MHeap>`).
pub struct MHeap {
    pub(crate) config: HeapConfig,
    pages_per_arena: usize,
    /// `sg`, rising by 2 per cycle. Written only by `begin_sweep`, under
    /// `sweep_gate` held exclusively.
    sweepgen: AtomicU32,
    /// `handshake << 33 | sweepgen << 1 | ALLOC_BLACK?`: what mcaches
    /// compare against on the fast path. The sweepgen and black bits change
    /// only under `sweep_gate` held exclusively; the handshake generation
    /// only grows (any thread, `request_handshake`).
    pub(crate) alloc_state: AtomicU64,
    /// Held shared by every mcache slow path that reads the sweepgen or
    /// moves spans between an mcache and the central lists (refill,
    /// uncache, large allocation, state sync); held exclusively while the
    /// sweepgen or allocate-black changes. This is what lets a sweep begin
    /// while mutators keep allocating: an mcache fast path only touches
    /// its own cached spans, which stay valid across the change (a span
    /// cached at `sg + 3` reads as `sg' + 1`, "cached, must be swept on
    /// uncache"); every path that could see two generations at once is
    /// excluded.
    pub(crate) sweep_gate: RwLock<()>,
    pub(crate) lock: Mutex<HeapLocked>,
    pub(crate) arenas: ArenaIndex,
    central: Box<[CachePadded<MCentral>]>,
    pub(crate) gcbits: GcBitsArenas,
    /// Written by every sweeper (`ActiveSweep`): on its own cache lines so
    /// it does not slow readers of the read-mostly fields above.
    pub(crate) sweep: CachePadded<SweepState>,
    pub(crate) stats: HeapStats,
    /// Bytes of allocations since the last `reset_heap_live`, counting whole
    /// cached spans as allocated (Go's `heapLive`).
    /// Written at every span refill by every mcache: on its own cache lines
    /// (false sharing with `sweepgen`, read on every refill, cost more than
    /// the add itself in the 2-thread benchmark).
    pub(crate) heap_live: CachePadded<AtomicU64>,
    /// `heap_live` level at which mcaches report that a collection is due.
    pub(crate) gc_trigger: AtomicU64,
    /// The mcaches' empty-span sentinel (Go's `emptymspan`).
    pub(crate) empty_span: Box<MSpan>,
    pub(crate) free_hook: Option<FreeHook>,
    /// Scavenger wake-up.
    pub(crate) scav_cv: Condvar,
    pub(crate) scav_goal: AtomicU64,
}

// SAFETY: all shared mutable state is behind `lock`, atomics, or the span
// ownership protocol; raw pointers inside are handles to memory the heap
// owns for its whole life.
unsafe impl Send for MHeap {}
// SAFETY: as above.
unsafe impl Sync for MHeap {}

/// An object found by [`MHeap::find_object`]; borrows the heap, so the span
/// reference cannot outlive it:
///
/// ```compile_fail
/// use spanheap_heap::{HeapConfig, MHeap, MSpan};
/// let span: Option<&MSpan> = {
///     let heap = MHeap::new(HeapConfig::default()).unwrap();
///     heap.find_object(0x1000).map(|o| o.span)
/// }; // error: `heap` does not live long enough
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ObjectRef<'h> {
    /// The span holding the object.
    pub span: &'h MSpan,
    /// Object index within the span.
    pub index: usize,
    /// First byte of the object.
    pub base: usize,
}

impl MHeap {
    /// A new, empty heap. No memory is reserved until the first allocation.
    pub fn new(config: HeapConfig) -> Result<MHeap, ConfigError> {
        Self::with_free_hook(config, None)
    }

    /// A new heap whose sweeper calls `hook` for each freed scan object of
    /// a span in which some object was allocated with
    /// `AllocRequest::free_hook` (the default for scan requests).
    pub fn with_free_hook(
        config: HeapConfig,
        hook: Option<FreeHook>,
    ) -> Result<MHeap, ConfigError> {
        config.validate()?;
        let central = (0..NUM_SPAN_CLASSES)
            .map(|i| CachePadded(MCentral::new(SpanClass(i as u8))))
            .collect();
        let sg = 0;
        Ok(MHeap {
            pages_per_arena: config.arena_size >> PAGE_SHIFT,
            arenas: ArenaIndex::new(config.arena_size.trailing_zeros()),
            config,
            sweepgen: AtomicU32::new(sg),
            alloc_state: AtomicU64::new((sg as u64) << 1),
            sweep_gate: RwLock::new(()),
            lock: Mutex::new(HeapLocked {
                pages: PageAlloc::new(),
                spanalloc: FixAlloc::new(),
                allspans: Vec::new(),
                arena_bases: Vec::new(),
                reservations: Vec::new(),
                frontier: 0,
                frontier_end: 0,
                pages_in_use: 0,
                retired_pages: 0,
                scavenging_pages: 0,
                mapped: 0,
            }),
            central,
            gcbits: GcBitsArenas::new(),
            sweep: CachePadded(SweepState::new()),
            stats: HeapStats::new(),
            heap_live: CachePadded(AtomicU64::new(0)),
            gc_trigger: AtomicU64::new(u64::MAX),
            empty_span: Box::new(MSpan::new_empty_sentinel()),
            free_hook: hook,
            scav_cv: Condvar::new(),
            scav_goal: AtomicU64::new(u64::MAX),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HeapConfig {
        &self.config
    }

    /// The heap's sweepgen `sg`.
    #[inline(always)]
    pub fn sweepgen(&self) -> u32 {
        self.sweepgen.load(Ordering::Acquire)
    }

    /// Sets the sweepgen and clears allocate-black in one store (a sweep
    /// begins exactly when marking ends). The caller holds `sweep_gate`
    /// exclusively.
    pub(crate) fn set_sweepgen(&self, sg: u32) {
        self.sweepgen.store(sg, Ordering::Release);
        let hs = self.alloc_state.load(Ordering::Relaxed) & !SG_BLACK_MASK;
        self.alloc_state
            .store(hs | ((sg as u64) << 1), Ordering::Release);
    }

    /// Turns allocate-black on: from each mcache's next allocation on,
    /// new objects are allocated with their mark bit set (Go's
    /// `gcmarknewobject`, active while `gcphase != _GCoff`). It is turned
    /// off by [`MHeap::begin_sweep`], atomically with the new sweepgen.
    ///
    /// An mcache may still allocate white objects until its fast path
    /// observes the change (a relaxed load); a collector that needs every
    /// mcache to allocate black from some point on must get an
    /// acknowledgement from each (its handshake: [`MCache::sync`] after
    /// [`MHeap::request_handshake`] does it).
    ///
    /// # Safety
    /// 1. Sweeping is finished ([`MHeap::finish_sweep`] returned `Ok` and
    ///    no `begin_sweep` since): mark bits may be set from now on.
    ///
    /// [`MCache::sync`]: crate::MCache::sync
    pub unsafe fn set_allocate_black(&self) {
        let _g = self.sweep_gate.write();
        self.alloc_state.fetch_or(ALLOC_BLACK, Ordering::AcqRel);
    }

    /// Whether allocate-black is on.
    pub fn allocate_black(&self) -> bool {
        self.alloc_state.load(Ordering::Relaxed) & ALLOC_BLACK != 0
    }

    /// Makes every mcache that reports handshakes (see
    /// [`MCache::report_handshakes`]) fail its next allocation with
    /// [`AllocError::Handshake`] once, so that its owner reaches a
    /// collector handshake within one allocation (Go's preemption request).
    ///
    /// [`MCache::report_handshakes`]: crate::MCache::report_handshakes
    /// [`AllocError::Handshake`]: crate::AllocError::Handshake
    pub fn request_handshake(&self) {
        self.alloc_state
            .fetch_add(1 << HANDSHAKE_SHIFT, Ordering::AcqRel);
    }

    /// The central list of span class `spc`.
    #[inline(always)]
    pub fn central(&self, spc: SpanClass) -> &MCentral {
        &self.central[spc.index()].0
    }

    /// Bytes allocated since the last [`MHeap::reset_heap_live`] (Go's
    /// `heapLive`: whole cached spans count as allocated).
    pub fn heap_live(&self) -> u64 {
        // Two's complement: uncaching a span cached before the last reset
        // can take the counter briefly below zero.
        (self.heap_live.0.load(Ordering::Relaxed) as i64).max(0) as u64
    }

    /// Sets `heap_live` (the collector sets it to the marked bytes at the
    /// end of marking).
    pub fn reset_heap_live(&self, bytes: u64) {
        self.heap_live.0.store(bytes, Ordering::Relaxed);
    }

    /// Sets the `heap_live` level at which allocation slow paths report
    /// that a collection is due (see `MCache::gc_due`).
    pub fn set_gc_trigger(&self, bytes: u64) {
        self.gc_trigger.store(bytes, Ordering::Relaxed);
    }

    /// The trigger set by [`MHeap::set_gc_trigger`].
    pub fn gc_trigger(&self) -> u64 {
        self.gc_trigger.load(Ordering::Relaxed)
    }

    pub(crate) fn add_heap_live(&self, delta: i64) {
        // Wrapping add of a two's-complement delta (see `heap_live`).
        self.heap_live.0.fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Whether `heap_live` has reached the trigger set by [`MHeap::set_gc_trigger`].
    pub fn trigger_reached(&self) -> bool {
        self.heap_live() >= self.gc_trigger.load(Ordering::Relaxed)
    }

    // ---------------------------------------------------------------
    // Address → span / object.
    // ---------------------------------------------------------------

    /// The in-use span containing `addr`, if any (Go's `spanOfHeap`).
    #[inline]
    pub fn span_of(&self, addr: usize) -> Option<&MSpan> {
        self.arenas.span_of(addr).map(|s| s.get(self))
    }

    /// The object containing `addr` — interior pointers included — if
    /// `addr` lies inside an in-use span and below its last object's end
    /// (Go's `findObject`). Does not check that the slot is allocated.
    #[inline]
    pub fn find_object(&self, addr: usize) -> Option<ObjectRef<'_>> {
        let span = self.span_of(addr)?;
        let index = span.object_index(addr);
        if index >= span.nelems() {
            return None; // in the span's tail waste
        }
        Some(ObjectRef {
            span,
            index,
            base: span.object_addr(index),
        })
    }

    /// Marks the object containing `addr` (grey-or-black bit in
    /// `gcmarkBits`, and the span's page-mark bit). Returns `Some(true)` if
    /// it was already marked, `Some(false)` if this call marked it, None if
    /// `addr` is not in this heap.
    #[inline]
    pub fn mark_object(&self, addr: usize) -> Option<bool> {
        let o = self.find_object(addr)?;
        let was = o.span.mark(o.index);
        if !was {
            self.set_span_page_marked(o.span);
        }
        Some(was)
    }

    /// Marks an object already found with [`MHeap::find_object`] (saves the
    /// collector a second lookup). Returns true if it was already marked.
    #[inline]
    pub fn mark_found(&self, o: &ObjectRef<'_>) -> bool {
        let was = o.span.mark(o.index);
        // Concurrent markers may both find the span's note stale and both
        // set the (atomic) page-mark bit: harmless. Page marks are read
        // only after marking has finished.
        if !was && !o.span.note_page_marked(self.sweepgen()) {
            self.set_span_page_marked(o.span);
        }
        was
    }

    pub(crate) fn set_span_page_marked(&self, s: &MSpan) {
        let base = s.base();
        if let Some(a) = self.arenas.arena_of(base) {
            a.set_page_marked((base - a.base) >> PAGE_SHIFT);
        }
    }

    /// Whether the span starting at `base` has a marked object, per the
    /// page-mark bitmap (Go's `pageMarks`).
    pub fn span_page_marked(&self, s: &MSpan) -> bool {
        let base = s.base();
        self.arenas
            .arena_of(base)
            .is_some_and(|a| a.page_marked((base - a.base) >> PAGE_SHIFT))
    }

    // ---------------------------------------------------------------
    // Span allocation and free.
    // ---------------------------------------------------------------

    fn page_addr(&self, l: &HeapLocked, page: usize) -> usize {
        let ord = page / self.pages_per_arena;
        match l.arena_bases.get(ord).copied().flatten() {
            Some(base) => base + ((page % self.pages_per_arena) << PAGE_SHIFT),
            None => unreachable!("page {page} of separator ordinal {ord} was allocated"),
        }
    }

    fn addr_page(&self, addr: usize) -> usize {
        match self.arenas.arena_of(addr) {
            Some(a) => a.ordinal * self.pages_per_arena + ((addr - a.base) >> PAGE_SHIFT),
            None => unreachable!("address {addr:#x} is not in this heap"),
        }
    }

    /// Allocates a span of `npages` pages for span class `spc` (Go's
    /// `allocSpan`). The span is InUse, swept (`sweepgen == sg`), and owned
    /// by the caller; it is in no set.
    pub(crate) fn alloc_span(&self, npages: usize, spc: SpanClass) -> Result<SpanRef, AllocError> {
        let mut l = self.lock.lock();
        if let Some(limit) = self.config.heap_limit {
            let in_use = l.pages_in_use << PAGE_SHIFT;
            let requested = npages << PAGE_SHIFT;
            if in_use + requested > limit {
                return Err(AllocError::HeapLimit {
                    requested,
                    in_use,
                    limit,
                });
            }
        }
        let found = if crate::sync::broken::is("pagealloc_find_unlocked") {
            // loom-tests broken variant: find the run under the lock, take
            // it under a second acquisition (loom-tests/tests/heap_pagealloc.rs).
            let base = l.pages.find_run(npages);
            drop(l);
            l = self.lock.lock();
            base.map(|b| l.pages.alloc_run(b, npages))
        } else {
            l.pages.alloc(npages)
        };
        let run = match found {
            Some(r) => r,
            None => {
                self.grow(&mut l, npages)?;
                match l.pages.alloc(npages) {
                    Some(r) => r,
                    None => unreachable!("grow added a free run of {npages} pages"),
                }
            }
        };
        let base = self.page_addr(&l, run.base);
        let needzero = run.scavenged < npages;
        let mut fresh = false;
        let sp = l.spanalloc.alloc(|| {
            fresh = true;
            MSpan::new_dead()
        });
        let Some(sp) = sp else {
            l.pages.free(run.base, npages);
            return Err(AllocError::OutOfMemory {
                requested: std::mem::size_of::<MSpan>(),
                errno: libc::ENOMEM,
            });
        };
        let span = SpanRef(sp);
        if fresh {
            // A new struct (not recycled): remember it for heap walks.
            l.allspans.push(span);
        }
        // SAFETY: heap lock held; the struct is Dead and unreachable by any
        // owner (fresh or recycled from fixalloc) — obligation 1; the pages
        // were just taken from the page allocator and are committed —
        // obligation 2.
        unsafe { span.init(base, npages, spc, self.sweepgen(), needzero, &self.gcbits) };
        if spc.sizeclass() != 0 {
            // Slots become addressable one by one as the mcache hands them
            // out (a large object is unpoisoned by its allocator).
            crate::sanitizer::poison(base, npages << PAGE_SHIFT);
        }
        self.record_span_pages(span, base, npages);
        if let Some(a) = self.arenas.arena_of(base) {
            a.set_page_in_use((base - a.base) >> PAGE_SHIFT, true);
        }
        l.pages_in_use += npages;
        Ok(span)
    }

    /// Points the page map at `span` for each of its pages, which may
    /// straddle contiguous arenas.
    fn record_span_pages(&self, span: SpanRef, base: usize, npages: usize) {
        let mut addr = base;
        let end = base + (npages << PAGE_SHIFT);
        while addr < end {
            let Some(a) = self.arenas.arena_of(addr) else {
                unreachable!("span page {addr:#x} outside any arena")
            };
            let first = (addr - a.base) >> PAGE_SHIFT;
            let n = (self.pages_per_arena - first).min((end - addr) >> PAGE_SHIFT);
            a.set_spans(first, n, span);
            addr += n << PAGE_SHIFT;
        }
    }

    /// Returns an empty span's pages to the page heap (Go's `freeSpan`).
    /// The caller owns `s` and drops that ownership.
    pub(crate) fn free_span(&self, s: SpanRef) {
        let base = s.base();
        let npages = s.npages();
        crate::sanitizer::poison(base, npages << PAGE_SHIFT);
        let page = self.addr_page(base);
        let mut l = self.lock.lock();
        if let Some(a) = self.arenas.arena_of(base) {
            a.set_page_in_use((base - a.base) >> PAGE_SHIFT, false);
        }
        // SAFETY: heap lock held; the caller owned the span and gives it up;
        // spans are freed only by sweepers, never during marking.
        unsafe { s.set_dead() };
        l.pages.free(page, npages);
        l.pages_in_use -= npages;
        // SAFETY: `s` came from this fixalloc and is not freed twice (it was
        // InUse until just now).
        unsafe { l.spanalloc.free(s.0) };
        let over = self.retained_bytes_locked(&l) > self.scav_goal.load(Ordering::Relaxed) as usize;
        drop(l);
        if over {
            self.scav_cv.notify_one();
        }
    }

    /// Frees a span whose object died without returning its pages
    /// ([`HeapConfig::never_reuse`], Go's efence): the span leaves the page
    /// map (lookups of its addresses find nothing) and its struct is
    /// reused, but its pages stay allocated in the page allocator, so no
    /// later object ever gets their addresses. The sweep has already
    /// poisoned them.
    pub(crate) fn retire_span(&self, s: SpanRef) {
        let base = s.base();
        let npages = s.npages();
        crate::sanitizer::poison(base, npages << PAGE_SHIFT);
        let mut l = self.lock.lock();
        if let Some(a) = self.arenas.arena_of(base) {
            a.set_page_in_use((base - a.base) >> PAGE_SHIFT, false);
        }
        // SAFETY: heap lock held; the caller (its sweeper) owned the span
        // and gives it up; spans are freed only by sweepers, never during
        // marking.
        unsafe { s.set_dead() };
        l.retired_pages += npages;
        // SAFETY: `s` came from this fixalloc and is not freed twice (it was
        // InUse until just now).
        unsafe { l.spanalloc.free(s.0) };
    }

    /// Adds at least `npages` free pages (Go's `mheap.grow`). Lock held.
    fn grow(&self, l: &mut MutexGuard<'_, HeapLocked>, npages: usize) -> Result<(), AllocError> {
        let chunks = npages.div_ceil(PALLOC_CHUNK_PAGES);
        let need = chunks * PALLOC_CHUNK_PAGES;
        if l.frontier + need > l.frontier_end {
            // The current reservation is too small: reserve more arenas,
            // contiguously if the OS lets us. Reserve enough for the whole
            // request on its own, since the new range may turn out not to
            // be contiguous with the old tail (address space is cheap; only
            // committed chunks cost memory).
            let narenas = need.div_ceil(self.pages_per_arena);
            let bytes = narenas * self.config.arena_size;
            let hint = match l.frontier_end {
                0 => 0,
                end => self.page_addr(l, end - 1) + PAGE_SIZE,
            };
            let base = os::reserve(bytes, self.config.arena_size, hint)?;
            if !self.arenas.covers(base, bytes) {
                // SAFETY: just reserved, unused.
                unsafe { os::unreserve(base, bytes) };
                return Err(AllocError::OutOfMemory {
                    requested: bytes,
                    errno: 0,
                });
            }
            l.reservations.push((base, bytes));
            let contiguous = hint != 0 && base == hint;
            let mut ord = l.arena_bases.len();
            if !contiguous {
                // Commit what is left of the old reservation as free pages,
                // then skip one ordinal to separate the two ranges.
                if l.frontier < l.frontier_end {
                    let rest = l.frontier_end - l.frontier;
                    let f = l.frontier;
                    self.commit_pages(l, f, rest)?;
                }
                if ord > 0 {
                    l.arena_bases.push(None);
                    ord += 1;
                }
                l.frontier = ord * self.pages_per_arena;
            }
            for i in 0..narenas {
                let abase = base + i * self.config.arena_size;
                l.arena_bases.push(Some(abase));
                self.arenas
                    .insert(HeapArena::new(abase, ord + i, self.pages_per_arena));
            }
            l.frontier_end = (ord + narenas) * self.pages_per_arena;
            let total_chunks = l.frontier_end / PALLOC_CHUNK_PAGES;
            l.pages.grow_to(total_chunks);
        }
        let f = l.frontier;
        self.commit_pages(l, f, need)?;
        Ok(())
    }

    /// Commits pages `[first, first+n)` of the dense space (at the
    /// frontier) and hands them to the page allocator as free + scavenged.
    fn commit_pages(
        &self,
        l: &mut MutexGuard<'_, HeapLocked>,
        first: usize,
        n: usize,
    ) -> Result<(), AllocError> {
        // Commit arena by arena (ordinals are contiguous in address here).
        let mut p = first;
        while p < first + n {
            let in_arena = self.pages_per_arena - p % self.pages_per_arena;
            let k = in_arena.min(first + n - p);
            let addr = self.page_addr(l, p);
            // SAFETY: the range lies in a live reservation of this heap
            // (between the frontier and frontier_end).
            unsafe { os::commit(addr, k << PAGE_SHIFT)? };
            p += k;
        }
        l.pages.add_fresh(first, n);
        l.mapped += n << PAGE_SHIFT;
        l.frontier = first + n;
        Ok(())
    }

    // ---------------------------------------------------------------
    // Scavenging support.
    // ---------------------------------------------------------------

    pub(crate) fn retained_bytes_locked(&self, l: &HeapLocked) -> usize {
        l.mapped - (l.pages.scavenged_pages() << PAGE_SHIFT)
    }

    /// Releases free pages to the OS until retained memory (in-use plus
    /// free-but-resident) is at most `goal` bytes, at most `max_bytes` per
    /// call. Returns the bytes released. The heap lock is not held while
    /// the OS works (Go's `scavengeOne`).
    pub fn scavenge(&self, goal: usize, max_bytes: usize) -> usize {
        // Release in 64 KiB steps (Go's `maxPagesPerPhysPage`-sized
        // batches), so the lock is held only briefly.
        const STEP_PAGES: usize = 8;
        let mut released = 0;
        while released < max_bytes {
            let mut l = self.lock.lock();
            if self.retained_bytes_locked(&l) <= goal {
                break;
            }
            let Some((first, n)) = l.pages.scavenge_take(STEP_PAGES) else {
                break;
            };
            let addr = self.page_addr(&l, first);
            l.scavenging_pages += n;
            // The run does not straddle arenas unless they are contiguous
            // in address (separator ordinals are never free).
            drop(l);
            // SAFETY: the pages are committed heap memory that
            // `scavenge_take` marked allocated, so no span uses them and no
            // allocation can take them until `scavenge_return`.
            unsafe { os::release(addr, n << PAGE_SHIFT) };
            let mut l = self.lock.lock();
            l.pages.scavenge_return(first, n);
            l.scavenging_pages -= n;
            drop(l);
            self.stats.record_scavenge(n << PAGE_SHIFT);
            released += n << PAGE_SHIFT;
        }
        released
    }

    /// Releases every free page to the OS (Go's `debug.FreeOSMemory`
    /// without the GC). Returns the bytes released.
    pub fn release_free_memory(&self) -> usize {
        self.scavenge(0, usize::MAX)
    }

    /// The retained-memory goal the background scavenger works towards:
    /// in-use pages plus `retain_extra_percent`.
    pub fn scavenge_goal(&self) -> usize {
        let l = self.lock.lock();
        let in_use = l.pages_in_use << PAGE_SHIFT;
        in_use + in_use * self.config.retain_extra_percent / 100
    }

    /// Sets the goal at which freeing spans wakes the background scavenger
    /// (the collector updates it each cycle; `usize::MAX` disables).
    pub fn set_scavenge_goal(&self, bytes: usize) {
        self.scav_goal.store(bytes as u64, Ordering::Relaxed);
    }

    // ---------------------------------------------------------------
    // Stats and walks.
    // ---------------------------------------------------------------

    /// A snapshot of the heap's statistics. Allocation counts include only
    /// what mcaches have flushed (at refill and `release_all`), as in Go,
    /// where `ReadMemStats` flushes every mcache first.
    pub fn stats(&self) -> MemStats {
        let l = self.lock.lock();
        self.stats.snapshot(
            &l,
            self.gcbits.sys_bytes(),
            self.heap_live(),
            self.sweepgen(),
            self.config.arena_size,
        )
    }

    /// Calls `f` for every in-use span. Spans being allocated or freed
    /// concurrently may or may not be seen.
    pub fn for_each_span(&self, mut f: impl FnMut(&MSpan)) {
        let spans = self.lock.lock().allspans.clone();
        for s in spans {
            if s.state() == SpanState::InUse {
                f(s.get(self));
            }
        }
    }

    /// Calls `f(base, span)` for every allocated object of every in-use
    /// span (the collector's teardown uses it to drop the survivors).
    ///
    /// # Safety
    /// 1. No other thread uses the heap until this returns, and no mcache
    ///    holds a span (every cache was flushed with `release_all`), so the
    ///    caller owns every span in the sense of the ownership protocol.
    /// 2. Sweeping has finished ([`MHeap::finish_sweep`] returned `Ok`), so
    ///    `allocBits` is exact.
    pub unsafe fn for_each_allocated(&self, mut f: impl FnMut(usize, &MSpan)) {
        let spans = self.lock.lock().allspans.clone();
        for s in spans {
            if s.state() != SpanState::InUse {
                continue;
            }
            let s = s.get(self);
            for i in 0..s.nelems() {
                // SAFETY: obligation 1 makes us the span's owner; i < nelems.
                if unsafe { s.is_allocated(i) } {
                    f(s.object_addr(i), s);
                }
            }
        }
    }

    /// Checks the heap's structural invariants: page allocator summaries,
    /// page accounting (`mapped == in_use + free`), the page map and
    /// `pageInUse` bit of every in-use span, and — for every span in a
    /// central list — its sweepgen, list placement, geometry, `allocCount`
    /// against the bitmaps, and `allocCache` against `allocBits`. Spans
    /// cached in mcaches are checked by [`crate::MCache::verify`].
    pub fn verify(&self) -> Result<(), String> {
        let l = self.lock.lock();
        l.pages.verify()?;
        let mut in_use = 0;
        for &s in &l.allspans {
            if s.state() != SpanState::InUse {
                continue;
            }
            in_use += s.npages();
            let mut addr = s.base();
            while addr < s.end() {
                match self.arenas.span_of(addr) {
                    Some(t) if t == s => {}
                    other => {
                        return Err(format!("page map: {addr:#x} of {s:?} maps to {other:?}"));
                    }
                }
                let p = self.addr_page(addr);
                if l.pages.is_free(p) {
                    return Err(format!("page {p} of {s:?} is free in the page allocator"));
                }
                addr += PAGE_SIZE;
            }
        }
        if in_use + l.retired_pages != l.pages_in_use {
            return Err(format!(
                "pages_in_use {} != pages in in-use spans {in_use} + retired {}",
                l.pages_in_use, l.retired_pages
            ));
        }
        for &s in &l.allspans {
            if s.state() != SpanState::InUse {
                continue;
            }
            let a = self
                .arenas
                .arena_of(s.base())
                .ok_or("span outside arenas")?;
            if !a.page_in_use((s.base() - a.base) >> PAGE_SHIFT) {
                return Err(format!("{s:?}: pageInUse bit clear"));
            }
        }
        let free = l.pages.free_pages() << PAGE_SHIFT;
        let scavenging = l.scavenging_pages << PAGE_SHIFT;
        if l.mapped != (l.pages_in_use << PAGE_SHIFT) + free + scavenging {
            return Err(format!(
                "mapped {} != in_use {} + free {free} + being scavenged {scavenging}",
                l.mapped,
                l.pages_in_use << PAGE_SHIFT
            ));
        }
        drop(l);
        let mut seen = std::collections::HashSet::new();
        for c in self.central.iter() {
            c.0.verify(self, &mut seen)?;
        }
        Ok(())
    }
}

impl Drop for MHeap {
    fn drop(&mut self) {
        let l = self.lock.get_mut();
        for &(base, bytes) in &l.reservations {
            // SAFETY: these are our reservations; every MCache holds an Arc
            // to the heap, so none is alive, and SpanRefs/objects of this
            // heap are not used after it is dropped (crate contract).
            unsafe { os::unreserve(base, bytes) };
        }
    }
}

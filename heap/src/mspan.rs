//! `mspan`: a run of pages carved into objects of one size class, with the
//! bitmaps that record which objects are allocated and which are marked.
//!
//! Corresponds to `mspan` in Go's `mheap.go`, its bitmap methods in
//! `mbitmap.go` (`nextFreeIndex`, `refillAllocCache`, `countAlloc`) and the
//! bitmap half of `mgcsweep.go`'s `sweep`. See the crate docs for where spans
//! sit in the allocator.
//!
//! ## Ownership protocol (who may touch the owner-only fields)
//!
//! `freeindex`, `alloc_cache`, `alloc_count`, `alloc_count_before_cache` and
//! `needzero` are plain cells, written by exactly one owner at a time:
//!
//! 1. the `MCache` that has the span in its `alloc` array (sweepgen `sg+3`);
//! 2. a sweeper that won the `sg-2 → sg-1` CAS on `sweepgen` (or that
//!    uncached a stale `sg+1` span and stored `sg-1` itself);
//! 3. whoever popped the span from an `MCentral` span set (it is in no set
//!    and no cache, so nobody else can reach it for allocation);
//! 4. the heap, under `mheap.lock`, while the span is being initialised or
//!    freed (state `Dead`).
//!
//! Ownership passes between them only through a lock (span sets, the heap
//! lock) or through a `Release` store / `Acquire` CAS of `sweepgen`, so each
//! owner sees its predecessor's writes. Under loom these cells are
//! `loom::cell::UnsafeCell`s and loom reports any access outside the
//! protocol as a data race.
//!
//! ## Shared fields
//! The geometry (`start_addr`, `npages`, `elemsize`, `nelems`, `div_mul`,
//! `spanclass`) is written while the span is `Dead` and published by the
//! `Release` store of `state = InUse`; readers that find the span through
//! the page map load `state` with `Acquire` first. They are atomics so that a
//! reader holding a stale span pointer reads stale values, never a torn one.
//!
//! Mark bits are set concurrently by mark workers (`fetch_or`). The bitmap
//! *pointers* change only in `sweep`, which never overlaps marking.
//!
//! ## sweepgen (relative to the heap's `sg`, which rises by 2 per cycle)
//!
//! | value | meaning |
//! |---|---|
//! | `sg - 2` | needs sweeping |
//! | `sg - 1` | being swept (owned by the sweeper that CASed it from `sg-2`) |
//! | `sg` | swept, ready to use |
//! | `sg + 1` | cached in an mcache before this sweep began: needs sweeping when uncached |
//! | `sg + 3` | swept, then cached in an mcache |
//!
//! ## Allocation state
//! Slot `i` is allocated iff `i < freeindex` or `allocBits[i]` is set.
//! `alloc_cache` holds the complement of `allocBits` for the 64-slot window
//! starting at `freeindex & !63`, shifted right by `freeindex % 64`: bit 0
//! is slot `freeindex`, and `trailing_zeros` finds the next free slot.
//! `alloc_count` counts allocated slots.

use crate::gcbits::{self, BitsPtr, GcBitsArenas};
use crate::sizeclasses::{
    CLASS_TO_DIVMAGIC, NUM_SIZE_CLASSES, PAGE_SHIFT, class_nobjs, class_size, divide_by_class_size,
};
use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::fmt;
use std::ptr::NonNull;

/// Number of span classes: each size class in a scan and a noscan flavour.
pub const NUM_SPAN_CLASSES: usize = NUM_SIZE_CLASSES << 1;

/// `sizeclass << 1 | noscan` — Go's `spanClass`. Indexes `MCache::alloc`
/// and `MHeap::central`. Noscan spans hold objects without GC pointers, so
/// the marker never looks inside them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanClass(pub u8);

impl SpanClass {
    /// The span class of `sizeclass` (0 = large) and `noscan`.
    #[inline(always)]
    pub const fn new(sizeclass: u8, noscan: bool) -> SpanClass {
        SpanClass((sizeclass << 1) | noscan as u8)
    }
    /// The size class (0 for large objects).
    #[inline(always)]
    pub const fn sizeclass(self) -> u8 {
        self.0 >> 1
    }
    /// Whether objects in this class contain no GC pointers.
    #[inline(always)]
    pub const fn noscan(self) -> bool {
        self.0 & 1 != 0
    }
    /// Index into per-span-class arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for SpanClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SpanClass({}{})",
            self.sizeclass(),
            if self.noscan() { ",noscan" } else { "" }
        )
    }
}

/// Go's `mSpanState`. Legal transitions: `Dead → InUse` (allocation, under
/// the heap lock) and `InUse → Dead` (free, under the heap lock, only by
/// the span's sweeper — never while marking is running).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpanState {
    /// Not in use: the struct is on the fixalloc free list or just made.
    Dead = 0,
    /// Holds heap objects (small-object span or one large object).
    InUse = 1,
}

/// A span. Lives in the heap's `FixAlloc<MSpan>` for the heap's whole
/// lifetime, so a `SpanRef` never dangles while its heap lives.
pub struct MSpan {
    // --- geometry: written while Dead, published by `state` (Release) ---
    start_addr: AtomicUsize,
    npages: AtomicUsize,
    elemsize: AtomicUsize,
    nelems: AtomicUsize,
    /// Magic for exact division by `elemsize` (0 for large spans).
    div_mul: AtomicU32,
    spanclass: AtomicU8,
    state: AtomicU8,

    // --- owner-only (see the ownership protocol) ---
    freeindex: UnsafeCell<usize>,
    alloc_cache: UnsafeCell<u64>,
    alloc_count: UnsafeCell<usize>,
    /// `alloc_count` when the span was cached; the difference at uncache is
    /// the number of allocations to add to the stats.
    alloc_count_before_cache: UnsafeCell<usize>,
    /// Free slots may hold old data and must be zeroed on allocation.
    needzero: UnsafeCell<bool>,
    /// Some object allocated in this span since it was initialised asked
    /// for the heap's free hook (`AllocRequest::free_hook`); if not, the
    /// sweep skips the hook. Set by the owning mcache, read by the
    /// sweeper, which owns the span then (ownership protocol).
    needs_free_hook: UnsafeCell<bool>,

    // --- shared ---
    /// See the sweepgen table above.
    sweepgen: AtomicU32,
    /// `allocBits`: owner-only pointer swap in `sweep`; read by the owner.
    alloc_bits: AtomicPtr<crate::sync::atomic::AtomicU64>,
    /// `gcmarkBits`: bits set by markers with `fetch_or`; pointer replaced
    /// only by `sweep`.
    gcmark_bits: AtomicPtr<crate::sync::atomic::AtomicU64>,
    /// The heap sweepgen of the mark phase in which this span's page-mark
    /// bit was last set (odd = never; sweepgens are even). Lets markers
    /// skip the arena lookup of `set_span_page_marked` after the first
    /// marked object of a span: a mark phase happens at one sweepgen, and
    /// a span is never reused while a mark runs.
    page_marked_sg: AtomicU32,
}

// SAFETY: MSpan is shared between threads by design. Its shared fields are
// atomics; its owner-only cells are accessed only by the current owner as
// the ownership protocol in the module docs defines, and ownership moves
// only through locks or Release/Acquire on `sweepgen`.
unsafe impl Sync for MSpan {}
// SAFETY: as above; nothing in MSpan is tied to a thread.
unsafe impl Send for MSpan {}

/// A crate-internal handle to a span. Copy; valid while its heap lives
/// (spans live in the heap's fixalloc and are never freed before the heap).
/// Never handed out by the public API, which lends `&MSpan` tied to a
/// borrow of the heap instead, so safe code cannot keep a span past its
/// heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SpanRef(pub(crate) NonNull<MSpan>);

impl SpanRef {
    /// The span, borrowed for as long as `heap` is.
    #[inline(always)]
    pub(crate) fn get(self, _heap: &crate::MHeap) -> &MSpan {
        // SAFETY: every SpanRef comes from the heap it is used with, whose
        // fixalloc keeps the struct allocated until the heap is dropped;
        // the returned borrow cannot outlive `heap`.
        unsafe { self.0.as_ref() }
    }
}

// SAFETY: a SpanRef is an address of a Sync MSpan owned by the heap.
unsafe impl Send for SpanRef {}
// SAFETY: as above.
unsafe impl Sync for SpanRef {}

impl std::ops::Deref for SpanRef {
    type Target = MSpan;
    #[inline(always)]
    fn deref(&self) -> &MSpan {
        // SAFETY: spans are allocated from the heap's FixAlloc and never
        // deallocated while the heap lives. SpanRef is crate-private, and
        // every crate-internal holder (mcaches, span sets, the page map,
        // allspans) is owned by or holds an Arc to the span's heap, so the
        // heap is alive whenever a SpanRef is dereferenced.
        unsafe { self.0.as_ref() }
    }
}

impl fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "span[{:#x}+{}p {:?} {:?} sg={}]",
            self.base(),
            self.npages(),
            self.spanclass(),
            self.state(),
            self.sweepgen()
        )
    }
}

impl fmt::Debug for MSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&SpanRef(NonNull::from(self)), f)
    }
}

/// Outcome of sweeping one span's bitmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepCounts {
    /// Objects still allocated (marked) after the sweep.
    pub nalloc: usize,
    /// Objects freed by the sweep.
    pub nfreed: usize,
}

impl MSpan {
    /// A dead span with no geometry, for fixalloc.
    pub(crate) fn new_dead() -> MSpan {
        MSpan {
            start_addr: AtomicUsize::new(0),
            npages: AtomicUsize::new(0),
            elemsize: AtomicUsize::new(0),
            nelems: AtomicUsize::new(0),
            div_mul: AtomicU32::new(0),
            spanclass: AtomicU8::new(0),
            state: AtomicU8::new(SpanState::Dead as u8),
            freeindex: UnsafeCell::new(0),
            alloc_cache: UnsafeCell::new(0),
            alloc_count: UnsafeCell::new(0),
            alloc_count_before_cache: UnsafeCell::new(0),
            needzero: UnsafeCell::new(false),
            needs_free_hook: UnsafeCell::new(false),
            sweepgen: AtomicU32::new(0),
            alloc_bits: AtomicPtr::new(std::ptr::null_mut()),
            gcmark_bits: AtomicPtr::new(std::ptr::null_mut()),
            page_marked_sg: AtomicU32::new(1),
        }
    }

    /// The "empty span" sentinel of an mcache: no free slots, so the fast
    /// path needs no null check (Go's `emptymspan`).
    pub(crate) fn new_empty_sentinel() -> MSpan {
        Self::new_dead()
    }

    /// Initialises a dead span for `npages` pages at `base` and publishes it
    /// as InUse (Go's `initSpan` + `mspan.init`).
    ///
    /// # Safety
    /// 1. The caller holds the heap lock and the span is Dead and reachable
    ///    by no owner (fresh from fixalloc).
    /// 2. `[base, base + npages*PAGE_SIZE)` is committed heap memory
    ///    exclusively given to this span.
    pub(crate) unsafe fn init(
        &self,
        base: usize,
        npages: usize,
        spc: SpanClass,
        sweepgen: u32,
        needzero: bool,
        bits: &GcBitsArenas,
    ) {
        let (elemsize, nelems, div) = if spc.sizeclass() == 0 {
            (npages << PAGE_SHIFT, 1, 0)
        } else {
            let c = spc.sizeclass();
            (class_size(c), class_nobjs(c), CLASS_TO_DIVMAGIC[c as usize])
        };
        self.start_addr.store(base, Ordering::Relaxed);
        self.npages.store(npages, Ordering::Relaxed);
        self.elemsize.store(elemsize, Ordering::Relaxed);
        self.nelems.store(nelems, Ordering::Relaxed);
        self.div_mul.store(div, Ordering::Relaxed);
        self.spanclass.store(spc.0, Ordering::Relaxed);
        // SAFETY: obligation 1 — we are the only owner (case 4).
        unsafe {
            self.freeindex.with_mut(|p| *p = 0);
            self.alloc_cache.with_mut(|p| *p = !0);
            self.alloc_count.with_mut(|p| *p = 0);
            self.alloc_count_before_cache.with_mut(|p| *p = 0);
            self.needzero.with_mut(|p| *p = needzero);
            self.needs_free_hook.with_mut(|p| *p = false);
        }
        self.alloc_bits
            .store(bits.alloc(nelems).as_ptr(), Ordering::Relaxed);
        self.gcmark_bits
            .store(bits.alloc(nelems).as_ptr(), Ordering::Relaxed);
        self.sweepgen.store(sweepgen, Ordering::Relaxed);
        self.page_marked_sg.store(1, Ordering::Relaxed);
        // Release: publishes everything above to readers that load `state`
        // with Acquire (find_object, heap walks).
        self.state.store(SpanState::InUse as u8, Ordering::Release);
    }

    /// Marks the span dead (Go's `freeSpanLocked` state change).
    ///
    /// # Safety
    /// 1. Heap lock held, and the caller owns the span (it is in no set and
    ///    no cache); marking is not running.
    pub(crate) unsafe fn set_dead(&self) {
        self.state.store(SpanState::Dead as u8, Ordering::Release);
    }

    // ----- shared getters -----

    /// First byte of the span.
    #[inline(always)]
    pub fn base(&self) -> usize {
        self.start_addr.load(Ordering::Relaxed)
    }
    /// Length in pages.
    #[inline(always)]
    pub fn npages(&self) -> usize {
        self.npages.load(Ordering::Relaxed)
    }
    /// One past the last byte of the span's pages.
    #[inline(always)]
    pub fn end(&self) -> usize {
        self.base() + (self.npages() << PAGE_SHIFT)
    }
    /// Bytes per object slot.
    #[inline(always)]
    pub fn elemsize(&self) -> usize {
        self.elemsize.load(Ordering::Relaxed)
    }
    /// Number of object slots.
    #[inline(always)]
    pub fn nelems(&self) -> usize {
        self.nelems.load(Ordering::Relaxed)
    }
    /// The span class.
    #[inline(always)]
    pub fn spanclass(&self) -> SpanClass {
        SpanClass(self.spanclass.load(Ordering::Relaxed))
    }
    /// The state, loaded with Acquire (pairs with the Release in `init`).
    #[inline(always)]
    pub fn state(&self) -> SpanState {
        if self.state.load(Ordering::Acquire) == SpanState::InUse as u8 {
            SpanState::InUse
        } else {
            SpanState::Dead
        }
    }
    /// Current sweepgen (Acquire: pairs with the Release store that ends a
    /// sweep, so a reader that sees `sg` sees the swept bitmaps).
    #[inline(always)]
    pub fn sweepgen(&self) -> u32 {
        self.sweepgen.load(Ordering::Acquire)
    }
    /// Stores sweepgen with Release: the end of a sweep or a hand-off.
    #[inline(always)]
    pub(crate) fn store_sweepgen(&self, v: u32) {
        self.sweepgen.store(v, Ordering::Release);
    }
    /// The only way to take sweep ownership: CAS `sg-2 → sg-1`.
    #[inline]
    pub(crate) fn try_acquire_sweep(&self, sg: u32) -> bool {
        self.sweepgen.load(Ordering::Relaxed) == sg.wrapping_sub(2)
            && self
                .sweepgen
                .compare_exchange(
                    sg.wrapping_sub(2),
                    sg.wrapping_sub(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Object index of address `addr` inside this span (exact division by
    /// `elemsize` via the class's magic number; large spans hold one
    /// object). Requires `base() <= addr < end()`.
    #[inline(always)]
    pub fn object_index(&self, addr: usize) -> usize {
        let off = addr - self.base();
        let m = self.div_mul.load(Ordering::Relaxed);
        if m == 0 {
            0
        } else {
            divide_by_class_size(off, m)
        }
    }

    /// Address of object `i`.
    #[inline(always)]
    pub fn object_addr(&self, i: usize) -> usize {
        self.base() + i * self.elemsize()
    }

    // ----- mark bits (any thread) -----

    #[inline(always)]
    fn mark_bits(&self) -> BitsPtr {
        let p = self.gcmark_bits.load(Ordering::Relaxed);
        // SAFETY: InUse spans always have bitmaps (set in `init` before the
        // Release publication, replaced only by non-null pointers).
        unsafe { NonNull::new_unchecked(p) }
    }

    #[inline(always)]
    fn alloc_bits(&self) -> BitsPtr {
        let p = self.alloc_bits.load(Ordering::Relaxed);
        // SAFETY: as for mark_bits.
        unsafe { NonNull::new_unchecked(p) }
    }

    /// Sets the mark bit of object `i`; returns whether it was already set.
    /// Requires the span InUse (see `MHeap::mark_object` for the
    /// address-based form, which also sets the page-mark bit).
    ///
    /// # Panics
    /// If `i >= nelems()`.
    #[inline(always)]
    pub fn mark(&self, i: usize) -> bool {
        assert!(i < self.nelems(), "mark index out of range");
        // SAFETY: i < nelems and the bitmap has nelems bits; the bitmap's
        // arena lives while the span is InUse (gcbits epoch rule).
        unsafe { gcbits::set(self.mark_bits(), i) }
    }

    /// Records that the span's page-mark bit was set in the mark phase of
    /// sweepgen `sg`; returns whether it already was.
    #[inline(always)]
    pub(crate) fn note_page_marked(&self, sg: u32) -> bool {
        if self.page_marked_sg.load(Ordering::Relaxed) == sg {
            return true;
        }
        self.page_marked_sg.store(sg, Ordering::Relaxed);
        false
    }

    /// Whether object `i` is marked.
    ///
    /// # Panics
    /// If `i >= nelems()`.
    #[inline(always)]
    pub fn is_marked(&self, i: usize) -> bool {
        assert!(i < self.nelems(), "mark index out of range");
        // SAFETY: as in `mark`.
        unsafe { gcbits::is_set(self.mark_bits(), i) }
    }

    /// Number of marked objects.
    pub fn count_marked(&self) -> usize {
        // SAFETY: the bitmap has nelems bits and is live.
        unsafe { gcbits::count(self.mark_bits(), self.nelems()) }
    }

    // ----- owner-only -----

    /// Whether slot `i` is allocated (owner only).
    ///
    /// # Safety
    /// 1. The caller owns the span (ownership protocol), `i < nelems()`.
    pub unsafe fn is_allocated(&self, i: usize) -> bool {
        // SAFETY: obligation 1.
        let fi = unsafe { self.freeindex.with(|p| *p) };
        // SAFETY: i < nelems and the alloc bitmap has nelems bits.
        i < fi || unsafe { gcbits::is_set(self.alloc_bits(), i) }
    }

    /// Allocated-slot count (owner only).
    ///
    /// # Safety
    /// 1. The caller owns the span.
    #[inline(always)]
    pub unsafe fn alloc_count(&self) -> usize {
        // SAFETY: obligation 1.
        unsafe { self.alloc_count.with(|p| *p) }
    }

    /// # Safety
    /// 1. The caller owns the span.
    #[inline(always)]
    pub(crate) unsafe fn freeindex(&self) -> usize {
        // SAFETY: obligation 1.
        unsafe { self.freeindex.with(|p| *p) }
    }

    /// # Safety
    /// 1. The caller owns the span.
    #[inline(always)]
    pub(crate) unsafe fn needzero(&self) -> bool {
        // SAFETY: obligation 1.
        unsafe { self.needzero.with(|p| *p) }
    }

    /// Records that an object needing the free hook was allocated here.
    ///
    /// # Safety
    /// 1. The caller owns the span.
    #[inline(always)]
    pub(crate) unsafe fn set_needs_free_hook(&self) {
        // SAFETY: obligation 1.
        unsafe {
            self.needs_free_hook.with_mut(|p| {
                if !*p {
                    *p = true
                }
            })
        }
    }

    /// Whether any object allocated here since the span was initialised
    /// asked for the free hook (owner only).
    ///
    /// # Safety
    /// 1. The caller owns the span.
    pub unsafe fn needs_free_hook(&self) -> bool {
        // SAFETY: obligation 1.
        unsafe { self.needs_free_hook.with(|p| *p) }
    }

    /// # Safety
    /// 1. The caller owns the span.
    pub(crate) unsafe fn set_alloc_count_before_cache(&self) {
        // SAFETY: obligation 1.
        unsafe {
            let n = self.alloc_count.with(|p| *p);
            self.alloc_count_before_cache.with_mut(|p| *p = n);
        }
    }

    /// Allocations made since `set_alloc_count_before_cache`.
    ///
    /// # Safety
    /// 1. The caller owns the span.
    pub(crate) unsafe fn allocs_since_cache(&self) -> usize {
        // SAFETY: obligation 1.
        unsafe { self.alloc_count.with(|p| *p) - self.alloc_count_before_cache.with(|p| *p) }
    }

    /// Free slots (owner only).
    ///
    /// # Safety
    /// 1. The caller owns the span.
    #[inline(always)]
    pub(crate) unsafe fn nfree(&self) -> usize {
        // SAFETY: obligation 1.
        self.nelems() - unsafe { self.alloc_count() }
    }

    /// Loads `alloc_cache` with the complement of the allocBits word that
    /// contains slot `index` (which must be a multiple of 64).
    ///
    /// # Safety
    /// 1. The caller owns the span.
    #[inline]
    unsafe fn refill_alloc_cache(&self, index: usize) {
        debug_assert!(index.is_multiple_of(64) && index < self.nelems());
        // SAFETY: index < nelems, so the word exists; the arena is live.
        let w = unsafe { gcbits::word(self.alloc_bits(), index / 64) }.load(Ordering::Relaxed);
        // SAFETY: obligation 1.
        unsafe { self.alloc_cache.with_mut(|p| *p = !w) };
    }

    /// Prepares the span for allocation after it was swept or popped:
    /// primes `alloc_cache` for `freeindex` (end of Go's `cacheSpan`).
    ///
    /// # Safety
    /// 1. The caller owns the span.
    pub(crate) unsafe fn prime_alloc_cache(&self) {
        // SAFETY: obligation 1.
        unsafe {
            let fi = self.freeindex();
            if fi < self.nelems() {
                self.refill_alloc_cache(fi & !63);
                self.alloc_cache.with_mut(|p| *p >>= fi % 64);
            } else {
                self.alloc_cache.with_mut(|p| *p = 0);
            }
        }
    }

    /// The inlined fast path (Go's `nextFreeFast`): the next free slot from
    /// `alloc_cache` without touching the bitmap, or None when the cache
    /// window is exhausted. Counts the allocation. Returns the address.
    ///
    /// # Safety
    /// 1. The caller owns the span (it is cached in the caller's mcache).
    #[inline(always)]
    pub(crate) unsafe fn next_free_fast(&self) -> Option<usize> {
        // SAFETY: obligation 1 for all owner-only cells below.
        unsafe {
            let cache = self.alloc_cache.with(|p| *p);
            let bit = cache.trailing_zeros() as usize;
            if bit < 64 {
                let fi = self.freeindex.with(|p| *p);
                let result = fi + bit;
                let nelems = self.nelems();
                if result < nelems {
                    let next = result + 1;
                    if next.is_multiple_of(64) && next != nelems {
                        // Crossing into the next window: the slow path
                        // refills the cache from the bitmap.
                        return None;
                    }
                    // Two shifts: `bit + 1` may be 64.
                    self.alloc_cache.with_mut(|p| *p = (cache >> bit) >> 1);
                    self.freeindex.with_mut(|p| *p = next);
                    self.alloc_count.with_mut(|p| *p += 1);
                    return Some(self.base() + result * self.elemsize());
                }
            }
        }
        None
    }

    /// Next free slot index at or after `freeindex`, refilling
    /// `alloc_cache` across windows (Go's `nextFreeIndex`). Returns
    /// `nelems()` when the span is full. Does not count the allocation.
    ///
    /// # Safety
    /// 1. The caller owns the span.
    pub(crate) unsafe fn next_free_index(&self) -> usize {
        let nelems = self.nelems();
        // SAFETY: obligation 1 for every owner-only access below.
        unsafe {
            let mut fi = self.freeindex();
            if fi >= nelems {
                return nelems;
            }
            let mut cache = self.alloc_cache.with(|p| *p);
            let mut bit = cache.trailing_zeros() as usize;
            while bit == 64 {
                fi = (fi + 64) & !63;
                if fi >= nelems {
                    self.freeindex.with_mut(|p| *p = nelems);
                    return nelems;
                }
                self.refill_alloc_cache(fi);
                cache = self.alloc_cache.with(|p| *p);
                bit = cache.trailing_zeros() as usize;
            }
            let result = fi + bit;
            if result >= nelems {
                self.freeindex.with_mut(|p| *p = nelems);
                return nelems;
            }
            self.alloc_cache.with_mut(|p| *p = (cache >> bit) >> 1);
            let next = result + 1;
            if next.is_multiple_of(64) && next != nelems {
                self.refill_alloc_cache(next);
            }
            self.freeindex.with_mut(|p| *p = next);
            result
        }
    }

    /// Counts one allocation taken through `next_free_index`.
    ///
    /// # Safety
    /// 1. The caller owns the span.
    #[inline]
    pub(crate) unsafe fn count_alloc(&self) {
        // SAFETY: obligation 1.
        unsafe { self.alloc_count.with_mut(|p| *p += 1) };
    }

    /// Checks the span's internal invariants: geometry matches its class,
    /// `alloc_count` equals the number of allocated slots, `freeindex <=
    /// nelems`, and `alloc_cache` agrees with the alloc bitmap.
    ///
    /// # Safety
    /// 1. The caller owns the span.
    pub unsafe fn verify_owned(&self) -> Result<(), String> {
        let me = SpanRef(NonNull::from(self));
        if self.state() != SpanState::InUse {
            return Err(format!("{me:?} is not in use"));
        }
        let spc = self.spanclass();
        let nelems = self.nelems();
        if spc.sizeclass() != 0 {
            let c = spc.sizeclass();
            if self.elemsize() != class_size(c)
                || nelems != class_nobjs(c)
                || self.npages() != crate::sizeclasses::class_npages(c)
            {
                return Err(format!("{me:?}: geometry does not match its size class"));
            }
        } else if nelems != 1 || self.elemsize() != self.npages() << PAGE_SHIFT {
            return Err(format!("{me:?}: bad large-span geometry"));
        }
        // SAFETY: obligation 1 for the owner-only reads below.
        let (fi, count, cache) = unsafe {
            (
                self.freeindex(),
                self.alloc_count(),
                self.alloc_cache.with(|p| *p),
            )
        };
        if fi > nelems {
            return Err(format!("{me:?}: freeindex {fi} > nelems {nelems}"));
        }
        // SAFETY: obligation 1; indices < nelems.
        let allocated = (0..nelems)
            .filter(|&i| unsafe { self.is_allocated(i) })
            .count();
        if allocated != count {
            return Err(format!(
                "{me:?}: allocCount {count} but {allocated} slots allocated"
            ));
        }
        if fi < nelems {
            // Bit k of the cache is slot fi+k, free iff allocBits clear
            // (for slots inside the window and below nelems).
            let window_end = ((fi & !63) + 64).min(nelems);
            for i in fi..window_end {
                // SAFETY: i < nelems.
                let free = !unsafe { gcbits::is_set(self.alloc_bits(), i) };
                let cached_free = (cache >> (i - fi)) & 1 != 0;
                if free != cached_free {
                    return Err(format!(
                        "{me:?}: allocCache disagrees with allocBits at slot {i}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sweeps the bitmaps (the core of Go's `mspan.sweep`).
    ///
    /// Calls `on_free(addr)` for every object that was allocated but is not
    /// marked, before its slot becomes free; with `poison`, then fills the
    /// object with [`crate::mheap::POISON_BYTE`]. Then the mark bitmap becomes
    /// the alloc bitmap, a fresh zeroed mark bitmap is installed,
    /// `freeindex` restarts at 0 and `alloc_count` becomes the number of
    /// marked objects. Aborts ([`crate::throw`]) with Go's "marked free object" diagnosis if a
    /// mark bit is set on a slot that was free: that is a collector bug
    /// (a zombie), and continuing would hand out memory that is in use.
    ///
    /// # Safety
    /// 1. The caller owns the span as its sweeper (case 2 of the protocol).
    /// 2. Marking is not running (no thread sets mark bits concurrently).
    pub(crate) unsafe fn sweep_bits(
        &self,
        bits: &GcBitsArenas,
        on_free: Option<&mut dyn FnMut(usize)>,
        poison: bool,
    ) -> SweepCounts {
        let nelems = self.nelems();
        let mark = self.mark_bits();
        let alloc = self.alloc_bits();
        // SAFETY: obligation 1.
        let (fi, count_before) = unsafe { (self.freeindex(), self.alloc_count()) };
        let mut on_free = on_free;
        let mut nalloc = 0;
        let mut nfreed = 0;
        for w in 0..nelems.div_ceil(64) {
            // SAFETY: w < nelems.div_ceil(64): both bitmaps have that many
            // words, and their arenas are live (epoch rule).
            let (m, a) = unsafe {
                (
                    gcbits::word(mark, w).load(Ordering::Relaxed),
                    gcbits::word(alloc, w).load(Ordering::Relaxed),
                )
            };
            let lo = w * 64;
            let valid = if lo + 64 <= nelems {
                !0u64
            } else {
                (1u64 << (nelems - lo)) - 1
            };
            // Slots below freeindex are allocated whatever allocBits says.
            let below_fi = if fi >= lo + 64 {
                !0u64
            } else if fi <= lo {
                0
            } else {
                (1u64 << (fi - lo)) - 1
            };
            let allocated = (a | below_fi) & valid;
            let zombies = m & !allocated & valid;
            if zombies != 0 {
                let i = lo + zombies.trailing_zeros() as usize;
                crate::throw(&format!(
                    "marked free object in span {:?}: object {} at {:#x} (found pointer to free object)",
                    SpanRef(NonNull::from(self)),
                    i,
                    self.object_addr(i)
                ));
            }
            let m = m & valid;
            nalloc += m.count_ones() as usize;
            let mut freed = allocated & !m;
            nfreed += freed.count_ones() as usize;
            // Per freed slot only if there is something to do for it (the
            // common noscan sweep has neither a hook nor poisoning).
            if on_free.is_none() && !poison && !crate::sanitizer::ENABLED {
                freed = 0;
            }
            while freed != 0 {
                let i = lo + freed.trailing_zeros() as usize;
                freed &= freed - 1;
                if let Some(f) = on_free.as_deref_mut() {
                    f(self.object_addr(i));
                }
                if poison {
                    // SAFETY: slot i was allocated and is unmarked: dead,
                    // its drop hook has just run, and nothing can reach it
                    // (obligation 2: no marker runs); we own the span
                    // (obligation 1), so no allocator hands it out before
                    // this sweep publishes the new bitmaps.
                    unsafe {
                        std::ptr::write_bytes(
                            self.object_addr(i) as *mut u8,
                            crate::mheap::POISON_BYTE,
                            self.elemsize(),
                        )
                    };
                }
                crate::sanitizer::poison(self.object_addr(i), self.elemsize());
            }
        }
        // Go's "sweep increased allocation count": one compare per span, and
        // a mismatch means the allocation state is corrupt, so always check.
        if nalloc + nfreed != count_before {
            crate::throw(&format!(
                "sweep: allocCount disagrees with the bitmaps in {:?}: {} marked + {} freed != allocCount {}",
                SpanRef(NonNull::from(self)),
                nalloc,
                nfreed,
                count_before
            ));
        }
        // Swap: the mark bits become the alloc bits; fresh zeroed mark bits.
        self.alloc_bits.store(mark.as_ptr(), Ordering::Relaxed);
        self.gcmark_bits
            .store(bits.alloc(nelems).as_ptr(), Ordering::Relaxed);
        // SAFETY: obligation 1.
        unsafe {
            self.freeindex.with_mut(|p| *p = 0);
            self.alloc_count.with_mut(|p| *p = nalloc);
            if nfreed > 0 {
                self.needzero.with_mut(|p| *p = true);
            }
            self.prime_alloc_cache();
        }
        SweepCounts { nalloc, nfreed }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn span_struct_size() {
        println!("MSpan = {} bytes", std::mem::size_of::<super::MSpan>());
        assert!(std::mem::size_of::<super::MSpan>() <= 128);
    }
}

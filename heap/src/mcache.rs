//! The per-mutator cache: the allocation fast path.
//!
//! Mirrors Go's `mcache.go` and the allocation paths of `malloc.go`
//! (`mallocgc`, `nextFreeFast`, `nextFree`, the tiny allocator,
//! `allocLarge`). See the crate docs for the overview.
//!
//! An `MCache` belongs to one mutator at a time (`&mut self` on every
//! method; `Send` but not `Sync`), so its fast path takes no lock and does
//! no atomic read-modify-write:
//!
//! 1. one relaxed load of the heap's `alloc_state` compared with the cached
//!    copy (a new sweep generation or allocate-black flips it, sending us to
//!    the slow path once — Go's `flushGen` check);
//! 2. `trailing_zeros` of the span's `alloc_cache`, a bounds check, a shift
//!    and two stores (Go's `nextFreeFast`);
//! 3. zeroing the slot if the span `needzero`.
//!
//! While marking runs (allocate-black), new objects also get their mark bit
//! set, which is an atomic `fetch_or`.
//!
//! Invariants:
//! - `alloc[i]` is either the heap's empty sentinel or a span of class `i`
//!   owned by this cache, with `sweepgen == sg + 3` — or `sg + 1` if a sweep
//!   began since, which `alloc_state != self.alloc_state` reveals before the
//!   next allocation;
//! - `tiny` is 0 or the address of a live 16-byte block of span class
//!   `TINY_SPAN_CLASS` with `tiny_offset <= 16` bytes used;
//! - `self.heap` outlives every span in `alloc` (we hold an `Arc`).

use crate::error::AllocError;
use crate::mheap::{ALLOC_BLACK, MHeap, SG_BLACK_MASK};

use crate::mspan::{MSpan, NUM_SPAN_CLASSES, SpanClass, SpanRef};
use crate::sizeclasses::{
    MAX_SMALL_SIZE, PAGE_SHIFT, PAGE_SIZE, TINY_SIZE, TINY_SIZE_CLASS, class_size, size_to_class,
};
use crate::stats::LocalStats;
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use std::ptr::NonNull;

/// A bit of the cached `alloc_state` flipped locally to send the next
/// allocation to `sync_state` (see `poke_if_needed`): the cached word then
/// differs from the heap's outside the sweepgen/black bits, which a
/// reporting cache reports as a handshake; `sync` clears it.
const POKE: u64 = 1 << 63;

/// Span class of tiny blocks: the 16-byte noscan class (Go's
/// `tinySpanClass`).
pub const TINY_SPAN_CLASS: SpanClass = SpanClass::new(TINY_SIZE_CLASS, true);

/// What kind of memory an allocation asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    /// Bytes (at least 1).
    pub size: usize,
    /// Alignment: a power of two, at most 8 KiB.
    pub align: usize,
    /// True if the object holds no GC pointers: it goes to a noscan span and
    /// the marker never looks inside it.
    pub noscan: bool,
    /// True if the heap's free hook must run when the object dies (scan
    /// objects only; the typed layer sets it for types with drop glue).
    /// Spans that never held such an object skip the hook when swept.
    pub free_hook: bool,
}

impl AllocRequest {
    /// The default alignment for `size` bytes: the largest power of two
    /// that divides `size`, capped at 8. A Rust type's size is a multiple
    /// of its alignment, so this is at least the alignment of any type of
    /// that size — and it lets small noscan requests use the tiny allocator
    /// the way Go aligns tiny objects by their size.
    pub const fn natural_align(size: usize) -> usize {
        let tz = size.trailing_zeros();
        1 << if tz < 3 { tz } else { 3 }
    }
    /// `size` bytes with [`AllocRequest::natural_align`], scan.
    pub const fn scan(size: usize) -> Self {
        AllocRequest {
            size,
            align: Self::natural_align(size),
            noscan: false,
            free_hook: true,
        }
    }
    /// `size` bytes with [`AllocRequest::natural_align`], noscan.
    pub const fn noscan(size: usize) -> Self {
        AllocRequest {
            size,
            align: Self::natural_align(size),
            noscan: true,
            free_hook: false,
        }
    }
    /// With alignment `align`.
    pub const fn with_align(mut self, align: usize) -> Self {
        self.align = align;
        self
    }
    /// With or without the free hook when the object dies.
    pub const fn with_free_hook(mut self, on: bool) -> Self {
        self.free_hook = on;
        self
    }
}

/// A per-mutator allocation cache. Create with [`MCache::new`]; dropping it
/// flushes its spans back to the heap.
pub struct MCache {
    heap: Arc<MHeap>,
    /// The heap's `alloc_state` this cache is up to date with. Its
    /// sweepgen and black bits are what this cache's allocations follow:
    /// while they are stale (a sweep began, or allocate-black changed, and
    /// the fast path has not noticed yet), allocation continues in the
    /// cached spans under the old state, which is sound (see
    /// `MHeap::sweep_gate`); every slow path adopts the new state first.
    alloc_state: u64,
    /// Fail an allocation with `AllocError::Handshake` when the heap's
    /// handshake generation moved (the collector's preemption request),
    /// and once after each slow path that the collector wants to hear
    /// about (trigger reached, or a refill while allocating black: mark
    /// assists are paid per refill).
    report_handshakes: bool,
    /// Bytes of spans taken by refills and large allocations since the
    /// last [`MCache::take_refill_bytes`] (the mark-assist debt's unit).
    refill_bytes: u64,
    /// Current span per span class (Go's `alloc[numSpanClasses]`).
    alloc: [SpanRef; NUM_SPAN_CLASSES],
    /// Current tiny block, or 0.
    tiny: usize,
    /// Bytes of `tiny` already handed out.
    tiny_offset: usize,
    /// Tiny allocations combined into an existing block, not yet flushed
    /// (Go's `tinyAllocs`; a request that starts a new block counts as a
    /// malloc of the 16-byte class instead).
    tiny_allocs: u64,
    /// Set by slow paths when `heap_live` reached the trigger.
    gc_due: bool,
    /// The heap's `max_object_size`, copied so the fast path's bound check
    /// reads this struct only.
    max_object_size: usize,
    /// The heap's `never_reuse` (efence): every allocation takes the large
    /// path.
    never_reuse: bool,
    /// This cache's stats shard (written only by us).
    stats: Arc<LocalStats>,
}

// SAFETY: an MCache exclusively owns the spans in `alloc` (ownership
// protocol case 1) and holds an Arc to their heap; nothing in it is tied to
// a particular thread, so it may move to another thread. It is not Sync:
// every method takes `&mut self`.
unsafe impl Send for MCache {}

impl MCache {
    /// A new cache for `heap` (Go's `allocmcache`).
    pub fn new(heap: Arc<MHeap>) -> MCache {
        let empty = SpanRef(NonNull::from(&*heap.empty_span));
        MCache {
            alloc_state: heap.alloc_state.load(Ordering::Acquire),
            max_object_size: heap.config.max_object_size,
            never_reuse: heap.config.never_reuse,
            stats: heap.stats.register(),
            heap,
            alloc: [empty; NUM_SPAN_CLASSES],
            tiny: 0,
            tiny_offset: 0,
            tiny_allocs: 0,
            gc_due: false,
            report_handshakes: false,
            refill_bytes: 0,
        }
    }

    /// Bytes of spans this cache took since the last call (see
    /// `refill_bytes`).
    pub fn take_refill_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.refill_bytes)
    }

    /// After a slow path: if the owner should hear about it, make the next
    /// allocation report a handshake (a cached state that differs from
    /// every heap state in a bit the heap never reads as sweepgen/black).
    #[inline]
    fn poke_if_needed(&mut self, bytes: usize) {
        self.refill_bytes += bytes as u64;
        if self.report_handshakes && (self.gc_due || self.alloc_state & ALLOC_BLACK != 0) {
            self.alloc_state ^= POKE;
        }
    }

    /// Whether an allocation fails with [`AllocError::Handshake`] (once)
    /// after [`MHeap::request_handshake`]: the collector's way to reach
    /// the owning mutator within one allocation. Off by default.
    pub fn report_handshakes(&mut self, on: bool) {
        self.report_handshakes = on;
    }

    /// Adopts the heap's current state: flushes spans cached before a
    /// sweep began, drops the tiny block if allocate-black turned on (its
    /// remaining space would hand out white objects; Go's
    /// `gcMarkTinyAllocs` greys it instead), and acknowledges handshake
    /// requests. After it returns, this cache allocates black iff
    /// allocate-black was on when it started.
    pub fn sync(&mut self) {
        let heap = self.detached_heap();
        let _g = heap.sweep_gate.read();
        let st = heap.alloc_state.load(Ordering::Acquire);
        self.adopt(st);
    }

    /// Whether a sweep began or allocate-black changed since this cache
    /// last synced ([`MCache::sync`] would flush or re-colour).
    pub fn is_stale(&self) -> bool {
        (self.heap.alloc_state.load(Ordering::Acquire) ^ self.alloc_state) & SG_BLACK_MASK != 0
    }

    /// Adopts `st` (read under `sweep_gate`, held by the caller).
    fn adopt(&mut self, st: u64) {
        if (st ^ self.alloc_state) & SG_BLACK_MASK != 0 {
            if (st >> 1) as u32 != (self.alloc_state >> 1) as u32 {
                self.release_all_locked();
            } else if st & ALLOC_BLACK != 0 && self.alloc_state & ALLOC_BLACK == 0 {
                self.tiny = 0;
                self.tiny_offset = 0;
            }
        }
        self.alloc_state = st;
    }

    /// The heap, borrowed independently of `self` so that a guard of its
    /// `sweep_gate` can be held across `&mut self` calls (without an
    /// atomic increment of the shared `Arc` count on every refill).
    #[inline(always)]
    fn detached_heap<'a>(&self) -> &'a MHeap {
        // SAFETY: `self.heap` is set once in `new` and never replaced, and
        // the callers use the reference only inside a method of `self`, so
        // the Arc keeps the heap alive for as long as it is used.
        unsafe { &*Arc::as_ptr(&self.heap) }
    }

    /// The heap this cache allocates from.
    pub fn heap(&self) -> &Arc<MHeap> {
        &self.heap
    }

    #[inline(always)]
    fn empty(&self) -> SpanRef {
        SpanRef(NonNull::from(&*self.heap.empty_span))
    }

    /// Allocates zeroed memory for `req` (Go's `mallocgc`). Small noscan
    /// requests under 16 bytes are packed into tiny blocks; up to 32 KiB go
    /// to size-class spans; larger ones get a span of their own.
    #[inline]
    pub fn alloc(&mut self, req: AllocRequest) -> Result<NonNull<u8>, AllocError> {
        self.alloc_impl(req, true)
    }

    /// Like [`MCache::alloc`] but the memory may hold old data: for callers
    /// that initialise every byte before anyone can read it (the typed
    /// layer writes the whole object before publishing its pointer).
    #[inline]
    pub fn alloc_uninit(&mut self, req: AllocRequest) -> Result<NonNull<u8>, AllocError> {
        self.alloc_impl(req, false)
    }

    #[inline(always)]
    fn alloc_impl(&mut self, req: AllocRequest, zero: bool) -> Result<NonNull<u8>, AllocError> {
        let AllocRequest {
            mut size,
            align,
            noscan,
            free_hook,
        } = req;
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        if size > self.max_object_size {
            return Err(AllocError::TooLarge {
                requested: size,
                max: self.max_object_size,
            });
        }
        if !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(AllocError::BadAlignment { align });
        }
        if self.heap.alloc_state.load(Ordering::Relaxed) != self.alloc_state {
            self.sync_state()?;
        }
        if self.never_reuse {
            // efence: every object on pages of its own.
            return self.alloc_large(size, noscan, free_hook, zero);
        }
        if align > 8 {
            // Objects of a class sit at multiples of its size from a
            // page-aligned base, so a class whose size is a multiple of
            // `align` gives aligned objects; large objects are page-aligned.
            loop {
                size = size.next_multiple_of(align);
                if size > MAX_SMALL_SIZE {
                    break;
                }
                let c = class_size(size_to_class(size));
                if c.is_multiple_of(align) {
                    break;
                }
                size = c + 1;
            }
        } else if noscan && size < TINY_SIZE && size % align == 0 {
            // Tiny offsets are aligned to the largest of 8/4/2 dividing
            // `size`, which is at least `align` when `align` divides it.
            return self.alloc_tiny(size);
        }
        if size <= MAX_SMALL_SIZE {
            let spc = SpanClass::new(size_to_class(size), noscan);
            let span = self.alloc[spc.index()];
            // SAFETY: `span` is cached in this mcache, which owns it
            // (ownership protocol case 1); the sentinel has no free slots.
            let addr = match unsafe { span.next_free_fast() } {
                Some(a) => a,
                None => self.next_free(spc)?,
            };
            let span = self.alloc[spc.index()];
            crate::sanitizer::unpoison(addr, span.elemsize());
            // SAFETY: as above, we own `span`.
            if zero && unsafe { span.needzero() } {
                // SAFETY: `addr` is a free slot of `elemsize` bytes in
                // committed memory that this call now exclusively owns.
                unsafe { zero_slot(addr as *mut u8, span.elemsize()) };
            }
            if free_hook && !noscan {
                // SAFETY: we own the cached span.
                unsafe { span.set_needs_free_hook() };
            }
            // loom-tests broken variant `alloc_black_skip`: no allocate-black
            // (loom-tests/tests/heap_markbits.rs).
            if self.alloc_state & ALLOC_BLACK != 0 && !crate::sync::broken::is("alloc_black_skip") {
                self.mark_new_object(span, addr);
            }
            // SAFETY: span memory is never at address 0.
            return Ok(unsafe { NonNull::new_unchecked(addr as *mut u8) });
        }
        self.alloc_large(size, noscan, free_hook, zero)
    }

    /// The tiny allocator: packs noscan objects under 16 bytes into shared
    /// 16-byte blocks. A block is freed when none of its sub-objects is
    /// reachable (the collector marks the whole block).
    #[inline]
    fn alloc_tiny(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let mut off = self.tiny_offset;
        if size.is_multiple_of(8) {
            off = off.next_multiple_of(8);
        } else if size.is_multiple_of(4) {
            off = off.next_multiple_of(4);
        } else if size.is_multiple_of(2) {
            off = off.next_multiple_of(2);
        }
        if off + size <= TINY_SIZE && self.tiny != 0 {
            // Fits in the current block. The block was allocated black if
            // marking is on, or will be greyed at mark start through
            // `tiny_block`, so no mark is needed here.
            self.tiny_offset = off + size;
            self.tiny_allocs += 1;
            // SAFETY: tiny != 0 is a live block address.
            return Ok(unsafe { NonNull::new_unchecked((self.tiny + off) as *mut u8) });
        }
        let spc = TINY_SPAN_CLASS;
        let span = self.alloc[spc.index()];
        // SAFETY: we own the cached span.
        let addr = match unsafe { span.next_free_fast() } {
            Some(a) => a,
            None => self.next_free(spc)?,
        };
        crate::sanitizer::unpoison(addr, TINY_SIZE);
        // SAFETY: a fresh 16-byte slot we exclusively own; tiny blocks are
        // always zeroed since sub-objects are handed out without zeroing.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, TINY_SIZE) };
        if self.alloc_state & ALLOC_BLACK != 0 {
            let span = self.alloc[spc.index()];
            self.mark_new_object(span, addr);
        }
        // Keep whichever block has more room left (Go's rule).
        if size < self.tiny_offset || self.tiny == 0 {
            self.tiny = addr;
            self.tiny_offset = size;
        }
        // SAFETY: span memory is never at address 0.
        Ok(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// The current tiny block, if any: the collector greys it at mark start
    /// because the cache may still hand out parts of it (Go's
    /// `gcMarkTinyAllocs`).
    pub fn tiny_block(&self) -> Option<usize> {
        (self.tiny != 0).then_some(self.tiny)
    }

    #[inline]
    fn mark_new_object(&self, span: SpanRef, addr: usize) {
        let span = span.get(&self.heap);
        let i = span.object_index(addr);
        if !span.mark(i) {
            self.heap.set_span_page_marked(span);
        }
    }

    /// Handles a change of the heap's `alloc_state` seen by the fast path:
    /// a handshake request is reported to the caller (if asked for);
    /// otherwise the new state is adopted (Go's `prepareForSweep`).
    #[cold]
    #[inline(never)]
    fn sync_state(&mut self) -> Result<(), AllocError> {
        let st = self.heap.alloc_state.load(Ordering::Acquire);
        if self.report_handshakes && (st ^ self.alloc_state) & !SG_BLACK_MASK != 0 {
            return Err(AllocError::Handshake);
        }
        self.sync();
        Ok(())
    }

    /// Under `sweep_gate`: adopts a sweepgen or allocate-black change the
    /// fast path has not seen yet, so that a slow path never mixes two
    /// generations. Handshake requests are left for the next fast path.
    fn adopt_locked(&mut self) {
        let st = self.heap.alloc_state.load(Ordering::Acquire);
        if (st ^ self.alloc_state) & SG_BLACK_MASK != 0 {
            let hs = self.alloc_state & !SG_BLACK_MASK;
            self.adopt((st & SG_BLACK_MASK) | hs);
        }
    }

    /// Slow path: the next free slot of class `spc`, refilling from the
    /// central list if the cached span is full (Go's `nextFree`).
    #[cold]
    #[inline(never)]
    fn next_free(&mut self, spc: SpanClass) -> Result<usize, AllocError> {
        let mut s = self.alloc[spc.index()];
        // SAFETY: we own the cached span (or it is the sentinel, which has
        // nelems == 0 and is never written).
        let mut idx = unsafe { s.next_free_index() };
        if idx == s.nelems() {
            let _g = self.detached_heap().sweep_gate.read();
            self.adopt_locked();
            self.refill(spc)?;
            s = self.alloc[spc.index()];
            // SAFETY: the refilled span is ours.
            idx = unsafe { s.next_free_index() };
            debug_assert!(idx < s.nelems(), "refill returned a full span");
            if self.heap.trigger_reached() {
                self.gc_due = true;
            }
            self.poke_if_needed(s.nelems() * s.elemsize());
        }
        // SAFETY: we own `s`.
        unsafe { s.count_alloc() };
        Ok(s.object_addr(idx))
    }

    /// Replaces the (full) cached span of `spc` with one that has free
    /// space (Go's `mcache.refill`).
    fn refill(&mut self, spc: SpanClass) -> Result<(), AllocError> {
        let s = self.alloc[spc.index()];
        let empty = self.empty();
        if s != empty {
            self.uncache(spc, s);
            self.alloc[spc.index()] = empty;
        }
        let heap = &*self.heap;
        let s = heap.central(spc).cache_span(heap)?;
        s.store_sweepgen(heap.sweepgen().wrapping_add(3));
        self.stats.add_cached_spans(1);
        // SAFETY: cache_span handed `s` to us.
        let nfree = unsafe {
            s.set_alloc_count_before_cache();
            s.nfree()
        };
        // Count the whole span as allocated up front; `uncache` gives back
        // what was not used (Go does the same, issue 53738).
        heap.add_heap_live((nfree * s.elemsize()) as i64);
        self.alloc[spc.index()] = s;
        #[cfg(feature = "expensive-checks")]
        if let Err(e) = self.verify() {
            crate::throw(&format!(
                "expensive-checks: mcache invalid after refill: {e}"
            ));
        }
        Ok(())
    }

    /// Publishes a cached span's stats and returns it to its mcentral.
    fn uncache(&mut self, spc: SpanClass, s: SpanRef) {
        let heap = &*self.heap;
        // SAFETY: we own `s` until `uncache_span` takes it.
        let (used, nfree) = unsafe { (s.allocs_since_cache(), s.nfree()) };
        self.stats.record_small_mallocs(spc.sizeclass(), used);
        self.stats.add_cached_spans(-1);
        // A span cached before the last sweep began was counted whole in
        // a heap_live the collector has since reset to the marked bytes:
        // only spans cached in this generation give their unused part
        // back (Go's releaseAll does the same).
        if nfree > 0 && s.sweepgen() == heap.sweepgen().wrapping_add(3) {
            heap.add_heap_live(-((nfree * s.elemsize()) as i64));
        }
        heap.central(spc).uncache_span(heap, s);
    }

    /// A large object (> 32 KiB): a span of its own (Go's `allocLarge`).
    #[cold]
    fn alloc_large(
        &mut self,
        size: usize,
        noscan: bool,
        free_hook: bool,
        zero: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        let heap = self.detached_heap();
        let _g = heap.sweep_gate.read();
        self.adopt_locked();
        let npages = size.div_ceil(PAGE_SIZE);
        // Reuse garbage before growing.
        heap.reclaim(npages);
        let spc = SpanClass::new(0, noscan);
        let s = heap.alloc_span_reclaiming(npages, spc)?;
        // SAFETY: alloc_span hands us `s`; we take its single object.
        unsafe {
            let idx = s.next_free_index();
            debug_assert_eq!(idx, 0);
            s.count_alloc();
            if free_hook && !noscan {
                s.set_needs_free_hook();
            }
        }
        let addr = s.base();
        crate::sanitizer::unpoison(addr, npages << PAGE_SHIFT);
        // SAFETY: we still own `s`.
        if zero && unsafe { s.needzero() } {
            // SAFETY: the span's pages are committed and ours alone.
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0, npages << PAGE_SHIFT) };
        }
        if self.alloc_state & ALLOC_BLACK != 0 {
            self.mark_new_object(s, addr);
        }
        heap.stats.record_large_malloc(npages << PAGE_SHIFT);
        heap.add_heap_live((npages << PAGE_SHIFT) as i64);
        // Publish the span where sweepers find it (Go pushes large spans to
        // the class-0 full-swept set). After this we no longer own it.
        heap.central(spc).full_swept(heap.sweepgen()).push(s);
        if heap.trigger_reached() {
            self.gc_due = true;
        }
        self.poke_if_needed(npages << PAGE_SHIFT);
        // SAFETY: span memory is never at address 0.
        Ok(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// Whether an allocation slow path saw `heap_live` reach the GC
    /// trigger since the last call (the collector's cue to start a cycle,
    /// Go's `shouldhelpgc`). Reading clears it.
    pub fn take_gc_due(&mut self) -> bool {
        std::mem::take(&mut self.gc_due)
    }

    /// Returns every cached span to its mcentral, drops the tiny block and
    /// publishes local stats (Go's `releaseAll`). The cache stays usable.
    pub fn release_all(&mut self) {
        let _g = self.detached_heap().sweep_gate.read();
        self.release_all_locked();
    }

    fn release_all_locked(&mut self) {
        let empty = self.empty();
        for i in 0..NUM_SPAN_CLASSES {
            let s = self.alloc[i];
            if s != empty {
                self.uncache(SpanClass(i as u8), s);
                self.alloc[i] = empty;
            }
        }
        self.tiny = 0;
        self.tiny_offset = 0;
        self.stats
            .record_tiny_allocs(std::mem::take(&mut self.tiny_allocs));
    }

    /// Checks every span this cache holds: owned-span invariants (see
    /// `MSpan::verify_owned`), class, and `sweepgen == sg + 3` (or `sg + 1`
    /// if a sweep began since this cache last synced).
    pub fn verify(&self) -> Result<(), String> {
        let sg = self.heap.sweepgen();
        for (i, &s) in self.alloc.iter().enumerate() {
            if s == self.empty() {
                continue;
            }
            if s.spanclass().index() != i {
                return Err(format!("{s:?} cached under class index {i}"));
            }
            let g = s.sweepgen();
            if g != sg.wrapping_add(3) && g != sg.wrapping_add(1) {
                return Err(format!("{s:?} cached with sweepgen {g}, heap sg {sg}"));
            }
            // SAFETY: we own our cached spans (ownership protocol case 1),
            // and `&self` excludes concurrent allocation from this cache.
            unsafe { s.verify_owned() }?;
        }
        if self.tiny != 0 && self.tiny_offset > TINY_SIZE {
            return Err("tiny offset past the block".into());
        }
        Ok(())
    }

    /// The span currently cached for `spc`, if any (tests, verifier).
    pub fn cached_span(&self, spc: SpanClass) -> Option<&MSpan> {
        let s = self.alloc[spc.index()];
        (s != self.empty()).then(|| s.get(&self.heap))
    }
}

/// Zeroes a slot of `n` bytes (a multiple of 8). Slots up to 64 bytes are
/// cleared with fixed-size stores inlined here; a `write_bytes` with a
/// run-time length would be a call into libc's `memset` for every small
/// object (14 % of the 64-byte benchmark's profile).
///
/// # Safety
/// 1. `p` is valid for writes of `n` bytes and 8-aligned.
#[inline(always)]
unsafe fn zero_slot(p: *mut u8, n: usize) {
    debug_assert!(n.is_multiple_of(8) && (p as usize).is_multiple_of(8));
    // Each arm writes exactly `n` bytes at the 8-aligned `p`.
    // SAFETY: obligation 1, for every arm.
    unsafe {
        match n {
            8 => p.cast::<[u64; 1]>().write([0; 1]),
            16 => p.cast::<[u64; 2]>().write([0; 2]),
            24 => p.cast::<[u64; 3]>().write([0; 3]),
            32 => p.cast::<[u64; 4]>().write([0; 4]),
            48 => p.cast::<[u64; 6]>().write([0; 6]),
            64 => p.cast::<[u64; 8]>().write([0; 8]),
            _ => std::ptr::write_bytes(p, 0, n),
        }
    }
}

impl Drop for MCache {
    fn drop(&mut self) {
        self.release_all();
        self.heap.stats.unregister(&self.stats);
    }
}

//! Heap arenas and the arena index: from any address to its span in O(1).
//!
//! Mirrors `heapArena` and `mheap.arenas` in Go's `mheap.go` and the arena
//! layout comments of `malloc.go`. The heap reserves address space in
//! aligned arenas (64 MiB by default, configurable). Each arena has a
//! metadata block ([`HeapArena`]) with one span pointer per page — Go's
//! `spans[]` — so that the collector turns a pointer into (span, object) with
//! two index loads and a magic division, never a search.
//!
//! The index is two-level, like Go's `arenas[L1][L2]`: the arena number
//! `addr >> arena_shift` is split into an L1 part (a small array allocated
//! with the heap) and an L2 part (blocks allocated on demand). Sized for the
//! 48-bit user address space of x86-64 and AArch64 Linux.
//!
//! Invariants:
//! - Entries are written under `mheap.lock` and read without it with
//!   `Acquire`; an entry never goes back to null while the heap lives
//!   (Go: "entries never transition back to nil").
//! - `spans[p]` for every page `p` of an in-use span points at that span.
//!   Entries of free pages may be stale; readers check `state == InUse` and
//!   the address range (Go's `spanOfHeap`).
//! - `page_in_use` has the bit of the first page of every in-use span set,
//!   written under the heap lock (Go's `pageInUse`).
//! - `page_marks` has the bit of the first page of every span with a marked
//!   object; set by markers with `fetch_or`, cleared at sweep (Go's
//!   `pageMarks`).

use crate::mspan::{MSpan, SpanRef, SpanState};
use crate::sizeclasses::PAGE_SHIFT;
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
// The index's entries are written once under the heap lock before the
// arena is reachable otherwise: not modelled by loom (see the shim).
use crate::sync::unmodeled::AtomicPtr as IndexPtr;
use std::ptr::NonNull;

/// Width of the address space the index covers.
const ADDR_BITS: u32 = 48;

/// Metadata of one arena. Lives (boxed) as long as its heap.
pub struct HeapArena {
    /// First byte of the arena; aligned to the arena size.
    pub(crate) base: usize,
    /// Position of the arena in the page allocator's dense index space:
    /// page `i` of this arena is page `ordinal * pages_per_arena + i`.
    pub(crate) ordinal: usize,
    /// Span of each page (null if never used). Written under the heap lock.
    spans: Box<[AtomicPtr<MSpan>]>,
    /// First page of each in-use span. Written under the heap lock.
    page_in_use: Box<[AtomicU64]>,
    /// First page of each span that has marked objects (markers set it).
    page_marks: Box<[AtomicU64]>,
}

impl HeapArena {
    pub(crate) fn new(base: usize, ordinal: usize, pages: usize) -> Box<HeapArena> {
        Box::new(HeapArena {
            base,
            ordinal,
            spans: (0..pages)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            page_in_use: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            page_marks: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Records `span` for its pages inside this arena, `[first, first+n)`.
    /// Heap lock held.
    pub(crate) fn set_spans(&self, first: usize, n: usize, span: SpanRef) {
        for e in &self.spans[first..first + n] {
            e.store(span.0.as_ptr(), Ordering::Release);
        }
    }

    /// The span recorded for page `page` of this arena (may be stale/dead).
    #[inline(always)]
    pub(crate) fn span_at(&self, page: usize) -> Option<SpanRef> {
        NonNull::new(self.spans[page].load(Ordering::Acquire)).map(SpanRef)
    }

    /// Sets or clears the in-use bit of page `page`. Heap lock held.
    pub(crate) fn set_page_in_use(&self, page: usize, on: bool) {
        let m = 1u64 << (page % 64);
        let w = &self.page_in_use[page / 64];
        if on {
            w.fetch_or(m, Ordering::Relaxed);
        } else {
            w.fetch_and(!m, Ordering::Relaxed);
        }
    }

    /// Whether page `page` is the first page of an in-use span.
    pub(crate) fn page_in_use(&self, page: usize) -> bool {
        self.page_in_use[page / 64].load(Ordering::Relaxed) & (1 << (page % 64)) != 0
    }

    /// Records that the span starting at page `page` has a marked object.
    #[inline]
    pub(crate) fn set_page_marked(&self, page: usize) {
        let m = 1u64 << (page % 64);
        let w = &self.page_marks[page / 64];
        if w.load(Ordering::Relaxed) & m == 0 {
            w.fetch_or(m, Ordering::Relaxed);
        }
    }

    /// Whether the span starting at page `page` has a marked object.
    pub(crate) fn page_marked(&self, page: usize) -> bool {
        self.page_marks[page / 64].load(Ordering::Relaxed) & (1 << (page % 64)) != 0
    }

    /// Clears the page-mark bit (at sweep).
    pub(crate) fn clear_page_marked(&self, page: usize) {
        let m = 1u64 << (page % 64);
        let w = &self.page_marks[page / 64];
        // Garbage-only spans have the bit clear: skip the shared RMW.
        if w.load(Ordering::Relaxed) & m != 0 {
            w.fetch_and(!m, Ordering::Relaxed);
        }
    }
}

/// An L2 block: `1 << l2_bits` arena pointers.
type L2 = Box<[IndexPtr<HeapArena>]>;

/// The two-level index from arena number to `HeapArena`.
pub(crate) struct ArenaIndex {
    /// log2 of the arena size.
    pub(crate) arena_shift: u32,
    l2_bits: u32,
    /// L1: pointer to the first entry of an L2 block, or null. An entry
    /// goes from null to non-null once (under the heap lock) and stays.
    l1: Box<[IndexPtr<IndexPtr<HeapArena>>]>,
}

// SAFETY: the index owns its L2 blocks and arena metadata (freed in Drop);
// all shared access is through atomics.
unsafe impl Send for ArenaIndex {}
// SAFETY: as above.
unsafe impl Sync for ArenaIndex {}

impl ArenaIndex {
    pub(crate) fn new(arena_shift: u32) -> Self {
        let bits = ADDR_BITS - arena_shift;
        let l2_bits = bits / 2;
        let l1_len = 1usize << (bits - l2_bits);
        ArenaIndex {
            arena_shift,
            l2_bits,
            l1: (0..l1_len)
                .map(|_| IndexPtr::new(std::ptr::null_mut()))
                .collect(),
        }
    }

    fn split(&self, addr: usize) -> Option<(usize, usize)> {
        let n = addr >> self.arena_shift;
        let l1 = n >> self.l2_bits;
        (l1 < self.l1.len()).then_some((l1, n & ((1 << self.l2_bits) - 1)))
    }

    /// Whether an arena at `base` could be indexed at all.
    pub(crate) fn covers(&self, base: usize, size: usize) -> bool {
        self.split(base).is_some() && self.split(base + size - 1).is_some()
    }

    /// The arena containing `addr`, if it belongs to this heap.
    #[inline(always)]
    pub(crate) fn arena_of(&self, addr: usize) -> Option<&HeapArena> {
        let (i1, i2) = self.split(addr)?;
        let l2 = self.l1[i1].load(Ordering::Acquire);
        if l2.is_null() {
            return None;
        }
        // SAFETY: a non-null L1 entry points at a live L2 block of
        // 1 << l2_bits entries (allocated in `insert`, freed only in Drop),
        // and i2 < 1 << l2_bits.
        let e = unsafe { &*l2.add(i2) };
        let a = e.load(Ordering::Acquire);
        // SAFETY: a non-null entry points at a boxed HeapArena that lives
        // until the index is dropped; Acquire pairs with the Release in
        // `insert`, so its initialisation is visible.
        (!a.is_null()).then(|| unsafe { &*a })
    }

    /// Registers `arena`. Heap lock held.
    pub(crate) fn insert(&self, arena: Box<HeapArena>) -> &HeapArena {
        let base = arena.base;
        let Some((i1, i2)) = self.split(base) else {
            unreachable!("callers check `covers` before inserting")
        };
        let mut l2 = self.l1[i1].load(Ordering::Acquire);
        if l2.is_null() {
            let block: L2 = (0..1usize << self.l2_bits)
                .map(|_| IndexPtr::new(std::ptr::null_mut()))
                .collect();
            l2 = Box::into_raw(block).cast::<IndexPtr<HeapArena>>();
            // Release: readers that see the block see its null entries.
            self.l1[i1].store(l2, Ordering::Release);
        }
        let raw = Box::into_raw(arena);
        // SAFETY: l2 is a live block and i2 is in range (see arena_of).
        let e = unsafe { &*l2.add(i2) };
        debug_assert!(e.load(Ordering::Relaxed).is_null());
        // Release: publishes the arena's initialised metadata.
        e.store(raw, Ordering::Release);
        // SAFETY: just created from a Box; lives until Drop.
        unsafe { &*raw }
    }

    /// The span containing `addr`, if `addr` is inside an in-use span of
    /// this heap (Go's `spanOfHeap`).
    #[inline]
    pub(crate) fn span_of(&self, addr: usize) -> Option<SpanRef> {
        let arena = self.arena_of(addr)?;
        let page = (addr - arena.base) >> PAGE_SHIFT;
        let s = arena.span_at(page)?;
        (s.state() == SpanState::InUse && s.base() <= addr && addr < s.end()).then_some(s)
    }
}

impl Drop for ArenaIndex {
    fn drop(&mut self) {
        let n2 = 1usize << self.l2_bits;
        for e in self.l1.iter() {
            let l2 = e.load(Ordering::Relaxed);
            if l2.is_null() {
                continue;
            }
            for i in 0..n2 {
                // SAFETY: live block of n2 entries; we have &mut self.
                let a = unsafe { &*l2.add(i) }.load(Ordering::Relaxed);
                if !a.is_null() {
                    // SAFETY: created by Box::into_raw in `insert`, dropped
                    // once here.
                    drop(unsafe { Box::from_raw(a) });
                }
            }
            // SAFETY: the block was a Box<[_]> of n2 entries leaked in
            // `insert`; rebuild and drop it once.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(l2, n2)) });
        }
    }
}

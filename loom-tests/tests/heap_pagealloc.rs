//! Model 8 (issue 5): the page heap (`MHeap::alloc_span` / `free_span`
//! over the page allocator) under two allocating and freeing threads.
//!
//! **Models.** A tiny heap (one 4 MiB arena = one page-allocator chunk,
//! committed during setup) holds two adjacent large objects L1 and L2 (5
//! pages each, at the bottom of the chunk) when a sweep begins with
//! nothing marked. Then, in parallel:
//! - a thread allocates another large object: `alloc_large` first
//!   reclaims (`reclaim` → `sweep_one`) until it has freed 5 pages, so it
//!   sweeps and frees one of L1, L2 (`free_span`), then takes a 5-page
//!   run (`alloc_span`);
//! - the main thread sweeps one span (`sweep_one`, as a mutator paying
//!   sweep credit does), which frees the other one, then allocates a
//!   12 KiB object, whose cache refill grows its class with a fresh 3-page
//!   span from the page heap.
//!
//! So both threads free and both allocate, under the heap lock: the two
//! frees coalesce with each other and with the free run above them in
//! either order, and each first-fit search races with the frees.
//! Afterwards the main thread frees everything (a sweep with nothing
//! marked) and allocates one object as large as the whole committed
//! heap.
//!
//! **Proves** (every interleaving loom explores within the bound): the
//! spans handed out never overlap; `MHeap::verify` passes (page allocator
//! bitmaps and summaries, page map, `pageInUse` bits, `mapped == in_use +
//! free`); in-use bytes are exactly the live spans' pages; once everything
//! is freed no page is in use, every committed page is free, and the free
//! pages coalesced into one run (an allocation of the whole heap succeeds
//! without growing it).
//!
//! **Does not prove**: anything beyond 2 threads, 2 concurrent frees and
//! 2 concurrent allocations, one chunk and loom's preemption bound (2 by
//! default); heap growth racing
//! allocation (the chunk is committed during setup); runs that straddle
//! chunks or arenas; the scavenger (`scavenge_take` / `scavenge_return`).
//!
//! **Broken variant** `pagealloc_find_unlocked` (`heap/src/mheap.rs`,
//! `alloc_span`): the free run is found under the heap lock but taken
//! under a second acquisition, so two allocations can take the same run.
#![cfg(loom)]

mod heap_support;

use heap_support::{check_caught, check_correct, tiny_heap};
use spanheap_heap::sizeclasses::PAGE_SIZE;
use spanheap_heap::sync::{Arc, thread};
use spanheap_heap::{AllocRequest, MCache, MHeap};

/// A large object: 5 pages.
const LARGE: usize = 5 * PAGE_SIZE;
/// A small object: its class has 3-page spans.
const SMALL: usize = 12 << 10;

fn alloc(c: &mut MCache, size: usize) -> usize {
    // Not zeroed: nobody reads the objects, and zeroing the whole-heap
    // object would cost more than the model.
    let req = AllocRequest::noscan(size);
    c.alloc_uninit(req).expect("alloc").as_ptr() as usize
}

/// The page range `[base, end)` of the span holding `addr`.
fn span_range(heap: &MHeap, addr: usize) -> (usize, usize) {
    let s = heap.span_of(addr).expect("in-use span");
    (s.base(), s.end())
}

fn pagealloc_model() {
    let heap = Arc::new(tiny_heap());

    // Setup: L1 and L2 at the bottom of the chunk, then a sweep begins
    // with nothing marked.
    let mut c = MCache::new(heap.clone());
    let l1 = alloc(&mut c, LARGE);
    let l2 = alloc(&mut c, LARGE);
    drop(c);
    assert_eq!(l2, l1 + LARGE, "L1 and L2 are adjacent");
    heap.finish_sweep().unwrap();
    // SAFETY: nothing marks in this model (obligation 1).
    unsafe { heap.begin_sweep() }.unwrap();
    let sys = heap.stats().heap_sys;

    // The caches are made before the threads start and dropped after
    // they end: registering and retiring a cache's statistics shard is not
    // what this model is about, and its 70 shared counters would multiply
    // the interleavings.
    let mut c1 = MCache::new(heap.clone());
    let mut c2 = MCache::new(heap.clone());
    let t = thread::spawn(move || {
        let x = alloc(&mut c1, LARGE);
        (x, c1)
    });
    assert_eq!(heap.sweep_one(), Some(5), "one large span left to sweep");
    let y = alloc(&mut c2, SMALL);
    let (x, c1) = t.join().unwrap();
    drop((c1, c2));

    // The live spans never overlap.
    let (sx, sy) = (span_range(&heap, x), span_range(&heap, y));
    assert!(
        sx.1 <= sy.0 || sy.1 <= sx.0,
        "spans overlap: {sx:x?} and {sy:x?} (objects {x:#x} and {y:#x})"
    );
    assert!(sx.0 <= x && x + LARGE <= sx.1 && sy.0 <= y && y + SMALL <= sy.1);
    heap.verify().unwrap_or_else(|e| panic!("verify: {e}"));
    heap.finish_sweep().unwrap();
    let st = heap.stats();
    assert_eq!(st.heap_inuse, (5 + 3) * PAGE_SIZE as u64, "in-use bytes");
    assert_eq!(
        st.heap_inuse + st.heap_idle,
        st.heap_sys,
        "in use + free == mapped"
    );
    assert_eq!(st.heap_sys, sys, "the heap grew");

    // Free everything: a sweep with nothing marked.
    // SAFETY: nothing marks in this model (obligation 1).
    unsafe { heap.begin_sweep() }.unwrap();
    heap.finish_sweep().unwrap();
    let st = heap.stats();
    assert_eq!(
        st.heap_inuse, 0,
        "pages still in use after freeing everything"
    );
    assert_eq!(st.heap_idle, st.heap_sys, "free pages != mapped pages");
    heap.verify()
        .unwrap_or_else(|e| panic!("verify after freeing all: {e}"));
    // Coalesced: the whole committed heap is one free run.
    let mut c = MCache::new(heap.clone());
    alloc(&mut c, sys as usize);
    drop(c);
    assert_eq!(
        heap.stats().heap_sys,
        sys,
        "free pages did not coalesce: the heap grew"
    );
    heap.verify()
        .unwrap_or_else(|e| panic!("verify after the whole-heap object: {e}"));
}

#[test]
fn pagealloc_spans_disjoint_and_coalesced() {
    check_correct("model 8 (page heap)", pagealloc_model);
}

#[test]
fn broken_pagealloc_find_unlocked_is_caught() {
    check_caught(
        "model 8 (page heap)",
        "pagealloc_find_unlocked",
        pagealloc_model,
    );
}

//! Model 1 (issue 5): the span sets of one `MCentral` under concurrent
//! `cache_span` / `uncache_span` / `grow`.
//!
//! **Models.** Three mutators, each with its own `MCache`, allocate from
//! the same span class (12 KiB objects, two per 3-page span) of one tiny
//! heap. Before the threads start, the heap holds one span with one
//! object and one free slot in the class's partial swept set, and the
//! caches are made (they are dropped after the threads end: registering
//! and retiring a cache's statistics shard is not what this model is
//! about). Then thread A allocates two objects and flushes its cache
//! (`release_all`), while thread B and the main thread each allocate one
//! object and flush. Between them they pop the partial span
//! (`cache_span`), grow the class from the page heap when the set is
//! empty (`grow` → `alloc_span`), push a full span to the full set and a
//! partial one to the partial set (`uncache_span`, on refill and on
//! flush), and pop each other's returned spans. All of it is the real
//! allocator code, whose locks, atomics and owner-only span cells are
//! loom's.
//!
//! **Proves** (every interleaving loom explores within the bound): no
//! span is lost or duplicated: after the threads finish, each in-use span
//! of the class is in exactly one span set (`MHeap::verify` rejects a
//! span in two sets, and the set count must equal the number of in-use
//! spans); the five objects handed out never overlap; the allocated slots
//! of all spans are exactly those five objects; and the statistics
//! (objects, mallocs, in-use bytes) add up. A span owned by two parties
//! at once would also show as a data race on its owner-only cells, which
//! loom reports.
//!
//! **Does not prove**: anything beyond 3 threads, 4 concurrent
//! allocations of one span class, and loom's preemption bound (2 by
//! default); sweeping (the sets used here are all swept; see
//! `heap_sweepgen.rs`); the tiny allocator and large objects.
//!
//! **Broken variant** `spanset_pop_split` (`heap/src/mcentral.rs`,
//! `SpanSet::pop`): the pop picks the top span under the set's lock but
//! removes it under a second acquisition, so two poppers can both take
//! the same span.
#![cfg(loom)]

mod heap_support;

use heap_support::{check_caught, check_correct, tiny_heap};
use spanheap_heap::sizeclasses::{PAGE_SIZE, class_nobjs, class_npages, size_to_class};
use spanheap_heap::sync::{Arc, thread};
use spanheap_heap::{AllocRequest, MCache, SpanClass};

/// Object size: a class with two objects per span, so a span is partial
/// after one allocation and full after two.
const SIZE: usize = 12 << 10;

fn alloc(c: &mut MCache) -> usize {
    c.alloc(AllocRequest::scan(SIZE)).expect("alloc").as_ptr() as usize
}

fn mcentral_model() {
    let spc = SpanClass::new(size_to_class(SIZE), false);
    assert_eq!(
        class_nobjs(spc.sizeclass()),
        2,
        "the model needs 2 objects per span"
    );
    let heap = Arc::new(tiny_heap());

    // Setup (one thread): a span with one object and one free slot, back
    // in the partial swept set.
    let mut c0 = MCache::new(heap.clone());
    let a0 = alloc(&mut c0);
    drop(c0);

    // Caches made before and dropped after the threads (module docs).
    let mut c1 = MCache::new(heap.clone());
    let mut c2 = MCache::new(heap.clone());
    let mut c3 = MCache::new(heap.clone());
    let t1 = thread::spawn(move || {
        let x = [alloc(&mut c1), alloc(&mut c1)];
        c1.release_all();
        (x, c1)
    });
    let t2 = thread::spawn(move || {
        let z = alloc(&mut c3);
        c3.release_all();
        (z, c3)
    });
    let y = alloc(&mut c2);
    c2.release_all();
    let ([x0, x1], c1) = t1.join().unwrap();
    let (z, c3) = t2.join().unwrap();
    drop((c1, c2, c3));

    // No two objects overlap.
    let mut objs = [a0, x0, x1, y, z];
    objs.sort_unstable();
    for w in objs.windows(2) {
        assert!(w[0] + SIZE <= w[1], "objects overlap: {objs:x?}");
    }
    // Structure: page map, page accounting, each span in at most one set,
    // set placement matches sweepgen and fullness, bitmaps match counts.
    heap.verify().unwrap_or_else(|e| panic!("verify: {e}"));
    // No span lost: every in-use span of the class is in a set.
    let mut in_use = 0;
    heap.for_each_span(|s| {
        if s.spanclass() == spc {
            in_use += 1;
        }
    });
    let in_sets = heap.central(spc).span_count();
    assert_eq!(
        in_sets, in_use,
        "{in_use} in-use spans but {in_sets} in the span sets"
    );
    // The allocated slots are exactly the objects handed out.
    heap.finish_sweep().unwrap();
    let mut allocated = Vec::new();
    // SAFETY: every thread has finished and every mcache was dropped
    // (flushed), so this thread owns every span (obligation 1); no sweep
    // ever began, and `finish_sweep` returned Ok (obligation 2).
    unsafe { heap.for_each_allocated(|a, _| allocated.push(a)) };
    allocated.sort_unstable();
    assert_eq!(
        allocated, objs,
        "allocated slots differ from the objects handed out"
    );
    // Accounting adds up.
    let st = heap.stats();
    assert_eq!(st.heap_objects, 5, "heap_objects");
    assert_eq!(st.mallocs, 5, "mallocs");
    let span_bytes = (class_npages(spc.sizeclass()) * PAGE_SIZE) as u64;
    assert_eq!(st.heap_inuse, in_use as u64 * span_bytes, "heap_inuse");
    assert!((3..=5).contains(&in_use), "{in_use} spans for 5 objects");
}

#[test]
fn mcentral_span_sets_lose_and_duplicate_nothing() {
    check_correct("model 1 (mcentral)", mcentral_model);
}

#[test]
fn broken_spanset_pop_split_is_caught() {
    check_caught("model 1 (mcentral)", "spanset_pop_split", mcentral_model);
}

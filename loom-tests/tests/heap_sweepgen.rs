//! Model 2 (issue 5): the sweepgen protocol after a new sweep generation
//! begins: lazy sweeping by an allocator, the background sweeper, the
//! sweep of a stale cached span, and sweep termination.
//!
//! Two models, both on a tiny heap whose free hook records every freed
//! object, with 12 KiB scan objects (two per span).
//!
//! ## `lazy_and_background_sweepers_agree`
//! **Models.** Set up with one thread: a cache `A` allocates `o0 o1` (span
//! S1, which goes back to the central full set when `A` refills) and
//! `o2 o3` (span S2, still cached in `A`). After `finish_sweep`, the
//! "collector" marks `o1 o2 o3` through `MHeap::mark_object`, leaving
//! `o0` white, and calls `begin_sweep`: every span now needs sweeping, S1
//! in the central unswept set and S2 as a *stale cached* span. Then, in
//! parallel:
//! - the allocator thread allocates one object from `A`. Its fast path
//!   sees the new generation and flushes `A`, which sweeps S2
//!   (`uncache_span`'s stale path); its refill (`cache_span`) then sweeps
//!   S1 lazily if it gets to S1 first, or takes S1 swept by the other
//!   thread, or grows the heap;
//! - the background sweeper runs `finish_sweep` (`sweep_one` until it
//!   returns None, then sweep termination). If that succeeds, it checks
//!   that every span is swept and, as the next mark phase would, marks
//!   `o2` (in S2).
//!
//! **Proves** (every interleaving loom explores within the bound): each
//! span is swept exactly once per generation (sg−2 → sg−1 → sg): the
//! only freed object is `o0`, freed exactly once (a second sweep of a
//! span would free its marked objects too), and at the end every span
//! has `sweepgen == sg`; an object is handed out only after its span was swept (if the
//! allocator gets `o0`'s slot, the sweep already freed `o0`; it never
//! gets a marked object's slot); the allocated slots are then exactly the
//! marked objects plus the new one; when `finish_sweep` reports the sweep
//! complete, no span is unswept or mid-sweep, and a mark set then is not
//! lost (it survives to the end); `MHeap::verify` passes.
//!
//! ## `begin_sweep_races_sweep_one`
//! **Models.** After a cycle's marking (`o1` of S1 marked, `o0` white),
//! the collector calls `begin_sweep` while a sweeper that is still
//! around from the last cycle (a mutator paying sweep credit or waiting
//! for a mark to start, or the background sweeper between spans) calls
//! `sweep_one` until it returns None. Neither takes the sweep gate.
//! Afterwards the sweep is finished (`sweep_one` loop + `finish_sweep`).
//! **Proves**: however `sweep_one` interleaves with `begin_sweep`, the new
//! generation's sweep is not reported complete before S1 is swept: at the
//! end S1 has `sweepgen == sg` and `o0` was freed exactly once.
//!
//! ## Bounds
//! Two threads (after a single-threaded setup), one allocation, a few
//! `sweep_one` calls, loom preemption bound 2 (`LOOM_MAX_PREEMPTIONS`).
//! loom's DPOR tracks only the last access to each atomic, so it does not
//! enumerate every interleaving within the bound; the thread roles are
//! chosen so that the races named here are among those it explores (each
//! broken variant shows that its race is).
//! Does not prove: more spans or classes, large spans (`reclaim`),
//! proportional sweeping from several mutators at once, the collector's
//! handshakes, or anything about marking itself (see `heap_markbits.rs`).
//!
//! ## Broken variants
//! - `uncache_stale_dec_early` (`heap/src/mcentral.rs`, `uncache_span`):
//!   the stale cached span is counted down *before* its sweep, the order
//!   that commit 37b4b25 fixed. Caught by the first model.
//! - `begin_sweep_reset_first` (`heap/src/sweep.rs`, `begin_sweep`): the
//!   active-sweeper state is reset before the new sweepgen is published,
//!   the order before the fix that came with this model. Caught by the
//!   second model.
#![cfg(loom)]

mod heap_support;

use heap_support::{check_caught, check_correct, tiny_config};
use spanheap_heap::sizeclasses::class_nobjs;
use spanheap_heap::sizeclasses::size_to_class;
use spanheap_heap::sync::{Arc, thread};
use spanheap_heap::{AllocRequest, MCache, MHeap};

/// Object size: a class with two objects per span.
const SIZE: usize = 12 << 10;

fn alloc(c: &mut MCache) -> usize {
    c.alloc(AllocRequest::scan(SIZE)).expect("alloc").as_ptr() as usize
}

/// Every object the heap's free hook was called for, in order. A plain
/// `std` mutex: the hook never yields to loom while holding it.
type Freed = std::sync::Arc<std::sync::Mutex<Vec<usize>>>;

/// A tiny heap whose free hook records into the returned list.
fn heap_recording_frees() -> (Arc<MHeap>, Freed) {
    assert_eq!(
        class_nobjs(size_to_class(SIZE)),
        2,
        "the model needs 2 objects per span"
    );
    let freed = Freed::default();
    let f = freed.clone();
    let hook = Box::new(move |a: usize| f.lock().unwrap().push(a));
    let heap = MHeap::with_free_hook(tiny_config(), Some(hook)).expect("valid config");
    (Arc::new(heap), freed)
}

/// Asserts that every in-use span is swept: `sweepgen == sg`, or, with
/// `allow_cached`, `sg + 3` (swept, then cached).
fn assert_all_swept(heap: &MHeap, allow_cached: bool, when: &str) {
    let sg = heap.sweepgen();
    heap.for_each_span(|s| {
        let g = s.sweepgen();
        let ok = g == sg || (allow_cached && g == sg.wrapping_add(3));
        assert!(ok, "{when}: span {s:?} has sweepgen {g}, heap sg {sg}");
    });
}

fn is_marked(heap: &MHeap, addr: usize) -> bool {
    let o = heap.find_object(addr).expect("heap object");
    o.span.is_marked(o.index)
}

fn lazy_vs_background_model() {
    let (heap, freed) = heap_recording_frees();

    // Setup: S1 = [o0 o1] in the central full set, S2 = [o2 o3] cached.
    let mut a = MCache::new(heap.clone());
    let o = [alloc(&mut a), alloc(&mut a), alloc(&mut a), alloc(&mut a)];
    heap.finish_sweep().unwrap();
    // The mark phase: o0 stays white.
    for &x in &o[1..] {
        assert_eq!(heap.mark_object(x), Some(false));
    }
    // SAFETY: marking is over: nothing marks until the sweeper thread's
    // `finish_sweep` has returned Ok (obligation 1).
    unsafe { heap.begin_sweep() }.unwrap();

    let fr = freed.clone();
    let allocator = thread::spawn(move || {
        let n = alloc(&mut a);
        assert!(!o[1..].contains(&n), "handed out a live object {n:#x}");
        if n == o[0] {
            assert!(
                fr.lock().unwrap().contains(&n),
                "handed out {n:#x} before the sweep of its span freed it"
            );
        }
        (n, a)
    });
    let h = heap.clone();
    let sweeper = thread::spawn(move || {
        // `finish_sweep` first sweeps until `sweep_one` finds nothing.
        if h.finish_sweep().is_err() {
            return false; // the allocator has not flushed S2 yet
        }
        assert_all_swept(&h, true, "finish_sweep returned Ok");
        // The next mark phase may begin: mark o2.
        assert_eq!(
            h.mark_object(o[2]),
            Some(false),
            "o2 marked before the mark phase"
        );
        true
    });
    let (n, a) = allocator.join().unwrap();
    let marked_o2 = sweeper.join().unwrap();
    drop(a);

    heap.finish_sweep().unwrap();
    assert_all_swept(&heap, false, "end");
    assert_eq!(*freed.lock().unwrap(), [o[0]], "freed objects");
    let mut want = vec![o[1], o[2], o[3], n];
    want.sort_unstable();
    let mut allocated = Vec::new();
    // SAFETY: both threads have finished and the only mcache was dropped
    // (flushed), so this thread owns every span (obligation 1);
    // `finish_sweep` returned Ok (obligation 2).
    unsafe { heap.for_each_allocated(|x, _| allocated.push(x)) };
    allocated.sort_unstable();
    assert_eq!(allocated, want, "allocated slots after the sweep");
    if marked_o2 {
        assert!(
            is_marked(&heap, o[2]),
            "a mark set after finish_sweep was lost"
        );
    }
    heap.verify().unwrap_or_else(|e| panic!("verify: {e}"));
}

fn begin_sweep_vs_sweep_one_model() {
    let (heap, freed) = heap_recording_frees();

    // Setup: S1 = [o0 o1] in the central full set; o1 marked.
    let mut c = MCache::new(heap.clone());
    let o = [alloc(&mut c), alloc(&mut c)];
    drop(c);
    heap.finish_sweep().unwrap();
    assert_eq!(heap.mark_object(o[1]), Some(false));

    // A sweeper left over from the previous cycle. (It is the spawned
    // thread so that loom, which runs the main thread first, finds the
    // interleavings through the stores of `begin_sweep` that it races:
    // loom's DPOR tracks only the last access to each atomic.)
    let h = heap.clone();
    let sweeper = thread::spawn(move || while h.sweep_one().is_some() {});
    // SAFETY: marking is over and nothing marks again (obligation 1).
    unsafe { heap.begin_sweep() }.unwrap();
    sweeper.join().unwrap();

    while heap.sweep_one().is_some() {}
    heap.finish_sweep().unwrap();
    assert_all_swept(&heap, false, "after finish_sweep");
    assert_eq!(*freed.lock().unwrap(), [o[0]], "freed objects");
    heap.verify().unwrap_or_else(|e| panic!("verify: {e}"));
}

#[test]
fn lazy_and_background_sweepers_agree() {
    check_correct("model 2 (sweepgen)", lazy_vs_background_model);
}

#[test]
fn broken_uncache_stale_dec_early_is_caught() {
    check_caught(
        "model 2 (sweepgen)",
        "uncache_stale_dec_early",
        lazy_vs_background_model,
    );
}

#[test]
fn begin_sweep_races_sweep_one() {
    check_correct("model 2b (begin_sweep)", begin_sweep_vs_sweep_one_model);
}

#[test]
fn broken_begin_sweep_reset_first_is_caught() {
    check_caught(
        "model 2b (begin_sweep)",
        "begin_sweep_reset_first",
        begin_sweep_vs_sweep_one_model,
    );
}

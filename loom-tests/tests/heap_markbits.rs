//! Model 3 (issue 5): mark bits under concurrent marking and
//! allocate-black.
//!
//! **Models.** A tiny heap during a mark phase, driven through the heap's
//! public API as the collector drives it: `finish_sweep`, then
//! `set_allocate_black` and a mutator cache that has adopted it
//! (`MCache::sync`, the collector's handshake). Before the threads start,
//! the mutator's cache holds a span of 16-byte scan objects with one
//! white object `a` in slot 0. Then, in parallel:
//! - the mutator allocates `b` (slot 1 of the same span: its mark bit is
//!   in the same bitmap word as `a`'s) and publishes its address;
//! - two mark workers (a spawned thread and the main thread) each grey
//!   `a` with `MHeap::mark_object`, then grey `b` if they see it
//!   published, as a marker scanning a field that points to it would.
//!
//! **Proves** (every interleaving loom explores within the bound):
//! `mark_object` reports "newly marked" for `a` to exactly one of the two
//! workers, so `a` is queued for scanning exactly once; `b` is born marked
//! (allocate-black), so a worker that finds it never queues it; at the end
//! both mark bits are set (the allocation's `fetch_or` and the workers'
//! do not overwrite each other) and no other bit of the span is set.
//!
//! **Does not prove**: anything beyond 3 threads, one span, two objects,
//! two workers and loom's preemption bound (2 by default); the
//! collector's handshake that makes a mutator adopt allocate-black (it
//! is done before the threads start here); the tiny allocator; the grey
//! queue itself (spanheap-gc); `mark_found`'s page-mark shortcut.
//!
//! **Broken variants**
//! - `mark_bit_store` (`heap/src/gcbits.rs`, `set`): the mark bit is set
//!   by a load and a store instead of `fetch_or`, so two markers can both
//!   see it clear, and a store can wipe a concurrently set neighbour bit.
//! - `alloc_black_skip` (`heap/src/mcache.rs`, `alloc_impl`): an object
//!   allocated while allocate-black is on is not marked.
#![cfg(loom)]

mod heap_support;

use heap_support::{check_caught, check_correct, tiny_heap};
use spanheap_heap::sync::atomic::{AtomicUsize, Ordering};
use spanheap_heap::sync::{Arc, thread};
use spanheap_heap::{AllocRequest, MCache, MHeap};

/// Object size: 16-byte scan objects, 512 to a span.
const SIZE: usize = 16;

/// What one mark worker saw: `mark_object`'s "already marked" answer for
/// `a`, and for `b` if it found `b` published.
type Seen = (bool, Option<bool>);

fn mark_worker(heap: &MHeap, a: usize, published: &AtomicUsize) -> Seen {
    let was_a = heap.mark_object(a).expect("a is a heap object");
    // Acquire: pairs with the mutator's Release publication of `b`.
    let b = published.load(Ordering::Acquire);
    let was_b = (b != 0).then(|| heap.mark_object(b).expect("b is a heap object"));
    (was_a, was_b)
}

fn markbits_model() {
    let heap = Arc::new(tiny_heap());
    let mut c = MCache::new(heap.clone());
    let a = c.alloc(AllocRequest::scan(SIZE)).unwrap().as_ptr() as usize;
    // Mark start, as the collector does it.
    heap.finish_sweep().unwrap();
    // SAFETY: `finish_sweep` returned Ok and no sweep begins in this model
    // (obligation 1).
    unsafe { heap.set_allocate_black() };
    c.sync();

    let published = Arc::new(AtomicUsize::new(0));
    let p = published.clone();
    let mutator = thread::spawn(move || {
        let b = c.alloc(AllocRequest::scan(SIZE)).unwrap().as_ptr() as usize;
        // Release: the object (and its mark) before its address.
        p.store(b, Ordering::Release);
        (b, c)
    });
    let (h, p) = (heap.clone(), published.clone());
    let worker = thread::spawn(move || mark_worker(&h, a, &p));
    let mine = mark_worker(&heap, a, &published);
    let theirs = worker.join().unwrap();
    let (b, c) = mutator.join().unwrap();
    drop(c);

    let greyed_a = [mine.0, theirs.0].iter().filter(|&&was| !was).count();
    assert_eq!(
        greyed_a, 1,
        "a queued by {greyed_a} workers (saw {mine:?} and {theirs:?})"
    );
    for seen in [mine, theirs] {
        assert_ne!(
            seen.1,
            Some(false),
            "a worker found the black object b white and queued it"
        );
    }
    let oa = heap.find_object(a).unwrap();
    let ob = heap.find_object(b).unwrap();
    assert!(std::ptr::eq(oa.span, ob.span), "a and b share a span");
    assert_eq!((oa.index, ob.index), (0, 1), "a and b are slots 0 and 1");
    assert!(oa.span.is_marked(0), "the mark of a was lost");
    assert!(oa.span.is_marked(1), "b, allocated black, is not marked");
    assert_eq!(oa.span.count_marked(), 2, "marks other than a and b");
    assert!(heap.span_page_marked(oa.span), "page-mark bit of the span");
}

#[test]
fn markbits_each_object_greyed_once() {
    check_correct("model 3 (mark bits)", markbits_model);
}

#[test]
fn broken_mark_bit_store_is_caught() {
    check_caught("model 3 (mark bits)", "mark_bit_store", markbits_model);
}

#[test]
fn broken_alloc_black_skip_is_caught() {
    check_caught("model 3 (mark bits)", "alloc_black_skip", markbits_model);
}

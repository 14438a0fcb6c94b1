//! Smoke model (the full suite is issue 5): two mutator threads, each with
//! its own mcache, allocate from one heap at the same time. Under loom the
//! heap's locks, atomics and owner-only span cells are loom's, so loom
//! explores the interleavings of the real `cache_span` / `grow` /
//! `alloc_span` code and reports any unsynchronised access to a span's
//! owner-only fields as a data race.
#![cfg(loom)]

use spanheap_heap::sync::{Arc, thread};
use spanheap_heap::{AllocRequest, HeapConfig, MCache, MHeap};

#[test]
fn two_mcaches_share_mcentral_and_mheap() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    // Building a heap performs a few thousand loom-visible operations.
    builder.max_branches = 50_000;
    static ITERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    builder.check(|| {
        ITERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let heap = Arc::new(
            MHeap::new(HeapConfig {
                arena_size: 4 << 20,
                ..HeapConfig::default()
            })
            .unwrap(),
        );
        let h2 = heap.clone();
        let t = thread::spawn(move || {
            let mut c = MCache::new(h2);
            let a = c.alloc(AllocRequest::scan(16 << 10)).unwrap().as_ptr() as usize;
            let b = c.alloc(AllocRequest::scan(16 << 10)).unwrap().as_ptr() as usize;
            (a, b)
        });
        let mut c = MCache::new(heap.clone());
        let x = c.alloc(AllocRequest::scan(16 << 10)).unwrap().as_ptr() as usize;
        let (a, b) = t.join().unwrap();
        let mut all = [a, b, x];
        all.sort_unstable();
        assert!(
            all[0] + (16 << 10) <= all[1] && all[1] + (16 << 10) <= all[2],
            "overlap: {all:x?}"
        );
        drop(c);
        heap.verify().unwrap();
    });
    let n = ITERATIONS.load(std::sync::atomic::Ordering::Relaxed);
    println!("explored {n} interleavings");
    assert!(
        n > 1,
        "loom explored a single interleaving: the model sees no concurrency"
    );
}

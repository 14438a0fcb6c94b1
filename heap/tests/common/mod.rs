//! Helpers shared by the heap's integration tests: a stand-in for the
//! collector that marks a given set of objects and runs a sweep cycle.
#![allow(dead_code)]

use spanheap_heap::sync::Arc;
use spanheap_heap::{HeapConfig, MCache, MHeap};

pub fn heap() -> Arc<MHeap> {
    Arc::new(MHeap::new(HeapConfig::default()).expect("default config is valid"))
}

pub fn small_arena_heap() -> Arc<MHeap> {
    Arc::new(
        MHeap::new(HeapConfig {
            arena_size: 4 << 20,
            ..HeapConfig::default()
        })
        .expect("4 MiB arenas are valid"),
    )
}

/// One "collection" as the collector will run it, with the world stopped:
/// finish the previous sweep, mark `live` (and the caches' tiny blocks),
/// start the new sweep, and flush every cache (Go's forEachP
/// prepareForSweep). Sweeping itself then happens lazily.
pub fn collect(heap: &MHeap, caches: &mut [&mut MCache], live: impl IntoIterator<Item = usize>) {
    heap.finish_sweep().expect("every cache was flushed");
    for a in live {
        assert!(
            heap.mark_object(a).is_some(),
            "live object {a:#x} not in heap"
        );
    }
    for c in caches.iter() {
        if let Some(t) = c.tiny_block() {
            heap.mark_object(t);
        }
    }
    // SAFETY: single-threaded test: no other thread touches the heap or the
    // caches, and no mark bit is set after this until the next finish_sweep.
    unsafe { heap.begin_sweep() }.expect("previous sweep finished");
    for c in caches.iter_mut() {
        c.release_all();
    }
}

/// Fills `n` bytes at `p` with a pattern derived from `seed`.
pub fn fill(p: *mut u8, n: usize, seed: u64) {
    for i in 0..n {
        // SAFETY: callers pass memory they own of at least n bytes.
        unsafe { *p.add(i) = (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8 };
    }
}

/// Checks the pattern written by `fill`.
pub fn check(p: *const u8, n: usize, seed: u64) -> bool {
    (0..n).all(|i| {
        // SAFETY: as in fill.
        unsafe { *p.add(i) == (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8 }
    })
}

/// Writes one byte per 4 KiB page of `n` bytes at `p`, making them resident.
pub fn touch(p: *mut u8, n: usize) {
    for off in (0..n).step_by(4096) {
        // SAFETY: callers pass memory they own of n bytes.
        unsafe { p.add(off).write(1) };
    }
}

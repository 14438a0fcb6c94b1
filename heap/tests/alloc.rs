//! Allocation, sweeping and bad-input behaviour of the heap, through its
//! public API (MCache / MHeap), single-threaded.

mod common;

use common::{check, collect, fill, heap, small_arena_heap};
use spanheap_heap::sizeclasses::{
    MAX_SMALL_SIZE, NUM_SIZE_CLASSES, PAGE_SIZE, class_nobjs, class_size, size_to_class,
};
use spanheap_heap::sync::Arc;
use spanheap_heap::{
    AllocError, AllocRequest, HeapConfig, MCache, MHeap, SpanClass, SweepError, TINY_SPAN_CLASS,
};
use std::collections::BTreeMap;

fn zeroed(p: *const u8, n: usize) -> bool {
    // SAFETY: callers pass freshly allocated memory of n bytes.
    (0..n).all(|i| unsafe { *p.add(i) } == 0)
}

#[test]
fn every_size_class_allocates_zeroed_aligned_disjoint_objects() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    let mut objs: BTreeMap<usize, usize> = BTreeMap::new();
    for class in 1..NUM_SIZE_CLASSES as u8 {
        let size = class_size(class);
        for noscan in [false, true] {
            if noscan && size < 16 {
                continue; // served by the tiny allocator, tested below
            }
            // Enough objects to need two spans.
            for _ in 0..class_nobjs(class) + 3 {
                let req = if noscan {
                    AllocRequest::noscan(size)
                } else {
                    AllocRequest::scan(size)
                };
                let p = c.alloc(req).unwrap().as_ptr();
                assert_eq!(p as usize % 8, 0);
                if size >= 16 && size.is_multiple_of(16) {
                    assert_eq!(p as usize % 16, 0);
                }
                assert!(zeroed(p, size), "class {class} not zeroed");
                fill(p, size, p as u64);
                let o = h.find_object(p as usize + size - 1).unwrap();
                assert_eq!(o.base, p as usize, "interior pointer maps back to base");
                assert_eq!(o.span.spanclass(), SpanClass::new(class, noscan));
                assert!(objs.insert(p as usize, size).is_none());
            }
        }
    }
    let mut end = 0;
    for (&a, &n) in &objs {
        assert!(a >= end, "objects overlap at {a:#x}");
        assert!(
            check(a as *const u8, n, a as u64),
            "object {a:#x} corrupted"
        );
        end = a + n;
    }
    c.verify().unwrap();
    h.verify().unwrap();
    c.release_all();
    let st = h.stats();
    assert_eq!(st.mallocs, objs.len() as u64);
    for cs in &st.by_size {
        let flavours = if cs.size < 16 { 1 } else { 2 };
        assert_eq!(
            cs.mallocs,
            flavours * (class_nobjs(cs.class) as u64 + 3),
            "class {}",
            cs.class
        );
    }
    assert_eq!(st.heap_alloc, objs.values().map(|&n| n as u64).sum::<u64>());
}

#[test]
fn size_to_class_is_used_for_odd_sizes() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    for size in [17usize, 100, 1000, 1025, 5000, 32767, MAX_SMALL_SIZE] {
        let p = c.alloc(AllocRequest::scan(size)).unwrap();
        let o = h.find_object(p.as_ptr() as usize).unwrap();
        assert_eq!(o.span.elemsize(), class_size(size_to_class(size)));
    }
}

#[test]
fn tiny_allocator_packs_and_aligns() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    let mut ranges = Vec::new();
    for i in 0..10_000usize {
        let size = 1 + i % 15;
        let p = c
            .alloc(AllocRequest::noscan(size).with_align(1))
            .unwrap()
            .as_ptr() as usize;
        let align = if size % 8 == 0 {
            8
        } else if size % 4 == 0 {
            4
        } else if size % 2 == 0 {
            2
        } else {
            1
        };
        assert_eq!(p % align, 0, "tiny object of size {size} misaligned");
        let o = h.find_object(p).unwrap();
        assert_eq!(o.span.spanclass(), TINY_SPAN_CLASS);
        assert!(p + size <= o.base + 16, "tiny object crosses its block");
        assert!(zeroed(p as *const u8, size));
        fill(p as *mut u8, size, 7);
        ranges.push((p, size));
    }
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "tiny objects overlap");
    }
    c.release_all();
    let st = h.stats();
    let blocks = st.by_size.iter().find(|s| s.size == 16).unwrap().mallocs as usize;
    assert_eq!(st.tiny_allocs as usize + blocks, 10_000);
    let bytes: usize = ranges.iter().map(|r| r.1).sum();
    // Packing wastes at most half a block on average (Go's bound: 2x).
    assert!(blocks < 10_000, "tiny objects were not packed");
    assert!(
        blocks * 16 <= 2 * bytes,
        "{blocks} blocks for {bytes} bytes"
    );
}

#[test]
fn alignment_requests_are_honoured() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    for align in [16usize, 32, 64, 128, 256, 512, 1024, 4096, 8192] {
        for size in [1usize, 24, 100, 1000, 3000, 20000, 40000] {
            for _ in 0..3 {
                let p = c
                    .alloc(AllocRequest::scan(size).with_align(align))
                    .unwrap()
                    .as_ptr() as usize;
                assert_eq!(p % align, 0, "size {size} align {align}");
                let o = h.find_object(p).unwrap();
                assert!(o.span.elemsize() >= size);
            }
        }
    }
}

#[test]
fn bad_requests_are_errors() {
    let h = Arc::new(
        MHeap::new(HeapConfig {
            max_object_size: 1 << 20,
            heap_limit: Some(64 << 20),
            ..HeapConfig::default()
        })
        .unwrap(),
    );
    let mut c = MCache::new(h.clone());
    assert_eq!(c.alloc(AllocRequest::scan(0)), Err(AllocError::ZeroSize));
    assert_eq!(
        c.alloc(AllocRequest::scan(2 << 20)),
        Err(AllocError::TooLarge {
            requested: 2 << 20,
            max: 1 << 20
        })
    );
    assert_eq!(
        c.alloc(AllocRequest::scan(8).with_align(3)),
        Err(AllocError::BadAlignment { align: 3 })
    );
    assert_eq!(
        c.alloc(AllocRequest::scan(8).with_align(16384)),
        Err(AllocError::BadAlignment { align: 16384 })
    );
    // Fill up to the limit with 1 MiB objects, then one more fails cleanly.
    let mut n = 0;
    let err = loop {
        match c.alloc(AllocRequest::noscan(1 << 20)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n <= 64, "limit not enforced");
    };
    assert!(
        matches!(err, AllocError::HeapLimit { limit, .. } if limit == 64 << 20),
        "{err}"
    );
    assert!(n >= 60, "only {n} MiB fit under a 64 MiB limit");
    // Small allocations past the limit fail the same way, not by panic.
    let mut small_err = None;
    for _ in 0..1_000_000 {
        if let Err(e) = c.alloc(AllocRequest::scan(4096)) {
            small_err = Some(e);
            break;
        }
    }
    assert!(matches!(small_err, Some(AllocError::HeapLimit { .. })));
    // Every error prints a message.
    assert!(err.to_string().contains("heap limit"));
    h.verify().unwrap();
}

#[test]
fn bad_configs_are_rejected() {
    for arena_size in [0, 1 << 20, (64 << 20) + 1, 2 << 30] {
        let cfg = HeapConfig {
            arena_size,
            ..HeapConfig::default()
        };
        assert!(MHeap::new(cfg).is_err(), "arena_size {arena_size} accepted");
    }
    let cfg = HeapConfig {
        heap_limit: Some(1 << 20),
        ..HeapConfig::default()
    };
    assert!(MHeap::new(cfg).is_err());
}

#[test]
fn sweep_frees_unmarked_keeps_marked_and_reuses_memory() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    let size = 48;
    let mut objs = Vec::new();
    for i in 0..5000u64 {
        let p = c.alloc(AllocRequest::scan(size)).unwrap().as_ptr();
        fill(p, size, i);
        objs.push((p as usize, i));
    }
    let live: Vec<_> = objs.iter().filter(|(_, i)| i % 3 == 0).copied().collect();
    collect(&h, &mut [&mut c], live.iter().map(|o| o.0));
    h.finish_sweep().unwrap();
    h.verify().unwrap();
    let st = h.stats();
    let class = st.by_size.iter().find(|s| s.size == size).unwrap();
    assert_eq!(class.frees, 5000 - live.len() as u64);
    for &(p, i) in &live {
        assert!(check(p as *const u8, size, i), "survivor corrupted");
    }
    // New objects reuse freed slots (no heap growth), are zeroed, and never
    // overlap a survivor.
    let sys = h.stats().heap_sys;
    let live_set: std::collections::HashSet<usize> = live.iter().map(|o| o.0).collect();
    for _ in 0..(5000 - live.len()) {
        let p = c.alloc(AllocRequest::scan(size)).unwrap().as_ptr();
        assert!(!live_set.contains(&(p as usize)), "reused a live slot");
        assert!(zeroed(p, size), "reused slot not zeroed");
    }
    assert_eq!(h.stats().heap_sys, sys, "heap grew instead of reusing");
    c.verify().unwrap();
}

#[test]
fn empty_spans_and_large_objects_return_to_the_page_heap() {
    let h = small_arena_heap();
    let mut c = MCache::new(h.clone());
    for _ in 0..200 {
        c.alloc(AllocRequest::noscan(100 << 10)).unwrap();
        c.alloc(AllocRequest::scan(512)).unwrap();
    }
    let before = h.stats();
    assert!(before.heap_inuse >= 200 * (100 << 10));
    collect(&h, &mut [&mut c], []);
    h.finish_sweep().unwrap();
    let after = h.stats();
    assert_eq!(after.heap_inuse, 0, "all spans freed");
    assert_eq!(after.large_frees, 200);
    assert_eq!(after.heap_objects, 0);
    h.verify().unwrap();
}

#[test]
fn large_objects_bigger_than_an_arena() {
    let h = small_arena_heap(); // 4 MiB arenas
    let mut c = MCache::new(h.clone());
    let a = c.alloc(AllocRequest::noscan(3 << 20)).unwrap().as_ptr();
    let b = c.alloc(AllocRequest::scan(10 << 20)).unwrap().as_ptr();
    let d = c.alloc(AllocRequest::noscan(9 << 20)).unwrap().as_ptr();
    for (p, n) in [(a, 3usize << 20), (b, 10 << 20), (d, 9 << 20)] {
        assert!(zeroed(p, n));
        fill(p, n, n as u64);
        for off in [0, n / 2, n - 1] {
            let o = h.find_object(p as usize + off).unwrap();
            assert_eq!(o.base, p as usize);
            assert_eq!(o.span.nelems(), 1);
        }
    }
    for (p, n) in [(a, 3usize << 20), (b, 10 << 20), (d, 9 << 20)] {
        assert!(check(p, n, n as u64));
    }
    h.verify().unwrap();
    assert!(h.stats().arenas >= 6);
}

#[test]
fn free_hook_sees_exactly_the_freed_scan_objects() {
    use std::sync::Mutex;
    let freed = std::sync::Arc::new(Mutex::new(Vec::new()));
    let f2 = freed.clone();
    let h = Arc::new(
        MHeap::with_free_hook(
            HeapConfig::default(),
            Some(Box::new(move |addr| f2.lock().unwrap().push(addr))),
        )
        .unwrap(),
    );
    let mut c = MCache::new(h.clone());
    let mut scan = Vec::new();
    for i in 0..1000 {
        scan.push(c.alloc(AllocRequest::scan(64)).unwrap().as_ptr() as usize);
        c.alloc(AllocRequest::noscan(64)).unwrap();
        if i % 100 == 0 {
            scan.push(c.alloc(AllocRequest::scan(50_000)).unwrap().as_ptr() as usize);
        }
    }
    let live: Vec<usize> = scan.iter().copied().step_by(2).collect();
    collect(&h, &mut [&mut c], live.iter().copied());
    h.finish_sweep().unwrap();
    let mut got = freed.lock().unwrap().clone();
    got.sort_unstable();
    let mut want: Vec<usize> = scan.iter().copied().skip(1).step_by(2).collect();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "hook must see each freed scan object once, and only those"
    );
}

#[test]
fn spans_without_free_hook_objects_are_swept_without_the_hook() {
    use std::sync::Mutex;
    let freed = std::sync::Arc::new(Mutex::new(Vec::new()));
    let f2 = freed.clone();
    let h = Arc::new(
        MHeap::with_free_hook(
            HeapConfig::default(),
            Some(Box::new(move |addr| f2.lock().unwrap().push(addr))),
        )
        .unwrap(),
    );
    let mut c = MCache::new(h.clone());
    // Class 48 B: no object asks for the hook. Class 96 B: one does, so
    // every dead object of its span reaches the hook. Large: per object.
    let quiet: Vec<usize> = (0..500)
        .map(|_| {
            c.alloc(AllocRequest::scan(48).with_free_hook(false))
                .unwrap()
                .as_ptr() as usize
        })
        .collect();
    let loud_one = c.alloc(AllocRequest::scan(96)).unwrap().as_ptr() as usize;
    let loud_rest: Vec<usize> = (0..20)
        .map(|_| {
            c.alloc(AllocRequest::scan(96).with_free_hook(false))
                .unwrap()
                .as_ptr() as usize
        })
        .collect();
    let big_quiet = c
        .alloc(AllocRequest::scan(50_000).with_free_hook(false))
        .unwrap()
        .as_ptr() as usize;
    let big_loud = c.alloc(AllocRequest::scan(50_000)).unwrap().as_ptr() as usize;
    collect(&h, &mut [&mut c], std::iter::empty());
    h.finish_sweep().unwrap();
    let got: std::collections::HashSet<usize> = freed.lock().unwrap().iter().copied().collect();
    assert!(quiet.iter().all(|a| !got.contains(a)));
    assert!(!got.contains(&big_quiet));
    assert!(got.contains(&loud_one) && got.contains(&big_loud));
    assert!(loud_rest.iter().all(|a| got.contains(a)));
    assert_eq!(got.len(), 1 + loud_rest.len() + 1);
}

/// A mark bit on a slot that was never allocated (a collector bug) stops
/// the process at sweep with Go's diagnosis. It aborts rather than panics
/// (a panic would unwind into the allocating caller with the span half
/// swept), so the check runs in a child process.
#[test]
fn zombie_mark_is_caught_at_sweep() {
    const CHILD: &str = "SPANHEAP_HEAP_ZOMBIE_CHILD";
    if std::env::var(CHILD).is_ok() {
        let h = heap();
        let mut c = MCache::new(h.clone());
        let a = c.alloc(AllocRequest::scan(32)).unwrap().as_ptr() as usize;
        c.release_all();
        // Mark the slot after `a`, which was never allocated.
        h.finish_sweep().unwrap();
        h.mark_object(a + 32).unwrap();
        // SAFETY: single-threaded.
        unsafe { h.begin_sweep() }.unwrap();
        // Catching the unwind would be the mistake the abort prevents:
        // the process must not come back from this sweep.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.finish_sweep()));
        eprintln!("the sweep returned: {:?}", r.is_ok());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "zombie_mark_is_caught_at_sweep", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the zombie went unnoticed: {err}");
    assert!(
        err.contains("spanheap: fatal: marked free object in span"),
        "stderr: {err}"
    );
    assert!(!err.contains("the sweep returned"), "stderr: {err}");
}

#[test]
fn allocate_black_marks_new_objects() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    let before = c.alloc(AllocRequest::scan(32)).unwrap().as_ptr() as usize;
    // SAFETY: single-threaded test.
    unsafe { h.set_allocate_black() };
    let small = c.alloc(AllocRequest::scan(32)).unwrap().as_ptr() as usize;
    let tiny = c.alloc(AllocRequest::noscan(4)).unwrap().as_ptr() as usize;
    let large = c.alloc(AllocRequest::scan(100_000)).unwrap().as_ptr() as usize;
    for a in [small, tiny, large] {
        let o = h.find_object(a).unwrap();
        assert!(o.span.is_marked(o.index), "{a:#x} not allocated black");
        assert!(h.span_page_marked(o.span));
    }
    let o = h.find_object(before).unwrap();
    assert!(!o.span.is_marked(o.index));
    // Nothing else marked (begin_sweep turns allocate-black off): only the black objects survive a collection.
    collect(&h, &mut [&mut c], []);
    h.finish_sweep().unwrap();
    assert!(
        h.find_object(large).is_some(),
        "black large object survived"
    );
    assert_eq!(h.stats().heap_objects, 3);
}

#[test]
fn finish_sweep_requires_flushed_caches() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    c.alloc(AllocRequest::scan(32)).unwrap();
    h.finish_sweep().unwrap();
    // SAFETY: single-threaded test.
    unsafe { h.begin_sweep() }.unwrap();
    assert_eq!(
        h.finish_sweep(),
        Err(SweepError::UnflushedCaches { spans: 1 })
    );
    // The cache's next allocation notices the new generation and flushes.
    c.alloc(AllocRequest::scan(32)).unwrap();
    h.finish_sweep().unwrap();
    c.verify().unwrap();
    h.verify().unwrap();
}

#[test]
fn needzero_skips_fresh_pages_but_zeroes_reused_ones() {
    let h = heap();
    let mut c = MCache::new(h.clone());
    // Dirty a whole span, free it, and allocate the same class again.
    let class = size_to_class(1024);
    let n = class_nobjs(class);
    let mut v = Vec::new();
    for _ in 0..n {
        let p = c.alloc(AllocRequest::noscan(1024)).unwrap().as_ptr();
        // SAFETY: fresh 1024-byte object.
        unsafe { std::ptr::write_bytes(p, 0xAB, 1024) };
        v.push(p as usize);
    }
    collect(&h, &mut [&mut c], []);
    h.finish_sweep().unwrap();
    for _ in 0..n {
        let p = c.alloc(AllocRequest::noscan(1024)).unwrap().as_ptr();
        assert!(zeroed(p, 1024));
    }
    // alloc_uninit may return old bytes but is still a valid, disjoint slot.
    let p = c.alloc_uninit(AllocRequest::noscan(1024)).unwrap();
    assert!(h.find_object(p.as_ptr() as usize).is_some());
    let _ = PAGE_SIZE;
}

#[test]
fn growth_across_a_non_contiguous_arena_boundary() {
    // 16 MiB arenas (4 chunks). Commit one chunk of the first arena, then
    // occupy the address right after the arena so the next reservation
    // cannot be contiguous, then ask for more than the old arena's tail
    // plus one arena's worth of pages.
    const ARENA: usize = 16 << 20;
    let h = Arc::new(
        MHeap::new(HeapConfig {
            arena_size: ARENA,
            ..HeapConfig::default()
        })
        .unwrap(),
    );
    let mut c = MCache::new(h.clone());
    let a = c.alloc(AllocRequest::noscan(3 << 20)).unwrap().as_ptr() as usize;
    let arena_end = (a & !(ARENA - 1)) + ARENA;
    // SAFETY: a fresh PROT_NONE mapping requested at a hint; it cannot
    // replace anything (no MAP_FIXED). We only keep it to block the hint.
    let blocker = unsafe {
        libc::mmap(
            arena_end as *mut _,
            64 << 20,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(blocker, libc::MAP_FAILED);
    // 2500 pages: 5 chunks once rounded, more than the old tail (3 chunks)
    // and more than one new arena (4 chunks) — both must be accounted for.
    let big = 2500 << 13;
    let b = c.alloc(AllocRequest::noscan(big)).unwrap().as_ptr();
    assert!(zeroed(b, big));
    fill(b, big, 3);
    // The old arena's tail is still usable for smaller spans.
    let d = c.alloc(AllocRequest::noscan(512 << 10)).unwrap().as_ptr() as usize;
    assert!(h.find_object(d).is_some());
    assert!(check(b, big, 3));
    h.verify().unwrap();
    // SAFETY: our own mapping from above.
    unsafe { libc::munmap(blocker, 64 << 20) };
}

#[test]
fn max_object_size_applies_to_small_requests_too() {
    let h = Arc::new(
        MHeap::new(HeapConfig {
            max_object_size: 100,
            ..HeapConfig::default()
        })
        .unwrap(),
    );
    let mut c = MCache::new(h);
    assert!(c.alloc(AllocRequest::scan(100)).is_ok());
    assert_eq!(
        c.alloc(AllocRequest::scan(101)),
        Err(AllocError::TooLarge {
            requested: 101,
            max: 100
        })
    );
}

#[test]
fn default_alignment_follows_the_size() {
    assert_eq!(AllocRequest::noscan(5).align, 1);
    assert_eq!(AllocRequest::noscan(6).align, 2);
    assert_eq!(AllocRequest::noscan(12).align, 4);
    assert_eq!(AllocRequest::scan(24).align, 8);
    assert_eq!(AllocRequest::scan(4096).align, 8);
    // So odd-sized small noscan requests share tiny blocks.
    let h = heap();
    let mut c = MCache::new(h.clone());
    let a = c.alloc(AllocRequest::noscan(5)).unwrap().as_ptr() as usize;
    let b = c.alloc(AllocRequest::noscan(7)).unwrap().as_ptr() as usize;
    assert_eq!(
        h.find_object(a).unwrap().base,
        h.find_object(b).unwrap().base
    );
    assert_eq!(b, a + 5);
}

/// With the `valgrind` feature the heap describes its objects to memcheck
/// (src/sanitizer.rs), so a read of a slot the sweep freed — what a lost
/// object looks like to the program — is an "Invalid read" with the stack
/// of the access, where before memcheck saw one addressable arena. The
/// test runs its child under valgrind (the feature's purpose; valgrind
/// must be installed); the child frees one of two neighbours, reads the
/// live one (no error) and then the freed one.
#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
#[test]
fn valgrind_reports_a_read_of_a_freed_slot() {
    const CHILD: &str = "SPANHEAP_HEAP_VALGRIND_CHILD";
    if std::env::var(CHILD).is_ok() {
        let h = heap();
        let mut c = MCache::new(h.clone());
        let live = c.alloc(AllocRequest::noscan(64)).unwrap().as_ptr() as usize;
        let dead = c.alloc(AllocRequest::noscan(64)).unwrap().as_ptr() as usize;
        collect(&h, &mut [&mut c], [live]);
        h.finish_sweep().unwrap();
        // SAFETY: (test) `live` is allocated and marked; `dead` lies in the
        // same span, which `live` keeps in use, so the memory stays mapped;
        // nothing writes either.
        let (a, b) = unsafe {
            (
                std::ptr::read_volatile(live as *const u8),
                std::ptr::read_volatile(dead as *const u8),
            )
        };
        eprintln!("read {a} and {b}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("valgrind")
        .args(["-q", "--error-exitcode=99"])
        .arg(&exe)
        .args(["--exact", "valgrind_reports_a_read_of_a_freed_slot"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the valgrind feature needs valgrind installed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "stderr: {err}");
    assert!(err.contains("Invalid read of size 1"), "stderr: {err}");
    assert_eq!(err.matches("Invalid read").count(), 1, "stderr: {err}");
}

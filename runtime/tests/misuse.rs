//! Misuse and limits: what a user gets for each bad input or misuse of
//! the API — an `Err` with a clear message, a documented panic, or a
//! compile error (the compile-time rows are in `tests/ui/`, run by
//! `compile_fail.rs`). Never an abort, never undefined behaviour. One test
//! per row of the bad-input table in `docs/reliability.md`; each checks the
//! exact error variant and that its message names the numbers involved.
//!
//! Panicking `Trace` and `Drop` impls are in `panics.rs`.

use spanheap::{AllocError, BuildError, Heap, Root, Trace, Tracer, heap::ConfigError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bumps its counter when dropped.
struct Tally(Arc<AtomicUsize>);
impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
struct Counted {
    val: u64,
    #[trace(skip)]
    _t: Tally,
}

fn heap() -> Heap {
    Heap::builder().background_sweep(false).build().unwrap()
}

fn settle(h: &Heap) {
    h.collect();
    h.collect();
}

/// The panic message of a caught panic.
fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    match e.downcast::<String>() {
        Ok(s) => *s,
        Err(e) => e
            .downcast::<&'static str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------
// Allocation sizes

#[test]
fn zero_sized_values_are_allocated_and_distinct() {
    #[derive(Trace)]
    struct Empty;
    let h = heap();
    let mut m = h.mutator();
    let roots: Vec<Root<Empty>> = m.scope(|cx| {
        let a = cx.alloc(()).unwrap();
        let b = cx.alloc(()).unwrap();
        assert_eq!(*a, ());
        // A zero-sized value still gets a one-byte block: two allocations
        // are two objects, each with its own identity.
        assert!(!spanheap::Gc::ptr_eq(a, b));
        (0..1000)
            .map(|_| cx.root(cx.alloc(Empty).unwrap()))
            .collect()
    });
    settle(&h);
    m.scope(|cx| {
        for r in &roots {
            let _: &Empty = &r.get(cx);
        }
    });
}

#[test]
fn an_object_above_max_object_size_is_too_large() {
    let h = Heap::builder().max_object_size(64 << 10).build().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let e = cx.alloc([0u8; 128 << 10]).unwrap_err();
        assert_eq!(
            e,
            AllocError::TooLarge {
                requested: 128 << 10,
                max: 64 << 10
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("131072") && msg.contains("65536"), "{msg}");
        // The heap is unharmed: a smaller object still fits.
        assert_eq!(cx.alloc([1u8; 1024]).unwrap()[1023], 1);
    });
}

#[test]
fn an_alignment_above_a_page_is_refused() {
    #[repr(align(16384))]
    struct Over(#[allow(dead_code)] u8);
    // SAFETY: no Gc inside.
    unsafe impl Trace for Over {
        const NO_GC: bool = true;
        fn trace(&self, _t: &mut Tracer<'_>) {}
    }
    // SAFETY: no brand.
    unsafe impl spanheap::Rebrand for Over {
        type At<'gc> = Over;
    }
    let h = heap();
    h.mutator().scope(|cx| {
        let e = cx.alloc(Over(1)).map(|_| ()).unwrap_err();
        assert_eq!(e, AllocError::BadAlignment { align: 16384 });
        assert!(e.to_string().contains("16384"), "{e}");
    });
}

// ---------------------------------------------------------------------
// Memory limits

const MIB: usize = 1 << 20;

/// A 64 MiB hard limit (4 MiB arenas) with the default pacer.
fn heap_at_64_mib() -> Heap {
    Heap::builder()
        .arena_size(4 * MIB)
        .heap_limit(64 * MIB)
        .build()
        .unwrap()
}

#[test]
fn a_live_set_over_the_hard_heap_limit_is_an_error_even_after_a_collection() {
    let limit = 64 * MIB;
    let h = heap_at_64_mib();
    let mut m = h.mutator();
    // Keep 256 KiB objects alive until the limit refuses one.
    let mut live: Vec<Root<[u8; 256 << 10]>> = Vec::new();
    let err = loop {
        let r = m.scope(|cx| cx.alloc([3u8; 256 << 10]).map(|g| cx.root(g)));
        match r {
            Ok(root) => live.push(root),
            Err(e) => break e,
        }
        assert!(live.len() < 1000, "the limit never refused an allocation");
    };
    let AllocError::HeapLimit {
        requested,
        in_use,
        limit: l,
    } = err.clone()
    else {
        panic!("expected HeapLimit, got {err:?}");
    };
    assert_eq!(l, limit);
    assert!(in_use + requested > limit, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("heap limit exceeded") && msg.contains(&limit.to_string()),
        "{msg}"
    );
    // A forced collection frees nothing (all of it is live): still an Err,
    // not an abort.
    h.collect();
    let again = m.scope(|cx| cx.alloc([3u8; 256 << 10]).map(|_| ()));
    assert!(
        matches!(again, Err(AllocError::HeapLimit { .. })),
        "{again:?}"
    );
    // Everything kept is intact.
    m.scope(|cx| {
        for r in &live {
            assert!(r.get(cx).iter().all(|&b| b == 3));
        }
    });
    // Dropping the live set makes room again.
    live.clear();
    settle(&h);
    m.scope(|cx| assert_eq!(cx.alloc([4u8; 256 << 10]).unwrap()[0], 4));
}

#[test]
fn garbage_many_times_the_hard_heap_limit_is_collected_not_refused() {
    let limit = 64 * MIB;
    let h = heap_at_64_mib();
    let mut m = h.mutator();
    // 640 MiB of garbage through a 64 MiB limit, in 256 KiB objects, one
    // scope (one safepoint) per 4 MiB. The pacer's cycles (goal: 4 MiB
    // and up) keep the heap far below the limit; should a starved
    // collector thread let the mutator reach it anyway, the error is an
    // `Err` that one `collect()` clears (never an abort, never a second
    // refusal).
    let mut refused = 0;
    for _ in 0..160 {
        let r = m.scope(|cx| {
            for _ in 0..16 {
                cx.alloc([5u8; 256 << 10])?;
            }
            Ok::<_, AllocError>(())
        });
        if let Err(e) = r {
            assert!(matches!(e, AllocError::HeapLimit { .. }), "{e:?}");
            refused += 1;
            h.collect();
            m.scope(|cx| cx.alloc([5u8; 256 << 10]).map(|_| ()))
                .unwrap_or_else(|e| panic!("still refused after a collection: {e}"));
        }
    }
    let s = h.stats();
    assert!(s.num_gc > 0);
    assert!(refused < 160, "every round was refused");
    assert!(
        s.mem.heap_inuse <= limit as u64,
        "{} in use",
        s.mem.heap_inuse
    );
}

#[test]
fn a_live_set_over_the_soft_memory_limit_grows_the_heap_and_keeps_collecting() {
    // The soft limit (GOMEMLIMIT) is a pacing goal, never an error: a
    // live set above it is kept, and the collector runs more often.
    let h = Heap::builder()
        .memory_limit(8 * MIB as u64)
        .build()
        .unwrap();
    let mut m = h.mutator();
    let live: Vec<Root<[u8; 64 << 10]>> = (0..512)
        .map(|i| m.scope(|cx| cx.root(cx.alloc([i as u8; 64 << 10]).unwrap())))
        .collect(); // 32 MiB live, four times the limit
    for _ in 0..64 {
        m.scope(|cx| {
            for _ in 0..16 {
                cx.alloc([0u8; 64 << 10]).unwrap();
            }
        });
    }
    settle(&h);
    let s = h.stats();
    assert!(s.num_gc >= 2, "{} cycles", s.num_gc);
    assert!(s.heap_marked >= 32 * MIB as u64, "{}", s.heap_marked);
    m.scope(|cx| {
        for (i, r) in live.iter().enumerate() {
            assert_eq!(r.get(cx)[100], i as u8);
        }
    });
}

// ---------------------------------------------------------------------
// Configuration

fn config_error(b: spanheap::HeapBuilder) -> (ConfigError, String) {
    match b.build() {
        Err(BuildError::Config(e)) => {
            let msg = BuildError::Config(e.clone()).to_string();
            (e, msg)
        }
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("an invalid configuration was accepted"),
    }
}

#[test]
fn an_arena_size_that_is_not_a_power_of_two_in_range_is_refused() {
    for bad in [0, 5 * MIB, 2 * MIB, 2 << 30] {
        let (e, msg) = config_error(Heap::builder().arena_size(bad));
        assert_eq!(e, ConfigError::BadArenaSize(bad));
        assert!(
            msg.contains(&bad.to_string()) && msg.contains("power of two"),
            "{msg}"
        );
    }
}

#[test]
fn a_zero_max_object_size_is_refused() {
    let (e, msg) = config_error(Heap::builder().max_object_size(0));
    assert_eq!(e, ConfigError::BadMaxObjectSize(0));
    assert!(msg.contains("max_object_size 0"), "{msg}");
}

#[test]
fn a_heap_limit_below_one_arena_is_refused() {
    let (e, msg) = config_error(Heap::builder().heap_limit(MIB));
    assert_eq!(e, ConfigError::BadHeapLimit(MIB));
    assert!(msg.contains("heap_limit 1048576"), "{msg}");
}

#[test]
fn mark_workers_out_of_range_are_refused() {
    for bad in [0, 257, usize::MAX] {
        let (e, msg) = config_error(Heap::builder().mark_workers(bad));
        assert_eq!(e, ConfigError::BadMarkWorkers(bad));
        assert!(
            msg.contains(&format!("mark_workers {bad}")) && msg.contains("1 and 256"),
            "{msg}"
        );
    }
    // The ends of the range are fine.
    for ok in [1, 256] {
        Heap::builder().mark_workers(ok).build().unwrap();
    }
}

#[test]
fn extreme_pacer_settings_are_accepted_and_work() {
    // gc_percent is any u32 (GOGC=0 collects whenever the heap grows by
    // its floor, 1 MiB or a sixteenth); a memory limit of 0 bytes is a
    // soft goal that cannot be met (the collector runs often, the heap
    // keeps working); stress(Some(0)) is off.
    for b in [
        Heap::builder().gc_percent(0),
        Heap::builder().gc_percent(u32::MAX),
        Heap::builder().memory_limit(0),
        Heap::builder().memory_limit(u64::MAX),
        Heap::builder().gc_off(),
        Heap::builder().stress(Some(0)),
    ] {
        let h = b.build().unwrap();
        let mut m = h.mutator();
        let keep = m.scope(|cx| cx.root(cx.alloc(7u64).unwrap()));
        for _ in 0..32 {
            m.scope(|cx| {
                for _ in 0..16 {
                    cx.alloc([0u8; 16 << 10]).unwrap();
                }
            });
        }
        h.collect();
        m.scope(|cx| assert_eq!(*keep.get(cx), 7));
    }
}

// ---------------------------------------------------------------------
// Handles and threads

#[test]
fn a_root_used_with_another_heaps_scope_panics_and_both_heaps_still_work() {
    let h1 = heap();
    let h2 = heap();
    let r = h1.mutator().scope(|cx| cx.root(cx.alloc(1u64).unwrap()));
    let mut m2 = h2.mutator();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m2.scope(|cx| {
            let _ = r.get(cx);
        })
    }))
    .unwrap_err();
    let msg = panic_message(e);
    assert!(
        msg.contains("a Root used with a scope of a different heap"),
        "{msg}"
    );
    // Same for a weak reference.
    let w = h1.mutator().scope(|cx| cx.downgrade(r.get(cx)));
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m2.scope(|cx| {
            let _ = w.upgrade(cx);
        })
    }))
    .unwrap_err();
    assert!(panic_message(e).contains("different heap"));
    // The panic left no scope open: both heaps collect and allocate.
    h1.collect();
    h2.collect();
    m2.scope(|cx| assert_eq!(*cx.alloc(2u64).unwrap(), 2));
    h1.mutator().scope(|cx| assert_eq!(*r.get(cx), 1));
}

#[test]
fn a_mutator_moved_to_another_thread_keeps_working() {
    // `Mutator` is `Send` (one thread at a time), not `Sync`, and `Scope`
    // is neither: sharing either between threads does not compile
    // (tests/ui/scope_to_other_thread.rs, mutator_shared_between_threads.rs).
    let h = heap();
    let mut m = h.mutator();
    let r = m.scope(|cx| cx.root(cx.alloc(10u64).unwrap()));
    let (mut m, r) = std::thread::spawn(move || {
        m.scope(|cx| assert_eq!(*r.get(cx), 10));
        let r2 = m.scope(|cx| cx.root(cx.alloc(*r.get(cx) + 1).unwrap()));
        (m, r2)
    })
    .join()
    .unwrap();
    h.collect();
    m.scope(|cx| assert_eq!(*r.get(cx), 11));
}

#[test]
fn the_heap_lives_until_the_last_mutator_and_root_are_gone() {
    let drops = Arc::new(AtomicUsize::new(0));
    let h = heap();
    let mut m = h.mutator();
    let r: Root<Counted> = m.scope(|cx| {
        cx.root(
            cx.alloc(Counted {
                val: 1,
                _t: Tally(drops.clone()),
            })
            .unwrap(),
        )
    });
    drop(h); // the last `Heap` handle
    // The mutator still allocates and collects; the root still reads.
    for i in 0..1000 {
        m.scope(|cx| {
            cx.alloc(Counted {
                val: i,
                _t: Tally(drops.clone()),
            })
            .unwrap();
        });
    }
    m.collect();
    m.collect();
    m.scope(|cx| assert_eq!(r.get(cx).val, 1));
    let before = drops.load(Ordering::SeqCst);
    assert!(before >= 1, "the garbage was collected");
    drop(m); // the root alone keeps the heap
    assert_eq!(drops.load(Ordering::SeqCst), before);
    drop(r); // the last handle: teardown drops every object left
    assert_eq!(drops.load(Ordering::SeqCst), 1001);
}

#[test]
fn a_finalizer_may_allocate_and_root() {
    let h = heap();
    let mut m = h.mutator();
    let saved: Arc<std::sync::Mutex<Option<Root<u64>>>> = Arc::default();
    m.scope(|cx| {
        let g = cx
            .alloc(Counted {
                val: 41,
                _t: Tally(Arc::default()),
            })
            .unwrap();
        let saved = saved.clone();
        cx.set_finalizer(g, move |cx, g| {
            // Allocating (and rooting) from a finalizer is allowed: it runs
            // in a scope of its own, on a mutator thread.
            let n = cx.alloc(g.val + 1).unwrap();
            *saved.lock().unwrap() = Some(cx.root(n));
        });
    });
    h.collect();
    assert_eq!(h.run_finalizers(), 1);
    let r = saved.lock().unwrap().take().unwrap();
    h.collect();
    m.scope(|cx| assert_eq!(*r.get(cx), 42));
}

#[test]
fn entering_a_scope_from_a_collected_objects_drop_panics_and_is_counted() {
    // A `Drop` cannot allocate in its heap: it has no scope, and entering
    // one (to allocate) panics — it could wait for a cycle that waits for
    // it. The sweep catches the panic and counts it.
    struct Allocates(Heap, Arc<AtomicUsize>);
    impl Drop for Allocates {
        fn drop(&mut self) {
            let mut m = self.0.mutator();
            m.scope(|cx| {
                cx.alloc(1u64).unwrap();
            });
            self.1.fetch_add(1, Ordering::SeqCst); // never reached
        }
    }
    #[derive(Trace)]
    struct Holder {
        #[trace(skip)]
        _a: Option<Allocates>,
    }
    let reached = Arc::new(AtomicUsize::new(0));
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        cx.alloc(Holder {
            _a: Some(Allocates(h.clone(), reached.clone())),
        })
        .unwrap();
    });
    settle(&h);
    assert_eq!(h.stats().drop_panics, 1);
    assert_eq!(reached.load(Ordering::SeqCst), 0);
    // The heap still works.
    m.scope(|cx| assert_eq!(*cx.alloc(3u64).unwrap(), 3));
}

/// A 64 MiB hard limit with only the user collecting (GOGC=off, no
/// background sweeper, stress off whatever SPANHEAP_GCSTRESS says): the
/// limit is reached by whatever the test allocates, deterministically.
fn user_collected_heap_at_64_mib() -> Heap {
    Heap::builder()
        .arena_size(4 * MIB)
        .heap_limit(64 * MIB)
        .gc_off()
        .stress(None)
        .background_sweep(false)
        .build()
        .unwrap()
}

/// An interpreter that never leaves its scope (the Lox VM's pattern) gets
/// the same answers at the hard limit: the forced collection is
/// `Scope::collect`, after which garbage has made room and a live set
/// that does not fit is still an `Err` — never an abort.
#[test]
fn in_a_scope_that_never_closes_a_forced_collection_makes_room_or_the_error_stays() {
    let h = user_collected_heap_at_64_mib();
    let mut m = h.mutator();
    m.scope(|cx| {
        // Garbage up to the limit.
        let mut n = 0;
        let err = loop {
            match cx.alloc([3u8; 256 << 10]) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 1000, "the limit never refused an allocation");
        };
        assert!(matches!(err, AllocError::HeapLimit { .. }), "{err:?}");
        cx.collect();
        let probe = cx
            .alloc([3u8; 256 << 10])
            .unwrap_or_else(|e| panic!("refused after a forced collection: {e}"));
        // (Rooted: from here on nothing is garbage.)
        let _probe = cx.root(probe);
        // Now a live set that does not fit: rooted objects up to the limit.
        let mut live = Vec::new();
        let err = loop {
            match cx.alloc([4u8; 256 << 10]) {
                Ok(g) => live.push(cx.root(g)),
                Err(e) => break e,
            }
            assert!(live.len() < 1000, "the limit never refused an allocation");
        };
        assert!(matches!(err, AllocError::HeapLimit { .. }), "{err:?}");
        cx.collect();
        let err = cx.alloc([4u8; 256 << 10]).map(|_| ()).unwrap_err();
        assert!(matches!(err, AllocError::HeapLimit { .. }), "{err:?}");
        assert!(live.iter().all(|r| r.get(cx)[0] == 4));
    });
}

/// The same for small objects, where the room comes from spans of other
/// size classes: after the collection the garbage is known but (without
/// a background sweeper) not yet swept, and a refill of an empty class
/// must sweep it before refusing, not only its own class's spans.
#[test]
fn at_the_heap_limit_small_allocations_sweep_known_garbage_before_refusing() {
    let h = user_collected_heap_at_64_mib();
    let mut m = h.mutator();
    for round in 0..3u8 {
        // Fill the limit with 1 KiB garbage (class 1024), 1000 per scope.
        let err = loop {
            let r = m.scope(|cx| {
                for _ in 0..1000 {
                    cx.alloc([round; 1024])?;
                }
                Ok::<_, AllocError>(())
            });
            if let Err(e) = r {
                break e;
            }
        };
        assert!(matches!(err, AllocError::HeapLimit { .. }), "{err:?}");
        h.collect();
        // Another class (1152 bytes) has no span to reuse: its refill
        // must find room in the garbage of class 1024.
        m.scope(|cx| {
            for _ in 0..5000 {
                cx.alloc([round; 1100])
                    .unwrap_or_else(|e| panic!("round {round}: refused after a collection: {e}"));
            }
        });
    }
}

#[test]
fn after_a_heap_limit_error_a_collection_makes_room_from_garbage() {
    // With proportional collections off (GOGC=off, no soft limit), only
    // the user collects: the hard limit is reached with the heap full of
    // garbage. One `collect()` must be enough for the next allocation to
    // succeed — the allocator sweeps the dead spans before refusing.
    let h = user_collected_heap_at_64_mib();
    let mut m = h.mutator();
    for round in 0..3 {
        let mut n = 0;
        let err = loop {
            match m.scope(|cx| cx.alloc([6u8; 256 << 10]).map(|_| ())) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 1000, "the limit never refused an allocation");
        };
        assert!(matches!(err, AllocError::HeapLimit { .. }), "{err:?}");
        assert!(
            n >= 200,
            "round {round}: refused after only {n} allocations"
        );
        h.collect();
        m.scope(|cx| cx.alloc([6u8; 256 << 10]).map(|_| ()))
            .unwrap_or_else(|e| panic!("round {round}: still refused after a collection: {e}"));
    }
}

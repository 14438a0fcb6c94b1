//! Finalizers (`Scope::set_finalizer`) with Go's semantics: run once with
//! the object when it becomes unreachable, referents kept alive for it,
//! weak references cleared first, resurrection, ordering, and finalizers
//! registered while collections run concurrently.

use spanheap::{Gc, GcRefCell, Heap, Root, Trace};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "support/counted.rs"]
mod counted;
use counted::{Obj, obj};

#[derive(Trace)]
struct Holder<'gc> {
    kept: GcRefCell<'gc, Vec<Gc<'gc, Obj<'gc>>>>,
}

/// Sweeping only in allocation and at the next cycle: after two
/// `collect()`s everything unreachable at the first one has been dropped.
fn heap() -> Heap {
    Heap::builder().background_sweep(false).build().unwrap()
}

/// A shared log of finalizer runs: the ids seen, and the child ids they
/// read.
type Log = Arc<std::sync::Mutex<Vec<(u64, Option<u64>)>>>;

fn log_run(
    log: &Log,
) -> impl for<'a, 's> FnOnce(&'a spanheap::Scope<'s>, Gc<'a, Obj<'a>>) + Send + 'static {
    let log = log.clone();
    move |_cx, o| {
        let child = o.next.get().map(|c| c.id);
        log.lock().unwrap().push((o.id, child));
    }
}

#[test]
fn runs_once_with_its_referents_alive_then_the_object_is_freed() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let log = Log::default();
    let mut m = h.mutator();
    m.scope(|cx| {
        let child = cx.alloc(obj(2, None, &drops)).unwrap();
        let o = cx.alloc(obj(1, Some(child), &drops)).unwrap();
        assert!(!cx.set_finalizer(o, log_run(&log)));
    });
    h.collect();
    // Queued, not run yet: nothing was dropped, the object is rooted.
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(h.stats().finalizers_ready, 1);
    assert_eq!(h.collector().roots().len(), 1);
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "kept for its finalizer");
    // Entering a scope runs it.
    m.scope(|_| {});
    assert_eq!(*log.lock().unwrap(), [(1, Some(2))]);
    assert_eq!(h.stats().finalizers_run, 1);
    h.collect();
    h.collect();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "object and child freed after"
    );
    // Never again.
    h.collect();
    m.scope(|_| {});
    assert_eq!(log.lock().unwrap().len(), 1);
    assert_eq!(h.collector().roots().len(), 0);
}

#[test]
fn a_reachable_object_is_not_finalized() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let log = Log::default();
    let mut m = h.mutator();
    let keep: Root<Obj<'static>> = m.scope(|cx| {
        let o = cx.alloc(obj(1, None, &drops)).unwrap();
        cx.set_finalizer(o, log_run(&log));
        cx.root(o)
    });
    for _ in 0..3 {
        h.collect();
        assert_eq!(h.run_finalizers(), 0);
    }
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(h.stats().finalizers_registered, 1);
    drop(keep);
    h.collect();
    assert_eq!(h.run_finalizers(), 1);
    assert_eq!(*log.lock().unwrap(), [(1, None)]);
}

#[test]
fn weak_refs_are_cleared_before_the_finalizer_runs() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let weak = m.scope(|cx| {
        let o = cx.alloc(obj(1, None, &drops)).unwrap();
        let s = seen.clone();
        cx.set_finalizer(o, move |_cx, o: Gc<'_, Obj<'_>>| {
            s.store(o.id as usize, Ordering::SeqCst);
        });
        cx.downgrade(o)
    });
    h.collect();
    m.scope(|cx| assert!(weak.upgrade(cx).is_none(), "cleared when queued"));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "ran at the scope above");
}

#[test]
fn a_finalizer_can_resurrect_its_object() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let holder: Root<Holder<'static>> = m.scope(|cx| {
        let hd = cx
            .alloc(Holder {
                kept: GcRefCell::new(Vec::new()),
            })
            .unwrap();
        cx.root(hd)
    });
    let runs = Arc::new(AtomicUsize::new(0));
    m.scope(|cx| {
        let child = cx.alloc(obj(8, None, &drops)).unwrap();
        let o = cx.alloc(obj(7, Some(child), &drops)).unwrap();
        let (r, runs) = (holder.clone(), runs.clone());
        cx.set_finalizer(o, move |cx, o: Gc<'_, Obj<'_>>| {
            runs.fetch_add(1, Ordering::SeqCst);
            r.get(cx).kept.borrow_mut(cx).push(o);
        });
    });
    h.collect();
    assert_eq!(h.run_finalizers(), 1);
    for _ in 0..3 {
        h.collect();
        h.run_finalizers();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a finalizer runs once");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "resurrected with its child"
    );
    m.scope(|cx| {
        let hd = holder.get(cx);
        let kept = hd.kept.borrow();
        assert_eq!(kept[0].id, 7);
        assert_eq!(kept[0].next.get().map(|c| c.id), Some(8));
    });
}

#[test]
fn the_reached_one_is_finalized_a_cycle_later() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let log = Log::default();
    let mut m = h.mutator();
    m.scope(|cx| {
        let b = cx.alloc(obj(2, None, &drops)).unwrap();
        let a = cx.alloc(obj(1, Some(b), &drops)).unwrap();
        cx.set_finalizer(a, log_run(&log));
        cx.set_finalizer(b, log_run(&log));
    });
    h.collect();
    assert_eq!(h.run_finalizers(), 1);
    assert_eq!(*log.lock().unwrap(), [(1, Some(2))]);
    h.collect();
    assert_eq!(h.run_finalizers(), 1);
    assert_eq!(*log.lock().unwrap(), [(1, Some(2)), (2, None)]);
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn clear_replace_and_panics() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let log = Log::default();
    let mut m = h.mutator();
    m.scope(|cx| {
        let a = cx.alloc(obj(1, None, &drops)).unwrap();
        cx.set_finalizer(a, log_run(&log));
        assert!(cx.clear_finalizer(a));
        assert!(!cx.clear_finalizer(a));
        let b = cx.alloc(obj(2, None, &drops)).unwrap();
        cx.set_finalizer(b, |_cx, _o: Gc<'_, Obj<'_>>| panic!("not this one"));
        assert!(cx.set_finalizer(b, log_run(&log)), "replaced");
        let c = cx.alloc(obj(3, None, &drops)).unwrap();
        cx.set_finalizer(c, |_cx, _o: Gc<'_, Obj<'_>>| panic!("a failing finalizer"));
    });
    h.collect();
    assert_eq!(h.run_finalizers(), 2);
    assert_eq!(*log.lock().unwrap(), [(2, None)]);
    let s = h.stats();
    assert_eq!((s.finalizers_run, s.finalizer_panics), (2, 1));
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 3, "all three freed");
}

/// Two threads, each with its own mutator in one scope, allocate
/// `per_thread` pairs (an `Obj` with id `id` pointing at a child with id
/// `id + 1_000_000`) and call `each` with the parent; a safepoint every
/// 64 pairs. Each thread then runs the finalizers that are ready.
fn on_two_threads(
    h: &Heap,
    drops: &Arc<AtomicUsize>,
    per_thread: u64,
    each: impl for<'gc, 's> Fn(&'gc spanheap::Scope<'s>, Gc<'gc, Obj<'gc>>) + Sync,
) {
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (h, drops, each) = (h.clone(), drops.clone(), &each);
            s.spawn(move || {
                let mut m = h.mutator();
                m.scope(|cx| {
                    for i in 0..per_thread {
                        let id = t * per_thread + i;
                        let child = cx.alloc(obj(id + 1_000_000, None, &drops)).unwrap();
                        let o = cx.alloc(obj(id, Some(child), &drops)).unwrap();
                        each(cx, o);
                        if i % 64 == 0 {
                            cx.safepoint();
                        }
                    }
                });
                m.run_finalizers();
            });
        }
    });
}

/// Finalizers registered by two threads while collections run
/// concurrently (paced by their allocation): each runs exactly once, sees
/// its child alive, and every object is freed in the end.
#[test]
fn concurrent_registration_during_marks() {
    const PER_THREAD: u64 = 20_000;
    let h = Heap::builder().gc_percent(10).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    on_two_threads(&h, &drops, PER_THREAD, |cx, o| {
        let (runs, bad) = (runs.clone(), bad.clone());
        cx.set_finalizer(o, move |_cx, o: Gc<'_, Obj<'_>>| {
            runs.fetch_add(1, Ordering::SeqCst);
            if o.next.get().map(|c| c.id) != Some(o.id + 1_000_000) {
                bad.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Garbage to drive collections.
        let _ = cx.alloc([0u64; 16]);
    });
    // Everything is unreachable now: two cycles queue all of it (objects
    // registered during the last mark were kept for one more cycle).
    for _ in 0..4 {
        h.collect();
        h.run_finalizers();
    }
    let total = 2 * PER_THREAD as usize;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        total,
        "each finalizer ran once"
    );
    assert_eq!(
        bad.load(Ordering::SeqCst),
        0,
        "a finalizer saw a freed child"
    );
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2 * total, "all freed");
    let s = h.stats();
    assert_eq!((s.finalizers_registered, s.finalizers_ready), (0, 0));
}

/// Finalizers registered and cleared again while marks run, under the
/// snapshot verifier: what a registered object points to is in a mark's
/// snapshot (the mark keeps it for the finalizer), so clearing the
/// registration during the mark must keep it too, as a deletion would.
#[test]
fn clearing_during_marks_keeps_the_snapshot() {
    const PER_THREAD: u64 = 5_000;
    let h = Heap::builder()
        .gc_percent(10)
        .verify_snapshot(true)
        .build()
        .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    // Many roots: the mark scans them before the registrations, which
    // widens the window between the snapshot and that scan.
    let ballast: Vec<Root<Obj<'static>>> = h.mutator().scope(|cx| {
        let b = cx.alloc(obj(u64::MAX, None, &drops)).unwrap();
        (0..200_000).map(|_| cx.root(b)).collect()
    });
    on_two_threads(&h, &drops, PER_THREAD, |cx, o| {
        cx.set_finalizer(o, |_cx, _o: Gc<'_, Obj<'_>>| {
            panic!("a cleared finalizer ran")
        });
        // Garbage: a refill in here may acknowledge a mark's start (and a
        // snapshot may be taken) while `o` is held, before the mark scans
        // the registrations.
        for _ in 0..4 {
            let _ = cx.alloc([0u64; 16]);
        }
        assert!(cx.clear_finalizer(o));
    });
    drop(ballast);
    h.collect();
    h.collect();
    assert_eq!(h.run_finalizers(), 0);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        4 * PER_THREAD as usize + 1,
        "all freed"
    );
    let s = h.stats();
    assert_eq!((s.finalizers_registered, s.finalizers_run), (0, 0));
}

//! Model 5: the write barrier against a concurrent scan.
//!
//! One mutator moves a leaf out of a `GcCell` (the only reference left is
//! on its stack) and pushes it into a `GcRefCell<Vec<_>>` — which
//! reallocates the `Vec` — while the collector thread runs a forced cycle
//! and scans the same object. Loom explores every interleaving of the
//! mutator's scope, barrier, buffer flush and handshakes with the
//! collector's phases (within the preemption bound). It also allocates
//! while holding the vector, so a handshake can turn its barrier on in the
//! middle of a borrow. Afterwards the sweep is finished with no mutator
//! left, which frees (and drops) whatever the mark left white.
//!
//! Proves, for these interleavings: the marker never reads the `Vec`
//! while the writer may change it (the `GcRefCell` scan claim; loom's
//! cell tracking reports a race otherwise), the moved leaf is never lost
//! (deletion barrier for the cell, scan-before-first-write or the
//! release shading for the vector, termination only after a clean flush
//! round), and nothing is freed that is reachable.
//! Does not prove: more than one mutator (see `handshake.rs`), more than
//! one cycle overlapping the store, bounds beyond `LOOM_MAX_PREEMPTIONS`.
#![cfg(loom)]

mod support;

use spanheap::{Gc, GcCell, GcRefCell, Heap, Mutator, Root, Trace};
use spanheap_heap::sync::atomic::{AtomicBool, Ordering};
use spanheap_heap::sync::{Arc, thread};
use support::{DEAD, Leaf, assert_caught, dropped, explore, tiny_heap};

#[derive(Trace)]
struct Holder<'gc> {
    cell: GcCell<'gc, Option<Gc<'gc, Leaf>>>,
    list: GcRefCell<'gc, Vec<Gc<'gc, Leaf>>>,
}

/// A tiny heap, a mutator, and a rooted holder with leaf 1 in its cell and
/// leaf 2 in its list.
fn holder_heap() -> (Heap, Mutator, Root<Holder<'static>>) {
    let h = tiny_heap();
    let mut m = h.mutator();
    let root = m.scope(|cx| {
        let x = cx.alloc(Leaf(1)).unwrap();
        let y = cx.alloc(Leaf(2)).unwrap();
        let holder = Holder {
            cell: GcCell::new(Some(x)),
            list: GcRefCell::new(vec![y]),
        };
        cx.root(cx.alloc(holder).unwrap())
    });
    (h, m, root)
}

fn move_during_mark() {
    let (h, mut m, root) = holder_heap();
    let r = root.clone();
    let mutator = thread::spawn(move || {
        m.scope(|cx| {
            {
                let hd = r.get(cx);
                let x = hd.cell.get().expect("x is in the cell");
                hd.cell.set(cx, None);
                let mut list = hd.list.borrow_mut(cx);
                // An allocation inside the borrow: its handshake may turn
                // the barrier on (and let the mark reach T) while the
                // borrow that began with the barrier off is still open.
                let z = cx.alloc(Leaf(3)).unwrap();
                // Capacity 1: the first push reallocates the vector.
                list.push(x);
                list.push(z);
            }
            // A clean point inside the scope: the mark may now finish
            // while this mutator stays in its scope, with what the
            // barrier shaded still in its buffer until a flush round.
            cx.safepoint();
        });
    });
    h.collect();
    mutator.join().unwrap();
    // Sweep what the mark left white: every mutator is gone, so the sweep
    // can finish here; it frees (and drops) every unmarked object.
    h.collector().heap().finish_sweep().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let hd = root.get(cx);
        assert!(hd.cell.get().is_none());
        let ids: Vec<u64> = hd.list.borrow().iter().map(|l| l.0).collect();
        assert!(!ids.contains(&DEAD), "a reachable leaf was freed: {ids:?}");
        assert_eq!(ids, [2, 1, 3], "contents changed");
    });
    assert!(
        dropped().is_empty(),
        "reachable leaves were dropped: {:?}",
        dropped()
    );
}

/// The mutator is inside its scope when the cycle starts and moves the
/// leaf only once its barrier is on, then passes a clean point (S) and
/// stays in its scope: the leaf is then protected by nothing but its
/// barrier buffer until the termination round flushes it.
fn move_in_mark_then_wait() {
    let (h, mut m, root) = holder_heap();
    let r = root.clone();
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    let mutator = thread::spawn(move || {
        m.scope(|cx| {
            e.store(true, Ordering::Release);
            // The cycle waits for this scope's acknowledgement, which a
            // safepoint gives.
            while !cx.__barrier_on() {
                cx.safepoint();
                thread::yield_now();
            }
            {
                let hd = r.get(cx);
                let x = hd.cell.get().expect("x is in the cell");
                hd.cell.set(cx, None);
                hd.list.borrow_mut(cx).push(x);
            }
            cx.safepoint();
        });
    });
    while !entered.load(Ordering::Acquire) {
        thread::yield_now();
    }
    h.collect();
    mutator.join().unwrap();
    h.collector().heap().finish_sweep().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let ids: Vec<u64> = root.get(cx).list.borrow().iter().map(|l| l.0).collect();
        assert_eq!(ids, [2, 1], "a reachable leaf was lost ({DEAD:#x}: freed)");
    });
    assert!(dropped().is_empty(), "dropped: {:?}", dropped());
}

#[test]
fn model_5_barrier_vs_scan() {
    assert!(explore("5 (barrier vs scan)", move_during_mark) > 1);
}

#[test]
fn model_5_catches_a_store_without_barrier() {
    assert_caught(
        "5 (barrier vs scan)",
        "gccell_barrier_off",
        move_during_mark,
    );
}

#[test]
fn model_5_catches_a_marker_that_ignores_the_writer() {
    assert_caught(
        "5 (barrier vs scan)",
        "refcell_marker_ignores_writer",
        move_during_mark,
    );
}

#[test]
fn model_5_buffered_shade_survives_until_flush() {
    assert!(explore("5 (buffered shade)", move_in_mark_then_wait) > 1);
}

#[test]
fn model_5_catches_termination_without_flush_round() {
    assert_caught(
        "5 (buffered shade)",
        "termination_skips_flush_round",
        move_in_mark_then_wait,
    );
}

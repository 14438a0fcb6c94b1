//! Model 7: weak references against their clearing at mark termination.
//!
//! `upgrade_during_mark`: leaf 7 is referenced only by a `Weak` (the scope
//! that allocated it has ended; no root). A mutator enters a scope, waits
//! until its barrier is on, passes two more clean points — the first may
//! be its clean-stack point S, the second may acknowledge the termination
//! flush round, so the mark may end before the next step — and upgrades
//! the `Weak`; if it gets the leaf, it checks its contents and stores it
//! into a rooted `GcCell`. Main forces a cycle meanwhile, then finishes the
//! sweep with no mutator left, which frees (and drops) whatever the mark
//! left white. Leaf 8 is rooted and has a `Weak` too.
//!
//! Proves, for these interleavings (both outcomes of the race occur, and
//! the test checks that they do): an upgrade returns either `None` or the
//! live leaf, which then survives the cycle and the sweep with its
//! contents (the upgrade marks it under the gate, ordered with the
//! clearing); a `Weak` whose target is unreachable at mark termination is
//! cleared by that cycle and the target dropped once; a `Weak` whose
//! target is rooted is never cleared; a `Weak` is dead exactly when its
//! target was dropped.
//!
//! `clone_during_clearing`: a thread without a mutator clones a `Weak` to
//! an unreachable leaf while the cycle clears it; the clone must die with
//! the original. This model found a real bug: `Weak::clone` loaded the
//! slot and inserted the copy as two steps, so a clearing in between left
//! the copy holding the address of an object about to be freed (an
//! upgrade of it would have returned freed memory). The copy is now made
//! under the weak table's lock, which the clearing holds
//! (`SlotTable::insert_copy`).
//!
//! Broken variants caught: `weak_upgrade_no_shade` (the upgrade does not
//! mark its target), `weak_clear_outside_gate` (the clearing runs without
//! the gate, racing upgrades), `weak_clone_unlocked` (the old clone).
//!
//! Does not prove: more than one upgrading mutator, weak references
//! across several cycles, targets reachable through other weakly held
//! objects (targets are leaves), finalisation order, bounds beyond
//! `LOOM_MAX_PREEMPTIONS` (default 2). Threads: main, the collector, and
//! one mutator or one cloner.
#![cfg(loom)]

mod support;

use spanheap::{Gc, GcCell, Root, Trace, Weak};
use spanheap_heap::sync::atomic::{AtomicBool, Ordering};
use spanheap_heap::sync::{Arc, thread};
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use support::{DEAD, Leaf, assert_caught, dropped, explore, tiny_heap};

/// Executions in which the upgrade returned `None` / `Some` (outside the
/// model: counts over all executions of one test).
static OUTCOMES: [StdAtomicUsize; 2] = [StdAtomicUsize::new(0), StdAtomicUsize::new(0)];

#[derive(Trace)]
struct Holder<'gc> {
    cell: GcCell<'gc, Option<Gc<'gc, Leaf>>>,
}

fn upgrade_during_mark() {
    let h = tiny_heap();
    let mut m = h.mutator();
    let (root, weak, kept, kept_weak): (Root<Holder<'static>>, Weak<Leaf>, Root<Leaf>, Weak<Leaf>) =
        m.scope(|cx| {
            let holder = cx
                .alloc(Holder {
                    cell: GcCell::new(None),
                })
                .unwrap();
            let w = cx.alloc(Leaf(7)).unwrap();
            let k = cx.alloc(Leaf(8)).unwrap();
            (
                cx.root(holder),
                cx.downgrade(w),
                cx.root(k),
                cx.downgrade(k),
            )
        });
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    let mutator = thread::spawn(move || {
        let got = m.scope(|cx| {
            e.store(true, Ordering::Release);
            // The cycle waits for this scope's acknowledgement of the
            // barrier, which a safepoint gives.
            while !cx.__barrier_on() {
                cx.safepoint();
                thread::yield_now();
            }
            // Two more clean points: the first may pass S, the second may
            // acknowledge the termination flush round, so the mark may end
            // (and clear the weak slot) before the upgrade below.
            cx.safepoint();
            thread::yield_now();
            cx.safepoint();
            match weak.upgrade(cx) {
                Some(g) => {
                    assert_eq!(g.0, 7, "an upgrade returned a freed leaf");
                    root.get(cx).cell.set(cx, Some(g));
                    true
                }
                None => false,
            }
        });
        (got, root, weak)
    });
    while !entered.load(Ordering::Acquire) {
        thread::yield_now();
    }
    h.collect();
    let (got, root, weak) = mutator.join().unwrap();
    // Sweep what the mark left white (every mutator is gone).
    h.collector().heap().finish_sweep().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let stored = root.get(cx).cell.get().map(|g| g.0);
        if got {
            assert_eq!(
                stored,
                Some(7),
                "an upgraded, stored leaf was freed ({DEAD:#x}: freed)"
            );
            assert!(
                !weak.is_dead(),
                "a weak ref to a reachable leaf was cleared"
            );
            assert_eq!(weak.upgrade(cx).map(|g| g.0), Some(7));
        } else {
            assert_eq!(stored, None);
            assert!(
                weak.is_dead(),
                "a weak ref to an unreachable leaf survived the cycle"
            );
        }
        assert!(
            !kept_weak.is_dead(),
            "a weak ref to a rooted leaf was cleared"
        );
        assert_eq!(kept_weak.upgrade(cx).map(|g| g.0), Some(8));
        assert_eq!(kept.get(cx).0, 8);
    });
    let expect: &[u64] = if got { &[] } else { &[7] };
    assert_eq!(dropped(), expect, "dropped leaves (upgraded: {got})");
    OUTCOMES[usize::from(got)].fetch_add(1, StdOrdering::Relaxed);
}

/// `Weak::clone` outside any scope, racing the clearing of the original's
/// slot: the clone must not copy an address the cycle has just decided to
/// free.
fn clone_during_clearing() {
    let h = tiny_heap();
    let mut m = h.mutator();
    let weak: Weak<Leaf> = m.scope(|cx| cx.downgrade(cx.alloc(Leaf(7)).unwrap()));
    let cloner = thread::spawn(move || {
        let copy = weak.clone();
        (weak, copy)
    });
    h.collect();
    let (weak, copy) = cloner.join().unwrap();
    h.collector().heap().finish_sweep().unwrap();
    assert_eq!(dropped(), [7], "the unreachable leaf is freed");
    assert!(weak.is_dead(), "the weak ref was not cleared");
    assert!(copy.is_dead(), "a clone of a weak ref outlived its target");
}

#[test]
fn model_7_upgrade_vs_clearing() {
    assert!(explore("7 (upgrade vs clearing)", upgrade_during_mark) > 1);
    let [none, some] = OUTCOMES.each_ref().map(|n| n.load(StdOrdering::Relaxed));
    println!(
        "model 7 (upgrade vs clearing): upgrade gave None in {none}, Some in {some} executions"
    );
    assert!(
        none > 0 && some > 0,
        "both outcomes of the race are explored"
    );
}

#[test]
fn model_7_catches_clearing_outside_the_gate() {
    assert_caught(
        "7 (upgrade vs clearing)",
        "weak_clear_outside_gate",
        upgrade_during_mark,
    );
}

#[test]
fn model_7_catches_an_upgrade_without_shade() {
    assert_caught(
        "7 (upgrade vs clearing)",
        "weak_upgrade_no_shade",
        upgrade_during_mark,
    );
}

#[test]
fn model_7_clone_vs_clearing() {
    assert!(explore("7 (clone vs clearing)", clone_during_clearing) > 1);
}

#[test]
fn model_7_catches_a_clone_unordered_with_clearing() {
    assert_caught(
        "7 (clone vs clearing)",
        "weak_clone_unlocked",
        clone_during_clearing,
    );
}

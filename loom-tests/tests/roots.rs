//! Model 9: the root table while a mark starts and scans it.
//!
//! The collector greys the objects in the root table once, after every
//! mutator in a scope has turned its barrier on — and a mutator may pass
//! its clean point S between the collector's opening of the S round and
//! that scan. Roots dropped during a mark keep their slot until the mark
//! ends (the deletion barrier for roots); roots created in a scope during
//! a mark shade their object. Two scenarios, with a forced cycle from main:
//!
//! `move_root_into_heap`: a mutator, inside its scope during the cycle,
//! takes leaf 1 through its `Root` at a point that may be after S and
//! pushes it into a `GcRefCell<Vec<_>>` of a rooted holder, then drops the
//! `Root`. The push is the mark's first write to the cell, so it settles
//! the cell (no marker reads it again this cycle), and after S a borrow
//! does not shade what it inserts: the leaf is protected only by the
//! snapshot, i.e. the dropped root's slot, if the scan has not read it.
//! (A move from one `Root` to a new `Root` *inside a scope*, the obvious
//! scenario, cannot show a missing deferral: with the barrier on,
//! `Scope::root` shades the object; with it off, the scan is still to
//! come and sees the new slot.)
//!
//! `move_between_roots`: two threads without mutators each move a leaf
//! from its `Root` to a clone of it (`Root::clone` needs no scope and
//! shades nothing) and drop the old `Root`, while the cycle scans the
//! table. The clones take free slots below the old ones, so the scan can
//! pass a new slot before it is filled and the old one after it was
//! emptied.
//!
//! Proves, for these interleavings: nothing rooted (or reachable from a
//! root) is freed — contents are intact after the sweep; root slots
//! dropped during a mark are released when it ends (slot count); a leaf
//! unrooted after the cycle is dropped by the next one, exactly once.
//! Broken variant caught (by each scenario): `root_drop_not_deferred`.
//!
//! Does not prove: roots created and dropped by two mutators *inside
//! scopes* at once (one model with the mover and a re-rooting thread
//! explored 338,215 executions in 18 min, far over the budget; split, the
//! two scenarios take seconds), roots alive across several cycles, bounds
//! beyond `LOOM_MAX_PREEMPTIONS` (default 2). Threads: main, the
//! collector, and one mutator or two re-rooting threads.
#![cfg(loom)]

mod support;

use spanheap::{Gc, GcRefCell, Mutator, Root, Trace};
use spanheap_heap::sync::atomic::{AtomicBool, Ordering};
use spanheap_heap::sync::{Arc, thread};
use support::{DEAD, Leaf, assert_caught, dropped, explore, tiny_heap};

#[derive(Trace)]
struct Holder<'gc> {
    list: GcRefCell<'gc, Vec<Gc<'gc, Leaf>>>,
}

/// A holder rooted by the returned `Root`, and leaves 1 and 2 rooted by
/// the other two. Root slots: holder 0, then `spares` slots left free,
/// then leaf 1 and leaf 2. The next roots created take the free slots,
/// below those of the leaves, so the root scan may pass a new root's slot
/// before it is filled and the old root's slot after it was emptied.
fn setup(m: &mut Mutator, spares: usize) -> (Root<Holder<'static>>, Root<Leaf>, Root<Leaf>) {
    m.scope(|cx| {
        let holder = cx
            .alloc(Holder {
                list: GcRefCell::new(Vec::new()),
            })
            .unwrap();
        let root = cx.root(holder);
        let spare: Vec<_> = (0..spares).map(|_| cx.root(holder)).collect();
        let l1 = cx.alloc(Leaf(1)).unwrap();
        let l2 = cx.alloc(Leaf(2)).unwrap();
        let (r1, r2) = (cx.root(l1), cx.root(l2));
        drop(spare);
        (root, r1, r2)
    })
}

/// The leaf ids in the holder's list.
fn list_ids(m: &mut Mutator, root: &Root<Holder<'static>>) -> Vec<u64> {
    m.scope(|cx| root.get(cx).list.borrow().iter().map(|l| l.0).collect())
}

fn move_root_into_heap() {
    let h = tiny_heap();
    let mut m = h.mutator();
    let (root, r1, r2) = setup(&mut m, 0);
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    let mover = thread::spawn(move || {
        m.scope(|cx| {
            e.store(true, Ordering::Release);
            while !cx.__barrier_on() {
                cx.safepoint();
                thread::yield_now();
            }
            // A clean point with the barrier on: S, if the collector has
            // opened the clean-stack round — possibly before it scanned
            // the roots.
            cx.safepoint();
            let l1 = r1.get(cx);
            // The first write of the mark settles the cell (it shades the
            // contents: none), and after S what a borrow inserts is not
            // shaded: the leaf's protection is the snapshot, i.e. `r1`.
            root.get(cx).list.borrow_mut(cx).push(l1);
            drop(r1);
        });
        root
    });
    while !entered.load(Ordering::Acquire) {
        thread::yield_now();
    }
    h.collect();
    let root = mover.join().unwrap();
    h.collector().heap().finish_sweep().unwrap();
    // `r1`, dropped during the mark, was released when the mark ended.
    assert_eq!(h.collector().roots().len(), 2, "root slots in use");
    let mut m = h.mutator();
    assert_eq!(
        list_ids(&mut m, &root),
        [1],
        "a leaf moved from a root into the heap was lost ({DEAD:#x}: freed)"
    );
    assert!(
        dropped().is_empty(),
        "rooted leaves were dropped: {:?}",
        dropped()
    );
    drop(r2);
}

/// Moves the leaf of `old` to a new root and drops `old`, outside any
/// scope (so no barrier can shade the leaf).
fn reroot(old: Root<Leaf>) -> Root<Leaf> {
    let new = old.clone();
    drop(old);
    new
}

fn move_between_roots() {
    let h = tiny_heap();
    let mut m = h.mutator();
    let (root, r1, r2) = setup(&mut m, 2);
    let a = thread::spawn(move || reroot(r1));
    let b = thread::spawn(move || reroot(r2));
    h.collect();
    let (r1, r2) = (a.join().unwrap(), b.join().unwrap());
    h.collector().heap().finish_sweep().unwrap();
    // The old roots, if dropped during the mark, were released at its end.
    assert_eq!(h.collector().roots().len(), 3, "root slots in use");
    m.scope(|cx| {
        let ids = [r1.get(cx).0, r2.get(cx).0];
        assert_eq!(
            ids,
            [1, 2],
            "a leaf moved between roots was freed ({DEAD:#x}: freed)"
        );
    });
    assert!(
        dropped().is_empty(),
        "rooted leaves were dropped: {:?}",
        dropped()
    );
    // Unrooted now: the next cycle frees each leaf, once.
    drop((r1, r2));
    h.collect();
    h.collector().heap().finish_sweep().unwrap();
    let mut freed = dropped();
    freed.sort_unstable();
    assert_eq!(freed, [1, 2], "dropped leaves");
    assert_eq!(h.collector().roots().len(), 1, "root slots in use");
    assert!(list_ids(&mut m, &root).is_empty());
}

#[test]
fn model_9_root_to_heap_during_mark() {
    assert!(explore("9 (root to heap)", move_root_into_heap) > 1);
}

#[test]
fn model_9_root_to_heap_catches_a_root_drop_not_deferred() {
    assert_caught(
        "9 (root to heap)",
        "root_drop_not_deferred",
        move_root_into_heap,
    );
}

#[test]
fn model_9_root_to_root_during_mark() {
    assert!(explore("9 (root to root)", move_between_roots) > 1);
}

#[test]
fn model_9_root_to_root_catches_a_root_drop_not_deferred() {
    assert_caught(
        "9 (root to root)",
        "root_drop_not_deferred",
        move_between_roots,
    );
}

//! Model 6: the safepoint handshakes of a cycle, with two mutators.
//!
//! Mutator 1 allocates a leaf that lives only on its stack, allocates
//! again (an allocation handshake: not a clean point), then stores the
//! leaf into a rooted cell and leaves its scope. Mutator 2 enters a scope,
//! passes a safepoint and leaves. Meanwhile main forces a cycle. In the
//! checkmark variant the collector also stops the world at termination,
//! so mutators park at their handshakes and are restarted.
//!
//! Proves, for these interleavings: the collector thread, the mutators
//! and main never deadlock — every wait of the collector for
//! acknowledgements is woken (under loom a timed wait never times out, so
//! the 1 ms backstop of the real code plays no part); no mutator is left
//! behind: the mark does not end while mutator 1 may hold the white leaf
//! on its stack (the leaf survives with its id); a mutator outside its
//! scope holds nothing up (mutator 2 may come and go at any point).
//! Does not prove: more than two mutators or one cycle; scopes of another
//! heap; interleavings that need more than one preemption (the correct
//! models run at bound 1: with two mutators, the collector and main, bound
//! 2 did not finish in over 5 minutes; the broken variant is caught at the
//! suite's bound, 2). Ending the mark without waiting for the mutators'
//! clean points (S) was tried as a broken variant and was *not* caught
//! (stopped after more than 35 minutes at bound 2). The likely reason: a pre-S
//! mutator's insertion barrier shades what it stores, and the termination
//! flush round carries that, so the leaf is lost only in a schedule where
//! the mutator acknowledges the flush round at its second allocation and
//! stores the leaf only after the mark ended; we did not confirm that such
//! a schedule fits the bound. An open question for a targeted model.
#![cfg(loom)]

mod support;

use spanheap::{Gc, GcCell, Heap, Root, Trace};
use spanheap_heap::sync::thread;
use support::{Leaf, assert_caught, dropped, explore_capped, tiny_heap};

#[derive(Trace)]
struct Slot<'gc> {
    leaf: GcCell<'gc, Option<Gc<'gc, Leaf>>>,
}

fn cycle_with_two_mutators(h: Heap) {
    let mut m1 = h.mutator();
    let mut m2 = h.mutator();
    let root: Root<Slot<'static>> = m1.scope(|cx| {
        cx.root(
            cx.alloc(Slot {
                leaf: GcCell::new(None),
            })
            .unwrap(),
        )
    });
    let r = root.clone();
    let t1 = thread::spawn(move || {
        m1.scope(|cx| {
            let x = cx.alloc(Leaf(1)).unwrap();
            // Garbage; its allocation may answer a handshake (barrier on,
            // a flush round) but is not a clean point: `x` is on the stack.
            cx.alloc(Leaf(2)).unwrap();
            r.get(cx).leaf.set(cx, Some(x));
        });
    });
    let t2 = thread::spawn(move || {
        m2.scope(|cx| cx.safepoint());
    });
    h.collect();
    t1.join().unwrap();
    t2.join().unwrap();
    h.collector().heap().finish_sweep().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let x = root.get(cx).leaf.get().expect("the leaf was stored");
        assert_eq!(x.0, 1, "the stored leaf was freed");
    });
    let d = dropped();
    assert!(d.iter().all(|&id| id == 2), "dropped: {d:?}");
}

fn plain() {
    cycle_with_two_mutators(tiny_heap());
}

fn with_checkmark() {
    let h = Heap::builder()
        .arena_size(4 << 20)
        .mark_workers(1)
        .background_sweep(false)
        .stress(None)
        .checkmark(true)
        .build()
        .expect("a tiny heap builds");
    cycle_with_two_mutators(h);
}

/// Two mutators and the collector: preemption bound 1 (a bound of 2 ran
/// for over 5 minutes without finishing; see the module docs).
const BOUND: usize = 1;

#[test]
fn model_6_handshakes() {
    assert!(explore_capped("6 (handshakes)", plain, BOUND) > 1);
}

#[test]
fn model_6_handshakes_with_stopped_world() {
    assert!(explore_capped("6 (handshakes, checkmark stops)", with_checkmark, BOUND) > 1);
}

#[test]
fn model_6_catches_a_lost_wake_up() {
    assert_caught("6 (handshakes)", "ack_wait_ignores_count", plain);
}

//! Model 4: parallel mark workers — work stealing and mark termination.
//!
//! A tiny heap with two mark workers (under `cfg(loom)` the collector's
//! `drain_round` runs its helper workers on loom threads instead of the
//! rayon pool, and at any heap size). Before the cycle, a rooted tree: a
//! root node with two child nodes, each holding one `Leaf`. Main forces
//! a cycle; the collector thread and one helper drain the grey objects
//! with `Tracer::drain_parallel`: the root starts in the collector's own
//! deque, a worker with more than one grey object shares half of them in
//! its deque while another is idle, and an idle worker steals from the
//! injector and the other's deque.
//!
//! **Proves** (every interleaving within the bound): whenever a worker
//! declares termination (`active == 0` and an empty injector), every
//! reachable node has been scanned — no grey object is left in a deque,
//! in a local stack, or in the hands of a worker that is stealing; no
//! node is scanned twice; after the sweep nothing reachable was freed.
//!
//! **Does not prove**: crossbeam-deque itself (opaque to loom: each
//! deque or injector operation is one indivisible step here; its own test
//! suite checks it); more than two workers; mark assists taking work from
//! the injector during the drain; the concurrent mark's termination with
//! grey objects in a mutator's barrier buffer — that is model 5
//! (`termination_skips_flush_round`); bounds beyond
//! the preemption bound, which is `LOOM_MAX_PREEMPTIONS` raised to 3
//! (see `MIN_BOUND`). Threads: main, the collector, one helper worker.
//!
//! **Broken variant** `steal_before_counting_active` (`gc/src/tracer.rs`,
//! `drain_parallel`): an idle worker steals first and counts itself
//! active after, so the other can see `active == 0` and an empty
//! injector while a stolen object is still unscanned.
#![cfg(loom)]

mod support;

use spanheap::{Gc, Heap, Rebrand, Root, Trace, Tracer};
use spanheap_gc::tracer::loom_hooks;
use std::cell::Cell;
use support::{DEAD, Leaf, assert_caught_min, dropped, explore_min};

/// Nodes in the tree (the root and its two children).
const NODES: u32 = 3;

std::thread_local! {
    /// Nodes scanned in this execution. (A `std` thread-local: loom runs
    /// every thread of a model on the test's OS thread; it is the
    /// observer's, not part of the model.)
    static SCANNED: Cell<u32> = const { Cell::new(0) };
}

struct Node<'gc> {
    kids: Vec<Gc<'gc, Node<'gc>>>,
    leaf: Option<Gc<'gc, Leaf>>,
}

// SAFETY: reports every Gc it holds (the kids and the leaf); the counter
// it bumps is not a GC pointer.
unsafe impl Trace for Node<'_> {
    fn trace(&self, t: &mut Tracer<'_>) {
        SCANNED.with(|s| s.set(s.get() + 1));
        self.kids.trace(t);
        self.leaf.trace(t);
    }
}

// SAFETY: `At<'gc>` is `Node` with its one brand renamed.
unsafe impl Rebrand for Node<'_> {
    type At<'gc> = Node<'gc>;
}

fn two_worker_heap() -> Heap {
    Heap::builder()
        .arena_size(4 << 20)
        .mark_workers(2)
        .background_sweep(false)
        .stress(None)
        .build()
        .expect("a tiny heap builds")
}

/// Called by a mark worker as it declares termination.
fn on_termination() {
    let n = SCANNED.with(|s| s.get());
    assert_eq!(
        n, NODES,
        "a mark worker declared termination with {} of {NODES} nodes scanned",
        n
    );
}

fn parallel_mark() {
    SCANNED.with(|s| s.set(0));
    let h = two_worker_heap();
    let mut m = h.mutator();
    let root: Root<Node<'static>> = m.scope(|cx| {
        let kids = (1..=2)
            .map(|i| {
                let leaf = cx.alloc(Leaf(i)).unwrap();
                cx.alloc(Node {
                    kids: Vec::new(),
                    leaf: Some(leaf),
                })
                .unwrap()
            })
            .collect();
        let r = cx.alloc(Node { kids, leaf: None }).unwrap();
        cx.root(r)
    });
    loom_hooks::set_mark_worker_exit(Some(on_termination));
    h.collect();
    loom_hooks::set_mark_worker_exit(None);
    assert_eq!(
        SCANNED.with(|s| s.get()),
        NODES,
        "nodes scanned (once each)"
    );
    h.collector().heap().finish_sweep().unwrap();
    m.scope(|cx| {
        let r = root.get(cx);
        let ids: Vec<u64> = r.kids.iter().map(|k| k.leaf.unwrap().0).collect();
        assert_eq!(ids, [1, 2], "leaves after the sweep ({DEAD:#x}: freed)");
    });
    assert!(
        dropped().is_empty(),
        "reachable leaves dropped: {:?}",
        dropped()
    );
}

/// The preemption bound model 4 needs: the broken variant's bug shows only
/// if the helper is idle when the collector shares work (a preemption of
/// the collector before it scans the root), the helper runs while that
/// work is shared (a second), and the collector runs between the helper's
/// steal and its count (a third).
const MIN_BOUND: usize = 3;

#[test]
fn model_4_parallel_mark_termination() {
    assert!(explore_min("4 (mark workers)", parallel_mark, MIN_BOUND) > 1);
}

#[test]
fn model_4_catches_steal_before_counting_active() {
    assert_caught_min(
        "4 (mark workers)",
        "steal_before_counting_active",
        parallel_mark,
        MIN_BOUND,
    );
}

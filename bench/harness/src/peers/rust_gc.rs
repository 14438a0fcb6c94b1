//! rust-gc (crate `gc`): a thread-local, stop-the-world mark-sweep
//! collector with root counting, written as its README writes it.
//!
//! - Types `#[derive(Trace, Finalize)]`; objects are `gc::Gc<T>`, mutable
//!   fields are `gc::GcCell<T>`. A `Gc` held outside the heap (on the
//!   stack, in a `Vec`) is a root; moving it into a `Gc::new` un-roots it.
//! - Collections run inside `Gc::new` when the bytes allocated pass the
//!   collector's threshold (default configuration).
//! - GCBench's top-down stores are `*node.left.borrow_mut() = …` on a
//!   `GcCell` of a node already in the heap.
//! - alloc: the ring is a `Vec<Option<Gc<[u8; S]>>>` (each slot a root);
//!   latency's window a `Vec<Option<Gc<[u8; 1024]>>>`.
//! - Single-threaded: `Gc` is not `Send` and each thread has its own
//!   collector.
//!
//! Metric: `gc_cycles` (`gc::stats().collections_performed`, with the
//! crate's `unstable-stats` feature).

// gc_derive 0.5.0 (the latest) emits its impls inside a `const _` block,
// which today's rustc flags; the impls are correct.
#![allow(non_local_definitions)]

use crate::{Metric, Report, alloc, binary_trees, gcbench, latency};
use ::gc::{Finalize, Gc, GcCell, Trace};
use std::sync::Barrier;

/// Collections so far on this thread.
fn cycles() -> usize {
    ::gc::stats().collections_performed
}

/// `gc_cycles`: collections on this thread since `before` (the collector
/// is per thread, and a test thread may run several workloads).
fn cycles_since(before: usize) -> Metric {
    Metric::int("gc_cycles", (cycles() - before) as u64)
}

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

#[derive(Trace, Finalize)]
struct Node {
    left: Option<Gc<Node>>,
    right: Option<Gc<Node>>,
}

fn tree(depth: u32) -> Gc<Node> {
    if depth == 0 {
        Gc::new(Node {
            left: None,
            right: None,
        })
    } else {
        Gc::new(Node {
            left: Some(tree(depth - 1)),
            right: Some(tree(depth - 1)),
        })
    }
}

fn check(n: &Node) -> u64 {
    1 + match (&n.left, &n.right) {
        (Some(l), Some(r)) => check(l) + check(r),
        _ => 0,
    }
}

/// The thread's trees: rust-gc's thread-local collector.
struct Trees;

impl binary_trees::Trees for Trees {
    fn build_check(&mut self, depth: u32) -> u64 {
        check(&tree(depth))
    }
}

/// binary-trees on rust-gc.
pub fn binary_trees(quick: bool) -> Report {
    let before = cycles();
    let lines = binary_trees::run(
        binary_trees::max_depth(quick),
        &mut Trees,
        |_, depth| tree(depth),
        |_, long| check(long),
    );
    Report {
        lines,
        metrics: vec![cycles_since(before)],
    }
}

// ---------------------------------------------------------------------
// GCBench
// ---------------------------------------------------------------------

#[derive(Trace, Finalize, Default)]
struct BenchNode {
    left: GcCell<Option<Gc<BenchNode>>>,
    right: GcCell<Option<Gc<BenchNode>>>,
    // GCBench's payload, never read.
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

/// Top-down: stores new children into the already allocated `node`.
fn populate(depth: u32, node: &BenchNode) {
    if depth == 0 {
        return;
    }
    *node.left.borrow_mut() = Some(Gc::new(BenchNode::default()));
    *node.right.borrow_mut() = Some(Gc::new(BenchNode::default()));
    for child in [&node.left, &node.right] {
        if let Some(c) = &*child.borrow() {
            populate(depth - 1, c);
        }
    }
}

/// Bottom-up: children first, then the parent.
fn make_tree(depth: u32) -> Gc<BenchNode> {
    if depth == 0 {
        Gc::new(BenchNode::default())
    } else {
        Gc::new(BenchNode {
            left: GcCell::new(Some(make_tree(depth - 1))),
            right: GcCell::new(Some(make_tree(depth - 1))),
            i: 0,
            j: 0,
        })
    }
}

fn count(n: &BenchNode) -> u64 {
    1 + [&n.left, &n.right]
        .into_iter()
        .map(|c| c.borrow().as_deref().map_or(0, count))
        .sum::<u64>()
}

impl gcbench::Trees for Trees {
    fn top_down(&mut self, depth: u32) {
        let root = Gc::new(BenchNode::default());
        populate(depth, &root);
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        let tree = make_tree(depth);
        if walk { count(&tree) } else { 0 }
    }
}

/// GCBench on rust-gc.
pub fn gcbench(quick: bool) -> Report {
    let before = cycles();
    let mut report = gcbench::run(
        &gcbench::Params::new(quick),
        &mut Trees,
        |_, p| {
            let tree = Gc::new(BenchNode::default());
            populate(p.long_lived, &tree);
            (tree, Gc::new(gcbench::array(p.array)))
        },
        |_, (tree, array), i| (count(tree), array[i]),
    );
    report.metrics.push(cycles_since(before));
    report
}

// ---------------------------------------------------------------------
// alloc
// ---------------------------------------------------------------------

impl alloc::Ring for Trees {
    fn ring<const S: usize>(&mut self, n: usize) -> u64 {
        let mut ring: Vec<Option<Gc<[u8; S]>>> = (0..alloc::RING).map(|_| None).collect();
        let mut sum = 0;
        for i in 0..n {
            let new = Gc::new(alloc::payload::<S>(i));
            if let Some(old) = ring[i % alloc::RING].replace(new) {
                sum += alloc::leaving(&old, i - alloc::RING);
            }
        }
        sum
    }
}

/// The allocation microbenchmark on rust-gc.
pub fn alloc(quick: bool) -> Report {
    let before = cycles();
    let mut report = alloc::run(&mut Trees, quick);
    report.metrics.push(cycles_since(before));
    report
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------
//
// The window is a `Vec<Option<Gc<[u8; 1024]>>>` (each slot a root, as in
// alloc); the message it replaces is un-rooted by the store and freed by
// a later collection, which runs inside some push's `Gc::new` and is
// timed with it (rust-gc's collections stop this thread, the only one).

impl latency::Pushes for Trees {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        let mut ring: Vec<Option<Gc<latency::Msg>>> = (0..window).map(|_| None).collect();
        start.wait();
        let mut sum = 0;
        for (i, t) in times.iter_mut().enumerate() {
            sum += latency::timed(t, || {
                let new = Gc::new(latency::message(i));
                ring[i % window]
                    .replace(new)
                    .map_or(0, |old| latency::leaving(&old, i - window))
            });
        }
        sum
    }
}

/// The GC latency test on rust-gc.
pub fn latency(quick: bool) -> Report {
    let before = cycles();
    let mut report = latency::run(quick, &mut Trees);
    report.metrics.push(cycles_since(before));
    report
}

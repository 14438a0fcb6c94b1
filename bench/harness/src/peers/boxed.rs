//! `Box`: the non-GC baseline, every node a `Box` freed when its owner is
//! dropped. The `box` peer runs it on the system allocator (glibc
//! malloc); the `mimalloc` peer is the same code in the `harness-mimalloc`
//! binary, whose global allocator is mimalloc.
//!
//! - Trees own their children (`Option<Box<Node>>`); dropping the root
//!   frees the tree. The long-lived tree is shared between threads by
//!   reference.
//! - GCBench's top-down stores are plain `&mut` field writes into nodes
//!   already on the heap; the long-lived array is a `Vec<f64>`.
//! - alloc: the ring is a `Vec<Option<Box<[u8; S]>>>`; replacing a slot
//!   frees the object that leaves.
//! - latency: the window is a `Vec<Option<Box<[u8; 1024]>>>`, the same.
//!
//! `std::hint::black_box` keeps the optimiser from deleting trees that
//! are built and dropped without being read (an allocation nobody reads
//! may legally be elided).

use crate::{Report, alloc, binary_trees, gcbench, latency};
use std::hint::black_box;
use std::sync::Barrier;

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

struct Node {
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

fn tree(depth: u32) -> Box<Node> {
    if depth == 0 {
        Box::new(Node {
            left: None,
            right: None,
        })
    } else {
        Box::new(Node {
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

/// A thread's trees: nothing but the global allocator.
struct Trees;

impl binary_trees::Trees for Trees {
    fn build_check(&mut self, depth: u32) -> u64 {
        check(&tree(depth))
    }
}

/// binary-trees with `Box`.
pub fn binary_trees(quick: bool, threads: usize) -> Report {
    let lines = binary_trees::run_threads(
        binary_trees::max_depth(quick),
        threads,
        &mut Trees,
        |_, depth| tree(depth),
        |_, long| check(long),
        || Trees,
    );
    Report {
        lines,
        metrics: Vec::new(),
    }
}

// ---------------------------------------------------------------------
// GCBench
// ---------------------------------------------------------------------

#[derive(Default)]
struct BenchNode {
    left: Option<Box<BenchNode>>,
    right: Option<Box<BenchNode>>,
    // GCBench's payload, never read.
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

/// Top-down: stores new children into the already allocated `node`.
fn populate(depth: u32, node: &mut BenchNode) {
    if depth == 0 {
        return;
    }
    node.left = Some(Box::default());
    node.right = Some(Box::default());
    if let (Some(l), Some(r)) = (&mut node.left, &mut node.right) {
        populate(depth - 1, l);
        populate(depth - 1, r);
    }
}

/// Bottom-up: children first, then the parent.
fn make_tree(depth: u32) -> Box<BenchNode> {
    if depth == 0 {
        Box::default()
    } else {
        Box::new(BenchNode {
            left: Some(make_tree(depth - 1)),
            right: Some(make_tree(depth - 1)),
            i: 0,
            j: 0,
        })
    }
}

fn count(n: &BenchNode) -> u64 {
    1 + [&n.left, &n.right]
        .into_iter()
        .flatten()
        .map(|c| count(c))
        .sum::<u64>()
}

impl gcbench::Trees for Trees {
    fn top_down(&mut self, depth: u32) {
        let mut root = Box::<BenchNode>::default();
        populate(depth, &mut root);
        black_box(&root);
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        let tree = black_box(make_tree(depth));
        if walk { count(&tree) } else { 0 }
    }
}

/// GCBench with `Box`.
pub fn gcbench(quick: bool, threads: usize) -> Report {
    gcbench::run_threads(
        &gcbench::Params::new(quick),
        threads,
        &mut Trees,
        |_, p| {
            let mut tree = Box::<BenchNode>::default();
            populate(p.long_lived, &mut tree);
            (tree, gcbench::array(p.array))
        },
        |_, (tree, array), i| (count(tree), array[i]),
        || Trees,
    )
}

// ---------------------------------------------------------------------
// alloc
// ---------------------------------------------------------------------

impl alloc::Ring for Trees {
    fn ring<const S: usize>(&mut self, n: usize) -> u64 {
        let mut ring: Vec<Option<Box<[u8; S]>>> = (0..alloc::RING).map(|_| None).collect();
        let mut sum = 0;
        for i in 0..n {
            let new = Box::new(alloc::payload::<S>(i));
            if let Some(old) = ring[i % alloc::RING].replace(new) {
                sum += alloc::leaving(&old, i - alloc::RING);
            }
        }
        sum
    }
}

/// The allocation microbenchmark with `Box`.
pub fn alloc(quick: bool) -> Report {
    alloc::run(&mut Trees, quick)
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------
//
// The window is a `Vec<Option<Box<[u8; 1024]>>>`; storing a new message
// drops (frees) the one it replaces, inside the timed push.

impl latency::Pushes for Trees {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        let mut ring: Vec<Option<Box<latency::Msg>>> = (0..window).map(|_| None).collect();
        start.wait();
        let mut sum = 0;
        for (i, t) in times.iter_mut().enumerate() {
            sum += latency::timed(t, || {
                let new = Box::new(latency::message(i));
                ring[i % window]
                    .replace(new)
                    .map_or(0, |old| latency::leaving(&old, i - window))
            });
        }
        sum
    }
}

/// The GC latency test with `Box` (no collector: the allocator's own
/// latency).
pub fn latency(quick: bool, threads: usize) -> Report {
    latency::run_threads(quick, threads, || Trees)
}

//! `Rc`: reference counting on the system allocator, no cycle collection.
//!
//! - Trees hold `Option<Rc<Node>>`; dropping the root's last `Rc` frees
//!   the tree.
//! - GCBench's nodes keep their children in `RefCell`s (`Rc`'s way to
//!   write a field of a shared node): a top-down store is a `borrow_mut`
//!   assignment into a node already on the heap.
//! - alloc: the ring is a `Vec<Option<Rc<[u8; S]>>>`; latency's window
//!   a `Vec<Option<Rc<[u8; 1024]>>>`.
//! - Threads: `Rc` never crosses a thread. Each worker builds and drops
//!   its own trees (all threads share the one malloc heap); the long-lived
//!   structures stay on the main thread, which is all the threaded
//!   variants ask of them.
//!
//! `std::hint::black_box` keeps the optimiser from deleting trees that
//! are built and dropped without being read.

use crate::{Report, alloc, binary_trees, gcbench, latency};
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Barrier;

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

struct Node {
    left: Option<Rc<Node>>,
    right: Option<Rc<Node>>,
}

fn tree(depth: u32) -> Rc<Node> {
    if depth == 0 {
        Rc::new(Node {
            left: None,
            right: None,
        })
    } else {
        Rc::new(Node {
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

/// binary-trees with `Rc`.
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
    left: RefCell<Option<Rc<BenchNode>>>,
    right: RefCell<Option<Rc<BenchNode>>>,
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
    *node.left.borrow_mut() = Some(Rc::default());
    *node.right.borrow_mut() = Some(Rc::default());
    for child in [&node.left, &node.right] {
        if let Some(c) = &*child.borrow() {
            populate(depth - 1, c);
        }
    }
}

/// Bottom-up: children first, then the parent.
fn make_tree(depth: u32) -> Rc<BenchNode> {
    if depth == 0 {
        Rc::default()
    } else {
        Rc::new(BenchNode {
            left: RefCell::new(Some(make_tree(depth - 1))),
            right: RefCell::new(Some(make_tree(depth - 1))),
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
        let root = Rc::<BenchNode>::default();
        populate(depth, &root);
        black_box(&root);
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        let tree = black_box(make_tree(depth));
        if walk { count(&tree) } else { 0 }
    }
}

/// GCBench with `Rc`.
pub fn gcbench(quick: bool, threads: usize) -> Report {
    gcbench::run_threads(
        &gcbench::Params::new(quick),
        threads,
        &mut Trees,
        |_, p| {
            let tree = Rc::<BenchNode>::default();
            populate(p.long_lived, &tree);
            (tree, Rc::new(gcbench::array(p.array)))
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
        let mut ring: Vec<Option<Rc<[u8; S]>>> = (0..alloc::RING).map(|_| None).collect();
        let mut sum = 0;
        for i in 0..n {
            let new = Rc::new(alloc::payload::<S>(i));
            if let Some(old) = ring[i % alloc::RING].replace(new) {
                sum += alloc::leaving(&old, i - alloc::RING);
            }
        }
        sum
    }
}

/// The allocation microbenchmark with `Rc`.
pub fn alloc(quick: bool) -> Report {
    alloc::run(&mut Trees, quick)
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------
//
// The window is a `Vec<Option<Rc<[u8; 1024]>>>`; storing a new message
// drops the last reference to the one it replaces, which frees it inside
// the timed push. Threads: each has its own window of `Rc`s.

impl latency::Pushes for Trees {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        let mut ring: Vec<Option<Rc<latency::Msg>>> = (0..window).map(|_| None).collect();
        start.wait();
        let mut sum = 0;
        for (i, t) in times.iter_mut().enumerate() {
            sum += latency::timed(t, || {
                let new = Rc::new(latency::message(i));
                ring[i % window]
                    .replace(new)
                    .map_or(0, |old| latency::leaving(&old, i - window))
            });
        }
        sum
    }
}

/// The GC latency test with `Rc`.
pub fn latency(quick: bool, threads: usize) -> Report {
    latency::run_threads(quick, threads, || Trees)
}

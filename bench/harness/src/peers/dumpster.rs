//! dumpster 2.x: reference counting with automatic cycle detection,
//! written as its documentation writes it.
//!
//! - `unsync::Gc` for single-threaded runs and `sync::Gc` for threaded
//!   ones ("for a single-threaded application, it is recommended to use
//!   `unsync`"). Types derive `dumpster::Trace`.
//! - Trees hold `Option<Gc<Node>>`; a node's last reference dropped frees
//!   it at once. dumpster's cycle detection runs on its own schedule
//!   (default collect condition).
//! - GCBench's nodes keep their children in a `RefCell` (`unsync`) or a
//!   `Mutex` (`sync`), the interior mutability the crate's examples use:
//!   a top-down store writes into a node already on the heap.
//! - alloc: the ring is a `Vec<Option<unsync::Gc<[u8; S]>>>`.
//! - latency: the window is a `Vec<Option<Gc<[u8; 1024]>>>` (`unsync`, or
//!   `sync` with threads, one window per thread); storing a new message
//!   drops the last reference to the one it replaces, which frees it
//!   inside the timed push (with any cleanup dumpster decides to run).
//! - Threads: every thread allocates `sync::Gc`s into dumpster's shared
//!   collector; the long-lived structures are built on the main thread.

use crate::{Report, alloc, binary_trees, gcbench, latency};

/// binary-trees on dumpster (`unsync`, or `sync` with threads).
pub fn binary_trees(quick: bool, threads: usize) -> Report {
    let max = binary_trees::max_depth(quick);
    let lines = if threads <= 1 {
        binary_trees::run(
            max,
            &mut local::Trees,
            |_, depth| local::tree(depth),
            |_, long| local::check(long),
        )
    } else {
        binary_trees::run_threads(
            max,
            threads,
            &mut shared::Trees,
            |_, depth| shared::tree(depth),
            |_, long| shared::check(long),
            || shared::Trees,
        )
    };
    Report {
        lines,
        metrics: Vec::new(),
    }
}

/// GCBench on dumpster (`unsync`, or `sync` with threads).
pub fn gcbench(quick: bool, threads: usize) -> Report {
    let p = gcbench::Params::new(quick);
    if threads <= 1 {
        gcbench::run(&p, &mut local::Trees, local::long_lived, local::check_long)
    } else {
        gcbench::run_threads(
            &p,
            threads,
            &mut shared::Trees,
            shared::long_lived,
            shared::check_long,
            || shared::Trees,
        )
    }
}

/// The allocation microbenchmark on dumpster (`unsync`).
pub fn alloc(quick: bool) -> Report {
    alloc::run(&mut local::Trees, quick)
}

/// The GC latency test on dumpster (`unsync`, or `sync` with threads).
pub fn latency(quick: bool, threads: usize) -> Report {
    if threads <= 1 {
        latency::run(quick, &mut local::Trees)
    } else {
        latency::run_threads(quick, threads, || shared::Trees)
    }
}

/// The thread-local collector: `unsync::Gc` and `RefCell`.
mod local {
    use crate::{alloc, binary_trees, gcbench, latency};
    use ::dumpster::Trace;
    use ::dumpster::unsync::Gc;
    use std::cell::RefCell;
    use std::sync::Barrier;

    #[derive(Trace)]
    pub struct Node {
        left: Option<Gc<Node>>,
        right: Option<Gc<Node>>,
    }

    pub fn tree(depth: u32) -> Gc<Node> {
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

    pub fn check(n: &Node) -> u64 {
        1 + match (&n.left, &n.right) {
            (Some(l), Some(r)) => check(l) + check(r),
            _ => 0,
        }
    }

    /// A thread's trees: dumpster's thread-local collector.
    pub struct Trees;

    impl binary_trees::Trees for Trees {
        fn build_check(&mut self, depth: u32) -> u64 {
            check(&tree(depth))
        }
    }

    #[derive(Trace, Default)]
    pub struct BenchNode {
        left: RefCell<Option<Gc<BenchNode>>>,
        right: RefCell<Option<Gc<BenchNode>>>,
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
            let root = Gc::new(BenchNode::default());
            populate(depth, &root);
        }

        fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
            let tree = make_tree(depth);
            if walk { count(&tree) } else { 0 }
        }
    }

    pub type LongLived = (Gc<BenchNode>, Gc<Vec<f64>>);

    pub fn long_lived(_: &mut Trees, p: &gcbench::Params) -> LongLived {
        let tree = Gc::new(BenchNode::default());
        populate(p.long_lived, &tree);
        (tree, Gc::new(gcbench::array(p.array)))
    }

    pub fn check_long(_: &mut Trees, (tree, array): &LongLived, i: usize) -> (u64, f64) {
        (count(tree), array[i])
    }

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
}

/// The concurrent collector: `sync::Gc` and `Mutex`.
mod shared {
    use crate::{binary_trees, gcbench, latency};
    use ::dumpster::Trace;
    use ::dumpster::sync::Gc;
    use std::sync::{Barrier, Mutex};

    #[derive(Trace)]
    pub struct Node {
        left: Option<Gc<Node>>,
        right: Option<Gc<Node>>,
    }

    pub fn tree(depth: u32) -> Gc<Node> {
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

    pub fn check(n: &Node) -> u64 {
        1 + match (&n.left, &n.right) {
            (Some(l), Some(r)) => check(l) + check(r),
            _ => 0,
        }
    }

    /// A thread's trees: dumpster's shared collector.
    pub struct Trees;

    impl binary_trees::Trees for Trees {
        fn build_check(&mut self, depth: u32) -> u64 {
            check(&tree(depth))
        }
    }

    #[derive(Trace, Default)]
    pub struct BenchNode {
        left: Mutex<Option<Gc<BenchNode>>>,
        right: Mutex<Option<Gc<BenchNode>>>,
        // GCBench's payload, never read.
        #[allow(dead_code)]
        i: i32,
        #[allow(dead_code)]
        j: i32,
    }

    /// Locks a child cell (a poisoned lock means a thread already failed).
    fn lock(
        cell: &Mutex<Option<Gc<BenchNode>>>,
    ) -> std::sync::MutexGuard<'_, Option<Gc<BenchNode>>> {
        cell.lock().expect("a GCBench thread panicked")
    }

    /// Top-down: stores new children into the already allocated `node`.
    fn populate(depth: u32, node: &BenchNode) {
        if depth == 0 {
            return;
        }
        *lock(&node.left) = Some(Gc::new(BenchNode::default()));
        *lock(&node.right) = Some(Gc::new(BenchNode::default()));
        for child in [&node.left, &node.right] {
            if let Some(c) = &*lock(child) {
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
                left: Mutex::new(Some(make_tree(depth - 1))),
                right: Mutex::new(Some(make_tree(depth - 1))),
                i: 0,
                j: 0,
            })
        }
    }

    fn count(n: &BenchNode) -> u64 {
        1 + [&n.left, &n.right]
            .into_iter()
            .map(|c| lock(c).as_deref().map_or(0, count))
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

    pub type LongLived = (Gc<BenchNode>, Gc<Vec<f64>>);

    pub fn long_lived(_: &mut Trees, p: &gcbench::Params) -> LongLived {
        let tree = Gc::new(BenchNode::default());
        populate(p.long_lived, &tree);
        (tree, Gc::new(gcbench::array(p.array)))
    }

    pub fn check_long(_: &mut Trees, (tree, array): &LongLived, i: usize) -> (u64, f64) {
        (count(tree), array[i])
    }

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
}

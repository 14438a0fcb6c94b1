//! bumpalo: a bump arena, the near-limit reference for allocation (the
//! "library pool" the Benchmarks Game's rules allow, as in its fastest
//! Rust and C programs). Nodes are allocated one by one with
//! `Bump::alloc`; nothing is freed one at a time.
//!
//! - Trees: each thread keeps one scratch `Bump`; a tree is built in it,
//!   walked, and the arena is `reset()` (every node freed at once, the
//!   chunk kept for the next tree). The long-lived tree has a `Bump` of
//!   its own, shared between threads by reference.
//! - GCBench: nodes hold `Option<&mut Node>` children, so a top-down store
//!   is a plain field write into a node already in the arena (`&mut`
//!   rather than `Cell`, so that the long-lived tree is `Sync`).
//! - alloc: the idiomatic equivalent of the ring is an arena reset every
//!   1,000 allocations. To keep the ring's exact semantics — each object
//!   alive until 1,000 newer ones exist, then read back — two arenas
//!   alternate: batch `b` (objects `1000b … 1000b + 999`) is allocated in
//!   arena `b % 2`, which is reset just before; batch `b - 1` stays in the
//!   other arena while its objects leave the ring one by one, and batch
//!   `b - 2`, reset away, had all left. One reset per 1,000 allocations.
//! - latency: the same two arenas, with batches of a whole window (the
//!   section at the end of this file).

use crate::{Report, alloc, binary_trees, gcbench, latency};
use ::bumpalo::Bump;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

struct Node<'a> {
    left: Option<&'a Node<'a>>,
    right: Option<&'a Node<'a>>,
}

fn tree(bump: &Bump, depth: u32) -> &Node<'_> {
    let node = if depth == 0 {
        Node {
            left: None,
            right: None,
        }
    } else {
        Node {
            left: Some(tree(bump, depth - 1)),
            right: Some(tree(bump, depth - 1)),
        }
    };
    bump.alloc(node)
}

fn check(n: &Node<'_>) -> u64 {
    1 + match (n.left, n.right) {
        (Some(l), Some(r)) => check(l) + check(r),
        _ => 0,
    }
}

/// A thread's scratch arena.
struct Trees {
    scratch: Bump,
}

impl Trees {
    fn new() -> Trees {
        Trees {
            scratch: Bump::new(),
        }
    }
}

impl binary_trees::Trees for Trees {
    fn build_check(&mut self, depth: u32) -> u64 {
        let c = check(tree(&self.scratch, depth));
        self.scratch.reset();
        c
    }
}

/// binary-trees with bumpalo.
pub fn binary_trees(quick: bool, threads: usize) -> Report {
    let long_lived = Bump::new();
    let long_lived = &long_lived;
    let lines = binary_trees::run_threads(
        binary_trees::max_depth(quick),
        threads,
        &mut Trees::new(),
        |_, depth| tree(long_lived, depth),
        |_, long| check(long),
        Trees::new,
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
struct BenchNode<'a> {
    left: Option<&'a mut BenchNode<'a>>,
    right: Option<&'a mut BenchNode<'a>>,
    // GCBench's payload, never read.
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

/// Top-down: stores new children into the already allocated `node`.
fn populate<'a>(bump: &'a Bump, depth: u32, node: &mut BenchNode<'a>) {
    if depth == 0 {
        return;
    }
    node.left = Some(bump.alloc(BenchNode::default()));
    node.right = Some(bump.alloc(BenchNode::default()));
    if let (Some(l), Some(r)) = (node.left.as_deref_mut(), node.right.as_deref_mut()) {
        populate(bump, depth - 1, l);
        populate(bump, depth - 1, r);
    }
}

/// Bottom-up: children first, then the parent.
fn make_tree(bump: &Bump, depth: u32) -> &mut BenchNode<'_> {
    if depth == 0 {
        bump.alloc(BenchNode::default())
    } else {
        let left = make_tree(bump, depth - 1);
        let right = make_tree(bump, depth - 1);
        bump.alloc(BenchNode {
            left: Some(left),
            right: Some(right),
            i: 0,
            j: 0,
        })
    }
}

fn count(n: &BenchNode<'_>) -> u64 {
    1 + [&n.left, &n.right]
        .into_iter()
        .flatten()
        .map(|c| count(c))
        .sum::<u64>()
}

impl gcbench::Trees for Trees {
    fn top_down(&mut self, depth: u32) {
        let root = self.scratch.alloc(BenchNode::default());
        populate(&self.scratch, depth, root);
        black_box(root);
        self.scratch.reset();
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        let tree = black_box(make_tree(&self.scratch, depth));
        let c = if walk { count(tree) } else { 0 };
        self.scratch.reset();
        c
    }
}

/// GCBench with bumpalo.
pub fn gcbench(quick: bool, threads: usize) -> Report {
    let long_lived = Bump::new();
    let long_lived = &long_lived;
    gcbench::run_threads(
        &gcbench::Params::new(quick),
        threads,
        &mut Trees::new(),
        |_, p| {
            let tree = long_lived.alloc(BenchNode::default());
            populate(long_lived, p.long_lived, tree);
            let array = long_lived.alloc_slice_fill_with(p.array, gcbench::array_value);
            (&*tree, &*array)
        },
        |_, (tree, array), i| (count(tree), array[i]),
        Trees::new,
    )
}

// ---------------------------------------------------------------------
// alloc
// ---------------------------------------------------------------------

/// One batch of the ring: allocates objects `start..end` in `arena`; the
/// object of index `i - RING` leaves when object `i` arrives, read from
/// `previous` (the batch before, in the other arena). Returns the new
/// batch and adds to `sum`.
fn batch<'a, const S: usize>(
    arena: &'a Bump,
    previous: Vec<&[u8; S]>,
    start: usize,
    end: usize,
    sum: &mut u64,
) -> Vec<&'a [u8; S]> {
    let mut current = Vec::with_capacity(alloc::RING);
    for i in start..end {
        if let Some(old) = previous.get(i - start) {
            *sum += alloc::leaving(old, i - alloc::RING);
        }
        current.push(&*arena.alloc(alloc::payload::<S>(i)));
    }
    current
}

/// The two arenas of the ring (module docs).
struct Arenas {
    even: Bump,
    odd: Bump,
}

impl alloc::Ring for Arenas {
    fn ring<const S: usize>(&mut self, n: usize) -> u64 {
        let mut sum = 0;
        let mut odd_batch: Vec<&[u8; S]> = Vec::new();
        let mut start = 0;
        while start < n {
            self.even.reset();
            let end = (start + alloc::RING).min(n);
            let even_batch = batch(&self.even, odd_batch, start, end, &mut sum);
            start = end;
            self.odd.reset();
            let end = (start + alloc::RING).min(n);
            odd_batch = batch(&self.odd, even_batch, start, end, &mut sum);
            start = end;
        }
        sum
    }
}

/// The allocation microbenchmark with bumpalo.
pub fn alloc(quick: bool) -> Report {
    alloc::run(
        &mut Arenas {
            even: Bump::new(),
            odd: Bump::new(),
        },
        quick,
    )
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------
//
// The arena idiom for a ring, as in alloc, with batches of a whole
// window: batch `b` (pushes `bW … bW + W − 1`) is allocated in arena
// `b % 2`, which is `reset()` first — it held batch `b − 2`, whose
// messages were all replaced during batch `b − 1`. Each message thus lives
// until it is replaced, and memory stays bounded (two windows at most).
// Each arena is created `with_capacity` for one window, so that a batch
// fits the chunk that `reset()` keeps. The reset, which frees a whole
// window at once, is timed with the first push of the batch.

/// One batch of pushes (numbered from `first`, in a window of `window`)
/// into `arena`, reset first;
/// the message replaced by push `i` is read from `previous` (the batch
/// before, in the other arena). Returns the new batch.
fn latency_batch<'a>(
    arena: &'a mut Bump,
    previous: Vec<&latency::Msg>,
    (first, window): (usize, usize),
    times: &mut [u32],
    sum: &mut u64,
) -> Vec<&'a latency::Msg> {
    let mut current = Vec::with_capacity(window);
    let t0 = Instant::now();
    arena.reset();
    let arena: &'a Bump = arena;
    for (k, t) in times.iter_mut().enumerate() {
        let i = first + k;
        let t_push = if k == 0 { t0 } else { Instant::now() };
        if let Some(old) = previous.get(k) {
            *sum += latency::leaving(old, i - window);
        }
        current.push(&*arena.alloc(latency::message(i)));
        *t = latency::ns(t_push.elapsed());
    }
    current
}

/// The two arenas of the window (above).
struct Windows {
    even: Bump,
    odd: Bump,
}

impl latency::Pushes for Windows {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        start.wait();
        let mut sum = 0;
        let mut odd_batch: Vec<&latency::Msg> = Vec::new();
        let mut batches = times.chunks_mut(window);
        let mut first = 0;
        while let Some(even_times) = batches.next() {
            let even_batch = latency_batch(
                &mut self.even,
                odd_batch,
                (first, window),
                even_times,
                &mut sum,
            );
            first += window;
            let Some(odd_times) = batches.next() else {
                break;
            };
            odd_batch = latency_batch(
                &mut self.odd,
                even_batch,
                (first, window),
                odd_times,
                &mut sum,
            );
            first += window;
        }
        sum
    }
}

/// The GC latency test with bumpalo.
pub fn latency(quick: bool, threads: usize) -> Report {
    let (window, _) = latency::share(quick, threads);
    latency::run_threads(quick, threads, || Windows {
        even: Bump::with_capacity(window * latency::MSG),
        odd: Bump::with_capacity(window * latency::MSG),
    })
}

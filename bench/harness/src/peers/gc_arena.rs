//! gc-arena 0.7: an incremental mark-sweep collector over one `Arena` per
//! workload, written as its README, its `linked_list` example and the VMs
//! built on it (piccolo, Ruffle) do.
//!
//! - Every object is a `Gc<'gc, T>` of a `#[derive(Collect)]` type. The
//!   arena's root (`Rootable![…]`) holds what must survive between
//!   `mutate` calls; everything else is garbage once the call returns.
//! - One `Arena::mutate` call per tree (or per 1,000 allocations in
//!   alloc): no collection runs inside it. After each call, as piccolo
//!   does, the arena pays its allocation debt with `collect_debt()` once
//!   the debt exceeds a granularity of 1,024 (the docs: "it may be faster
//!   to only call this method when the allocation debt is above some
//!   threshold"). Default pacing (`Pacing::DEFAULT`); since 0.7 the debt
//!   counts `Gc` allocations, not bytes, so the granularity is 1,024
//!   objects.
//! - GCBench's nodes keep their children in `Lock` cells; a top-down
//!   store is `unlock!(Gc::write(mc, node), …).set(…)`: `Gc::write` is
//!   the write barrier.
//! - alloc: the ring is the root (a `Vec` of 1,000 `Option<Gc<[u8; S]>>`)
//!   written through `mutate_root`.
//! - latency: the window is the root likewise (`Vec<Option<Gc<[u8;
//!   1024]>>>`), one `mutate_root` per 1,000 pushes, the push that ends a
//!   call timed together with the `collect_debt` after it.
//! - Single-threaded: the crate has no multi-threaded arenas.
//!
//! Metrics: `max_pause_ns` (the longest `collect_debt` call: the
//! collector runs only there, and nothing else runs meanwhile) and
//! `pause_total_ns` (all of them); latency adds `p99_pause_ns` over the
//! `collect_debt` calls.

use crate::{Metric, Report, alloc, binary_trees, gcbench, latency};
use ::gc_arena::arena::Root;
use ::gc_arena::barrier::unlock;
use ::gc_arena::{Arena, Collect, Gc, Lock, Mutation, Rootable};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Allocation debt above which the arena collects (piccolo's
/// `COLLECTOR_GRANULARITY`).
const COLLECTOR_GRANULARITY: f64 = 1024.0;

/// An arena and the time spent collecting in it.
struct Paced<R>
where
    R: for<'a> Rootable<'a>,
    for<'a> Root<'a, R>: Sized + Collect<'a>,
{
    arena: Arena<R>,
    pause_max: Duration,
    pause_total: Duration,
}

impl<R> Paced<R>
where
    R: for<'a> Rootable<'a>,
    for<'a> Root<'a, R>: Sized + Collect<'a>,
{
    fn new(arena: Arena<R>) -> Self {
        Paced {
            arena,
            pause_max: Duration::ZERO,
            pause_total: Duration::ZERO,
        }
    }

    /// Pays the allocation debt, if it is worth it; returns the pause.
    fn collect(&mut self) -> Option<Duration> {
        if self.arena.metrics().allocation_debt() > COLLECTOR_GRANULARITY {
            let t0 = Instant::now();
            self.arena.collect_debt();
            let pause = t0.elapsed();
            self.pause_max = self.pause_max.max(pause);
            self.pause_total += pause;
            Some(pause)
        } else {
            None
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            Metric::ns("max_pause_ns", self.pause_max),
            Metric::ns("pause_total_ns", self.pause_total),
        ]
    }
}

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

#[derive(Collect)]
#[collect(no_drop)]
struct Node<'gc> {
    left: Option<Gc<'gc, Node<'gc>>>,
    right: Option<Gc<'gc, Node<'gc>>>,
}

fn tree<'gc>(mc: &Mutation<'gc>, depth: u32) -> Gc<'gc, Node<'gc>> {
    let node = if depth == 0 {
        Node {
            left: None,
            right: None,
        }
    } else {
        Node {
            left: Some(tree(mc, depth - 1)),
            right: Some(tree(mc, depth - 1)),
        }
    };
    Gc::new(mc, node)
}

fn check(n: &Node<'_>) -> u64 {
    1 + match (n.left, n.right) {
        (Some(l), Some(r)) => check(&l) + check(&r),
        _ => 0,
    }
}

/// The arena; its root is the long-lived tree, once built.
type TreeRoot = Rootable![Option<Gc<'_, Node<'_>>>];

impl binary_trees::Trees for Paced<TreeRoot> {
    fn build_check(&mut self, depth: u32) -> u64 {
        let c = self.arena.mutate(|mc, _| check(&tree(mc, depth)));
        self.collect();
        c
    }
}

/// binary-trees on gc-arena.
pub fn binary_trees(quick: bool) -> Report {
    let mut trees = Paced::new(Arena::<TreeRoot>::new(|_| None));
    let lines = binary_trees::run(
        binary_trees::max_depth(quick),
        &mut trees,
        |t, depth| {
            t.arena
                .mutate_root(|mc, root| *root = Some(tree(mc, depth)));
            t.collect();
        },
        |t, ()| t.arena.mutate(|_, root| root.map_or(0, |n| check(&n))),
    );
    Report {
        lines,
        metrics: trees.metrics(),
    }
}

// ---------------------------------------------------------------------
// GCBench
// ---------------------------------------------------------------------

#[derive(Collect)]
#[collect(no_drop)]
struct BenchNode<'gc> {
    left: Lock<Option<Gc<'gc, BenchNode<'gc>>>>,
    right: Lock<Option<Gc<'gc, BenchNode<'gc>>>>,
    // GCBench's payload, never read.
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

impl<'gc> BenchNode<'gc> {
    fn new(left: Option<Gc<'gc, Self>>, right: Option<Gc<'gc, Self>>) -> Self {
        BenchNode {
            left: Lock::new(left),
            right: Lock::new(right),
            i: 0,
            j: 0,
        }
    }
}

/// Top-down: stores new children into the already allocated `node`.
fn populate<'gc>(mc: &Mutation<'gc>, depth: u32, node: Gc<'gc, BenchNode<'gc>>) {
    if depth == 0 {
        return;
    }
    let left = Gc::new(mc, BenchNode::new(None, None));
    let right = Gc::new(mc, BenchNode::new(None, None));
    let node = Gc::write(mc, node);
    unlock!(node, BenchNode, left).set(Some(left));
    unlock!(node, BenchNode, right).set(Some(right));
    populate(mc, depth - 1, left);
    populate(mc, depth - 1, right);
}

/// Bottom-up: children first, then the parent.
fn make_tree<'gc>(mc: &Mutation<'gc>, depth: u32) -> Gc<'gc, BenchNode<'gc>> {
    if depth == 0 {
        Gc::new(mc, BenchNode::new(None, None))
    } else {
        let left = make_tree(mc, depth - 1);
        let right = make_tree(mc, depth - 1);
        Gc::new(mc, BenchNode::new(Some(left), Some(right)))
    }
}

fn count(n: &BenchNode<'_>) -> u64 {
    1 + [n.left.get(), n.right.get()]
        .into_iter()
        .flatten()
        .map(|c| count(&c))
        .sum::<u64>()
}

/// The long-lived structures.
#[derive(Collect)]
#[collect(no_drop)]
struct LongLived<'gc> {
    tree: Gc<'gc, BenchNode<'gc>>,
    array: Gc<'gc, Vec<f64>>,
}

/// The arena; its root is the long-lived structures, once built.
type BenchRoot = Rootable![Option<LongLived<'_>>];

impl gcbench::Trees for Paced<BenchRoot> {
    fn top_down(&mut self, depth: u32) {
        self.arena.mutate(|mc, _| {
            let root = Gc::new(mc, BenchNode::new(None, None));
            populate(mc, depth, root);
        });
        self.collect();
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        let c = self.arena.mutate(|mc, _| {
            let tree = make_tree(mc, depth);
            if walk { count(&tree) } else { 0 }
        });
        self.collect();
        c
    }
}

/// GCBench on gc-arena.
pub fn gcbench(quick: bool) -> Report {
    let mut trees = Paced::new(Arena::<BenchRoot>::new(|_| None));
    let mut report = gcbench::run(
        &gcbench::Params::new(quick),
        &mut trees,
        |t, p| {
            t.arena.mutate_root(|mc, root| {
                let tree = Gc::new(mc, BenchNode::new(None, None));
                populate(mc, p.long_lived, tree);
                let array = Gc::new(mc, gcbench::array(p.array));
                *root = Some(LongLived { tree, array });
            });
            t.collect();
        },
        |t, (), i| {
            t.arena.mutate(|_, root| {
                root.as_ref()
                    .map_or((0, f64::NAN), |l| (count(&l.tree), l.array[i]))
            })
        },
    );
    report.metrics.extend(trees.metrics());
    report
}

// ---------------------------------------------------------------------
// alloc
// ---------------------------------------------------------------------

/// The ring of live objects: the arena's root.
#[derive(Collect)]
#[collect(no_drop)]
struct Ring<'gc, const S: usize> {
    slots: Vec<Option<Gc<'gc, [u8; S]>>>,
}

/// Pause bookkeeping across the sizes (one arena per size).
#[derive(Default)]
struct Rings {
    pause_max: Duration,
    pause_total: Duration,
}

impl alloc::Ring for Rings {
    fn ring<const S: usize>(&mut self, n: usize) -> u64 {
        let mut ring = Paced::new(Arena::<Rootable![Ring<'_, S>]>::new(|_| Ring {
            slots: vec![None; alloc::RING],
        }));
        let mut sum = 0;
        let mut start = 0;
        while start < n {
            let end = (start + alloc::RING).min(n);
            sum += ring.arena.mutate_root(|mc, ring| {
                let mut sum = 0;
                for i in start..end {
                    let new = Gc::new(mc, alloc::payload::<S>(i));
                    if let Some(old) = ring.slots[i % alloc::RING].replace(new) {
                        sum += alloc::leaving(&old, i - alloc::RING);
                    }
                }
                sum
            });
            ring.collect();
            start = end;
        }
        self.pause_max = self.pause_max.max(ring.pause_max);
        self.pause_total += ring.pause_total;
        sum
    }
}

/// The allocation microbenchmark on gc-arena.
pub fn alloc(quick: bool) -> Report {
    let mut rings = Rings::default();
    let mut report = alloc::run(&mut rings, quick);
    report.metrics.extend([
        Metric::ns("max_pause_ns", rings.pause_max),
        Metric::ns("pause_total_ns", rings.pause_total),
    ]);
    report
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------

/// The window of live messages: the arena's root.
#[derive(Collect)]
#[collect(no_drop)]
struct Window<'gc> {
    slots: Vec<Option<Gc<'gc, latency::Msg>>>,
}

/// Pushes per `mutate_root` call.
const PUSHES_PER_MUTATE: usize = 1000;

/// Push `i`: reads back the message it replaces, stores a new one.
#[inline(always)]
fn push<'gc>(mc: &Mutation<'gc>, w: &mut Window<'gc>, i: usize) -> u64 {
    let len = w.slots.len();
    let new = Gc::new(mc, latency::message(i));
    w.slots[i % len]
        .replace(new)
        .map_or(0, |old| latency::leaving(&old, i - len))
}

/// The arena and every `collect_debt` pause.
struct Windows {
    pauses: Vec<Duration>,
    pause_total: Duration,
}

impl latency::Pushes for Windows {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        let mut arena = Paced::new(Arena::<Rootable![Window<'_>]>::new(|_| Window {
            slots: vec![None; window],
        }));
        start.wait();
        let mut sum = 0;
        for (b, batch) in times.chunks_mut(PUSHES_PER_MUTATE).enumerate() {
            let Some((last, rest)) = batch.split_last_mut() else {
                continue;
            };
            let first = b * PUSHES_PER_MUTATE;
            let (part, t_last) = arena.arena.mutate_root(|mc, w| {
                let mut part = 0;
                for (k, t) in rest.iter_mut().enumerate() {
                    part += latency::timed(t, || push(mc, w, first + k));
                }
                let t0 = Instant::now();
                part += push(mc, w, first + rest.len());
                (part, t0)
            });
            if let Some(pause) = arena.collect() {
                self.pauses.push(pause);
            }
            *last = latency::ns(t_last.elapsed());
            sum += part;
        }
        self.pause_total += arena.pause_total;
        sum
    }
}

/// The GC latency test on gc-arena.
pub fn latency(quick: bool) -> Report {
    let mut windows = Windows {
        pauses: Vec::new(),
        pause_total: Duration::ZERO,
    };
    let mut report = latency::run(quick, &mut windows);
    windows.pauses.sort_unstable();
    report.metrics.extend([
        Metric::ns(
            "max_pause_ns",
            windows.pauses.last().copied().unwrap_or_default(),
        ),
        Metric::ns("p99_pause_ns", latency::quantile(&windows.pauses, 0.99)),
        Metric::ns("pause_total_ns", windows.pause_total),
    ]);
    report
}

//! spanheap (this repository's `runtime/` crate), written as
//! `examples/src/binary_trees.rs` and `examples/src/gc_latency.rs` use it.
//!
//! - One [`Heap`] with the default settings (GOGC=100, background
//!   sweeping) per run; one [`Mutator`] per thread.
//! - Trees: each tree is built, walked and dropped inside one
//!   `Mutator::scope`, and the scope is left after it, so a collection can
//!   finish between any two trees (collections run concurrently, but need
//!   each mutator's clean point — leaving a scope or `Scope::safepoint` —
//!   to finish). Long-lived structures are held by [`Root`]s.
//! - GCBench's nodes keep their children in [`GcCell`]s: a top-down store
//!   is `GcCell::set`, which runs the write barrier. The long-lived array
//!   is a GC object holding a `Vec<f64>` (spanheap has no variable-length
//!   GC arrays; the `Vec`'s buffer is on the system heap).
//! - alloc: the payloads are `[u8; S]`, pointer-free, so headerless noscan
//!   objects; the ring is one rooted object with 1,000 `GcCell` slots (as
//!   `gc_latency.rs`'s window), and the whole loop is one scope with a
//!   `Scope::safepoint()` after every 1,000 allocations.
//!
//! - latency: as `gc_latency.rs` (the section at the end of this file).
//!
//! Metrics: `gc_cycles` (`GcStats::num_gc`), `max_pause_ns`
//! (`GcStats::pause_max`, the longest stop-the-world critical section) and
//! `pause_total_ns`; latency adds `p99_pause_ns` (over `GcStats::pauses`,
//! the last 256 pauses, two per cycle).

use crate::{Metric, Report, alloc, binary_trees, gcbench, latency};
use ::spanheap::{Gc, GcCell, Heap, Mutator, Rebrand, Root, Scope, Trace};
use std::sync::Barrier;
use std::time::Instant;

/// A heap with the default settings.
fn new_heap() -> Heap {
    Heap::new().expect("spanheap: cannot build a heap")
}

/// Allocates `value`; an allocation failure (out of memory) ends the run.
#[inline(always)]
fn new<'gc, T>(cx: &'gc Scope<'_>, value: T) -> Gc<'gc, T>
where
    T: Trace + Send + Rebrand<At<'gc> = T> + 'gc,
{
    cx.alloc(value).expect("spanheap allocation failed")
}

/// The collector's numbers.
fn gc_metrics(heap: &Heap) -> Vec<Metric> {
    let st = heap.stats();
    vec![
        Metric::int("gc_cycles", st.num_gc),
        Metric::ns("max_pause_ns", st.pause_max),
        Metric::ns("pause_total_ns", st.pause_total),
    ]
}

// ---------------------------------------------------------------------
// binary-trees
// ---------------------------------------------------------------------

#[derive(Trace)]
struct Node<'gc> {
    left: Option<Gc<'gc, Node<'gc>>>,
    right: Option<Gc<'gc, Node<'gc>>>,
}

fn tree<'gc>(cx: &'gc Scope<'_>, depth: u32) -> Gc<'gc, Node<'gc>> {
    let node = if depth == 0 {
        Node {
            left: None,
            right: None,
        }
    } else {
        Node {
            left: Some(tree(cx, depth - 1)),
            right: Some(tree(cx, depth - 1)),
        }
    };
    new(cx, node)
}

fn check(n: &Node<'_>) -> u64 {
    1 + match (n.left, n.right) {
        (Some(l), Some(r)) => check(&l) + check(&r),
        _ => 0,
    }
}

/// A thread's trees: its mutator.
struct Trees {
    m: Mutator,
}

impl binary_trees::Trees for Trees {
    fn build_check(&mut self, depth: u32) -> u64 {
        self.m.scope(|cx| check(&tree(cx, depth)))
    }
}

/// binary-trees on spanheap.
pub fn binary_trees(quick: bool, threads: usize) -> Report {
    let heap = new_heap();
    let mut main = Trees { m: heap.mutator() };
    let lines = binary_trees::run_threads(
        binary_trees::max_depth(quick),
        threads,
        &mut main,
        |t, depth| t.m.scope(|cx| cx.root(tree(cx, depth))),
        |t, long: &Root<Node<'static>>| t.m.scope(|cx| check(&long.get(cx))),
        || Trees { m: heap.mutator() },
    );
    Report {
        lines,
        metrics: gc_metrics(&heap),
    }
}

// ---------------------------------------------------------------------
// GCBench
// ---------------------------------------------------------------------

#[derive(Trace)]
struct BenchNode<'gc> {
    left: GcCell<'gc, Option<Gc<'gc, BenchNode<'gc>>>>,
    right: GcCell<'gc, Option<Gc<'gc, BenchNode<'gc>>>>,
    // GCBench's payload, never read.
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

impl<'gc> BenchNode<'gc> {
    fn new(left: Option<Gc<'gc, Self>>, right: Option<Gc<'gc, Self>>) -> Self {
        BenchNode {
            left: GcCell::new(left),
            right: GcCell::new(right),
            i: 0,
            j: 0,
        }
    }
}

/// Top-down: stores new children into the already allocated `node`.
fn populate<'gc>(cx: &'gc Scope<'_>, depth: u32, node: Gc<'gc, BenchNode<'gc>>) {
    if depth == 0 {
        return;
    }
    let left = new(cx, BenchNode::new(None, None));
    let right = new(cx, BenchNode::new(None, None));
    node.left.set(cx, Some(left));
    node.right.set(cx, Some(right));
    populate(cx, depth - 1, left);
    populate(cx, depth - 1, right);
}

/// Bottom-up: children first, then the parent.
fn make_tree<'gc>(cx: &'gc Scope<'_>, depth: u32) -> Gc<'gc, BenchNode<'gc>> {
    if depth == 0 {
        new(cx, BenchNode::new(None, None))
    } else {
        let left = make_tree(cx, depth - 1);
        let right = make_tree(cx, depth - 1);
        new(cx, BenchNode::new(Some(left), Some(right)))
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
struct LongLived {
    tree: Root<BenchNode<'static>>,
    array: Root<Vec<f64>>,
}

impl gcbench::Trees for Trees {
    fn top_down(&mut self, depth: u32) {
        self.m.scope(|cx| {
            let root = new(cx, BenchNode::new(None, None));
            populate(cx, depth, root);
        })
    }

    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64 {
        self.m.scope(|cx| {
            let tree = make_tree(cx, depth);
            if walk { count(&tree) } else { 0 }
        })
    }
}

/// GCBench on spanheap.
pub fn gcbench(quick: bool, threads: usize) -> Report {
    let heap = new_heap();
    let mut main = Trees { m: heap.mutator() };
    let mut report = gcbench::run_threads(
        &gcbench::Params::new(quick),
        threads,
        &mut main,
        |t, p| {
            t.m.scope(|cx| {
                let tree = new(cx, BenchNode::new(None, None));
                populate(cx, p.long_lived, tree);
                let array = new(cx, gcbench::array(p.array));
                LongLived {
                    tree: cx.root(tree),
                    array: cx.root(array),
                }
            })
        },
        |t, long, i| {
            t.m.scope(|cx| (count(&long.tree.get(cx)), long.array.get(cx)[i]))
        },
        || Trees { m: heap.mutator() },
    );
    report.metrics.extend(gc_metrics(&heap));
    report
}

// ---------------------------------------------------------------------
// alloc
// ---------------------------------------------------------------------

/// The ring of live objects.
#[derive(Trace)]
struct Ring<'gc, const S: usize> {
    slots: Vec<GcCell<'gc, Option<Gc<'gc, [u8; S]>>>>,
}

impl alloc::Ring for Trees {
    fn ring<const S: usize>(&mut self, n: usize) -> u64 {
        let ring: Root<Ring<'static, S>> = self.m.scope(|cx| {
            let slots = (0..alloc::RING).map(|_| GcCell::new(None)).collect();
            cx.root(new(cx, Ring { slots }))
        });
        self.m.scope(|cx| {
            let mut sum = 0;
            let mut start = 0;
            while start < n {
                let end = (start + alloc::RING).min(n);
                let live = Gc::get_ref(ring.get(cx));
                for i in start..end {
                    let slot = &live.slots[i % alloc::RING];
                    if let Some(old) = slot.get() {
                        sum += alloc::leaving(&old, i - alloc::RING);
                    }
                    slot.set(cx, Some(new(cx, alloc::payload::<S>(i))));
                }
                cx.safepoint();
                start = end;
            }
            sum
        })
    }
}

/// The allocation microbenchmark on spanheap.
pub fn alloc(quick: bool) -> Report {
    let heap = new_heap();
    let mut report = alloc::run(&mut Trees { m: heap.mutator() }, quick);
    report.metrics.extend(gc_metrics(&heap));
    report
}

// ---------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------
//
// As `examples/src/gc_latency.rs`: the window is one rooted object whose
// slots are `GcCell`s; the messages (`[u8; 1024]`, pointer-free) are
// headerless noscan objects. Each thread's whole run is one
// `Mutator::scope` with a `Scope::safepoint()` after every 1,000 pushes;
// the push that ends with a safepoint is timed together with it.
// Collections run concurrently; their stop-the-world sections are
// `GcStats::pauses`.

/// The window of live messages.
#[derive(Trace)]
struct Window<'gc> {
    slots: Vec<GcCell<'gc, Option<Gc<'gc, latency::Msg>>>>,
}

/// Pushes between two safepoints.
const SAFEPOINT_EVERY: usize = 1000;

/// Push `i`: reads back the message it replaces, stores a new one.
#[inline(always)]
fn push<'gc>(cx: &'gc Scope<'_>, w: &Window<'gc>, i: usize) -> u64 {
    let len = w.slots.len();
    let slot = &w.slots[i % len];
    let left = slot.get().map_or(0, |old| latency::leaving(&old, i - len));
    slot.set(cx, Some(new(cx, latency::message(i))));
    left
}

impl latency::Pushes for Trees {
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64 {
        let root: Root<Window<'static>> = self.m.scope(|cx| {
            let slots = (0..window).map(|_| GcCell::new(None)).collect();
            cx.root(new(cx, Window { slots }))
        });
        start.wait();
        self.m.scope(|cx| {
            let mut sum = 0;
            let mut i = 0;
            while i < times.len() {
                let last = (i + SAFEPOINT_EVERY).min(times.len()) - 1;
                let t_last = {
                    let w = Gc::get_ref(root.get(cx));
                    for (j, t) in times.iter_mut().enumerate().take(last).skip(i) {
                        sum += latency::timed(t, || push(cx, w, j));
                    }
                    let t0 = Instant::now();
                    sum += push(cx, w, last);
                    t0
                };
                cx.safepoint();
                times[last] = latency::ns(t_last.elapsed());
                i = last + 1;
            }
            sum
        })
    }
}

/// The GC latency test on spanheap.
pub fn latency(quick: bool, threads: usize) -> Report {
    let heap = new_heap();
    let mut report = latency::run_threads(quick, threads, || Trees { m: heap.mutator() });
    report.metrics.extend(gc_metrics(&heap));
    let mut pauses = heap.stats().pauses;
    pauses.sort_unstable();
    report
        .metrics
        .push(Metric::ns("p99_pause_ns", latency::quantile(&pauses, 0.99)));
    report
}

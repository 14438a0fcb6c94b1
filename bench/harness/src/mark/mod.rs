//! The `mark` workload: how fast a collector traces a large, fully live,
//! pointer-linked heap — the throughput of one forced full collection —
//! and the driver shared by its Rust peers (spanheap, gc-arena, rust-gc,
//! dumpster). The Go and bdwgc versions are `../go/mark.go` and
//! `../c/mark.c`; the pointer-chase probe that says what this machine
//! allows is [`probe`].
//!
//! # The live heap
//!
//! `N = heap_mib × 2^20 / 32` nodes (`heap_mib` from `--heap-mib`, default
//! 64; `--quick`: 4 unless `--heap-mib` is given). A node is 32 bytes of
//! payload as the user writes it: two nullable child pointers `left`,
//! `right` and two `u64` words `value`, `pad` (`pad` is 0 and never read).
//! The graph is a complete binary tree in array numbering: node `k`'s
//! children are `2k + 1` and `2k + 2` when they are `< N`, and node `k`'s
//! `value` is `k`.
//!
//! # Shapes: the same tree, two memory layouts
//!
//! The nodes are allocated one at a time, and the `i`-th allocation
//! (from 0) is node `order[i]`:
//! - `sequential`: `order[i] = i` (the heap holds the nodes in number
//!   order: a parent's children are near it, the tree is laid out
//!   breadth-first);
//! - `random`: `order` is a uniformly shuffled `0..N`, so consecutive
//!   numbers are scattered over the whole heap. The shuffle is exact and
//!   shared by every language: a SplitMix64 generator ([`SplitMix64`],
//!   seed [`SEED`]) drives a Fisher–Yates shuffle of `order = [0, 1, …,
//!   N-1]`: for `i` from `N-1` down to 1, `j = below(i + 1)`, swap
//!   `order[i]` and `order[j]`, where `below(m) = (next() × m) >> 64` in
//!   128-bit arithmetic (Lemire's multiply-shift, no rejection step).
//!
//! The layout changes only where the nodes sit, never the results.
//!
//! # Build
//!
//! 1. A temporary array of `N` node handles, indexed by node number, held
//!    the peer's way (a rooted GC object, a slice, a `Vec` of rooted
//!    handles), stays reachable while the tree is built.
//! 2. For `i` in `0..N`: allocate node `order[i]` with `value =
//!    order[i]`, no children, into slot `order[i]` of the array.
//! 3. For `k` in `0..N`: store the children `2k + 1`, `2k + 2` (those
//!    `< N`) into node `k` — a field store into an object already in the
//!    heap, each peer's idiom for mutating a field (spanheap `GcCell::set`,
//!    gc-arena `Lock` through `Gc::write`, rust-gc `GcCell::borrow_mut`,
//!    dumpster `RefCell::borrow_mut`, a plain store in Go and C).
//! 4. Keep only node 0 rooted, and drop (or clear) the temporary array:
//!    the collector must follow the pointers to find the other nodes.
//!
//! Collections the build itself triggers run under each peer's default
//! settings (they are not measured).
//!
//! # Measurement
//!
//! One *preliminary* full collection (it frees the temporary array and
//! whatever the build left, and finishes the sweeping of earlier cycles,
//! so the heap is steady), then the *measured* full collection, timed
//! around the call. Exception: dumpster, a cycle collector over reference
//! counts, does no work for an object that was never a candidate (its
//! count decremented since the last collection); dropping the array makes
//! every node a candidate once, and the first collection after that is
//! the one that traces them all — it is the measured one, with no
//! preliminary collection.
//!
//! Then the tree is walked from the root, summing `value`, which proves
//! no node was lost: the sum is `N(N-1)/2`.
//!
//! Metrics (stderr):
//! - `collect_ms`: wall time of the measured collection call;
//! - `mark_ms`: the mark phase of that collection where the peer reports
//!   it separately (spanheap: `GcStats::last_mark`; bdwgc: from
//!   `GC_EVENT_MARK_START` to `GC_EVENT_MARK_END`);
//! - `heap_bytes`: the peer's own count of live heap bytes after it, if it
//!   has one (spanheap: `GcStats::heap_marked`, headers included; rust-gc:
//!   `gc::stats().bytes_allocated`; Go: `MemStats.HeapAlloc`; bdwgc:
//!   `GC_get_memory_use()`);
//! - `mb_per_s_per_worker`: nominal live bytes `N × 32`, in MB (10^6
//!   bytes), over `mark_ms` (or `collect_ms` where there is no `mark_ms`)
//!   in seconds, divided by the marker workers;
//! - `mark_workers`: the workers asked for; `gc_cycles` (where the peer
//!   counts them); `build_ms` (steps 1–4); `walk_ms`;
//! - `layout_check`: `Σ (i + 1) × order[i]` (wrapping `u64`), the same in
//!   every language — proof that the Go and C versions laid the heap out
//!   in the same order.
//!
//! # Result line (stdout)
//!
//! `mark {shape} heap_mib {M} nodes {N} sum {S}` — [`expected`].
//!
//! # Workers
//!
//! `--threads W` (1 or 2 in the published set) is the number of *marker
//! workers*: spanheap `HeapBuilder::mark_workers(W)` (the collector thread
//! included; spanheap marks heaps under 8 MiB with one thread whatever the
//! setting); Go `runtime.GOMAXPROCS(W)`; bdwgc `GC_set_markers_count(W)`
//! before `GC_INIT()`. gc-arena, rust-gc and dumpster mark on the calling
//! thread only: `W > 1` exits 3. `box`, `rc`, `bumpalo` and `mimalloc`
//! have no collector: they exit 3.

pub mod dumpster;
pub mod gc_arena;
pub mod probe;
pub mod rust_gc;
pub mod spanheap;

use crate::{Metric, Options, Peer, Report, Unsupported, Workload};
use std::time::{Duration, Instant};

/// Bytes of one node's payload.
pub const NODE_BYTES: usize = 32;

/// `--heap-mib` without `--quick`.
pub const DEFAULT_HEAP_MIB: usize = 64;

/// `--heap-mib` with `--quick`.
pub const QUICK_HEAP_MIB: usize = 4;

/// The seed of the layout's SplitMix64 (`"mark"` in ASCII).
pub const SEED: u64 = 0x6d61_726b;

/// The memory layout of the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// The `i`-th allocated node is node `i`.
    #[default]
    Sequential,
    /// The `i`-th allocated node is node `order[i]`, a fixed shuffle.
    Random,
}

impl Shape {
    /// Both shapes.
    pub const ALL: [Shape; 2] = [Shape::Sequential, Shape::Random];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Sequential => "sequential",
            Shape::Random => "random",
        }
    }

    /// The shape with command-line name `s`.
    pub fn parse(s: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The heap size a run uses, in MiB.
pub fn heap_mib(opts: &Options) -> usize {
    match opts.heap_mib {
        Some(m) => m,
        None if opts.quick => QUICK_HEAP_MIB,
        None => DEFAULT_HEAP_MIB,
    }
}

/// The number of nodes of a `heap_mib` heap.
pub fn node_count(heap_mib: usize) -> usize {
    heap_mib * (1 << 20) / NODE_BYTES
}

/// The result line.
pub fn result_line(shape: Shape, heap_mib: usize, nodes: usize, sum: u64) -> String {
    format!(
        "mark {} heap_mib {heap_mib} nodes {nodes} sum {sum}",
        shape.name()
    )
}

/// The lines a correct run prints: the sum of `0..N` is `N(N-1)/2`.
pub fn expected(shape: Shape, heap_mib: usize) -> Vec<String> {
    let n = node_count(heap_mib) as u64;
    vec![result_line(
        shape,
        heap_mib,
        n as usize,
        n * n.saturating_sub(1) / 2,
    )]
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014; the constants of Vigna's `splitmix64.c`).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is derived from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..m` (`m > 0`): the high word of `next × m`.
    pub fn below(&mut self, m: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(m)) >> 64) as u64
    }
}

/// The allocation order: the `i`-th allocated node is node `order[i]`
/// (module docs). Node numbers fit in `u32` for heaps up to 128 GiB.
pub fn alloc_order(shape: Shape, n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n)
        .map(|i| u32::try_from(i).expect("mark: more than 2^32 nodes"))
        .collect();
    if shape == Shape::Random {
        let mut rng = SplitMix64::new(SEED);
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    order
}

/// `Σ (i + 1) × order[i]`, wrapping: the `layout_check` metric.
pub fn layout_check(order: &[u32]) -> u64 {
    order.iter().enumerate().fold(0u64, |acc, (i, &k)| {
        acc.wrapping_add((i as u64 + 1).wrapping_mul(u64::from(k)))
    })
}

/// The children of node `k` in a tree of `n` nodes.
#[inline(always)]
pub fn children(k: usize, n: usize) -> (Option<usize>, Option<usize>) {
    let l = 2 * k + 1;
    ((l < n).then_some(l), (l + 1 < n).then_some(l + 1))
}

/// What a peer's collector reports about the measured collection.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// The mark phase, where the peer times it separately.
    pub mark: Option<Duration>,
    /// Live heap bytes after the collection, by the peer's own count.
    pub heap_bytes: Option<u64>,
    /// Completed collections so far.
    pub gc_cycles: Option<u64>,
}

/// One Rust peer of the mark workload.
pub trait MarkPeer {
    /// Builds the tree (module docs, steps 1–4): node `order[i]` is the
    /// `i`-th allocation; afterwards only node 0 is rooted.
    fn build(&mut self, order: &[u32]);

    /// Whether a preliminary collection runs before the measured one (all
    /// but dumpster: module docs).
    fn preliminary(&self) -> bool {
        true
    }

    /// One full collection, returning when it is done.
    fn collect(&mut self);

    /// The collector's numbers, read after the measured collection.
    fn collected(&mut self) -> Collected;

    /// Walks the tree from the root, summing `value`.
    fn sum(&mut self) -> u64;
}

/// Runs the workload on `p` (module docs) with `workers` marker workers.
pub fn drive<P: MarkPeer>(p: &mut P, shape: Shape, heap_mib: usize, workers: usize) -> Report {
    let n = node_count(heap_mib);
    let order = alloc_order(shape, n);
    let check = layout_check(&order);
    let t0 = Instant::now();
    p.build(&order);
    let build = t0.elapsed();
    drop(order);
    if p.preliminary() {
        p.collect();
    }
    let t0 = Instant::now();
    p.collect();
    let collect = t0.elapsed();
    let c = p.collected();
    let t0 = Instant::now();
    let sum = p.sum();
    let walk = t0.elapsed();

    let mut metrics = vec![Metric::ms("collect_ms", collect)];
    if let Some(mark) = c.mark {
        metrics.push(Metric::ms("mark_ms", mark));
    }
    if let Some(b) = c.heap_bytes {
        metrics.push(Metric::int("heap_bytes", b));
    }
    let secs = c.mark.unwrap_or(collect).as_secs_f64();
    let mbps = (n * NODE_BYTES) as f64 / 1e6 / secs.max(1e-9) / workers as f64;
    metrics.push(Metric::float("mb_per_s_per_worker", mbps));
    metrics.push(Metric::int("mark_workers", workers as u64));
    if let Some(g) = c.gc_cycles {
        metrics.push(Metric::int("gc_cycles", g));
    }
    metrics.push(Metric::ms("build_ms", build));
    metrics.push(Metric::ms("walk_ms", walk));
    metrics.push(Metric::int("layout_check", check));
    Report {
        lines: vec![result_line(shape, heap_mib, n, sum)],
        metrics,
    }
}

/// Runs `mark` on `peer` with `opts` (`--threads` = marker workers).
///
/// # Errors
/// [`Unsupported`] for a peer without a collector, and for `W > 1` on a
/// peer that marks on one thread.
pub fn run(peer: Peer, opts: &Options) -> Result<Report, Unsupported> {
    let unsupported = |why: &str| Unsupported {
        peer,
        workload: Workload::Mark,
        why: why.to_owned(),
    };
    let workers = opts.threads.max(1);
    let (shape, mib) = (opts.shape, heap_mib(opts));
    match peer {
        Peer::Box | Peer::Rc | Peer::Bumpalo | Peer::Mimalloc => {
            Err(unsupported("has no collector"))
        }
        Peer::Spanheap => Ok(drive(
            &mut spanheap::Tree::new(workers),
            shape,
            mib,
            workers,
        )),
        Peer::GcArena | Peer::RustGc | Peer::Dumpster if workers > 1 => {
            Err(unsupported("marks on one thread (no parallel marking)"))
        }
        Peer::GcArena => Ok(drive(&mut gc_arena::Tree::default(), shape, mib, 1)),
        Peer::RustGc => Ok(drive(&mut rust_gc::Tree::default(), shape, mib, 1)),
        Peer::Dumpster => Ok(drive(&mut dumpster::Tree::default(), shape, mib, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // splitmix64.c seeded with 1234567: its first outputs.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn orders_are_permutations() {
        for shape in Shape::ALL {
            let mut o = alloc_order(shape, 1000);
            o.sort_unstable();
            assert!(o.iter().enumerate().all(|(i, &k)| k as usize == i));
        }
        assert_eq!(alloc_order(Shape::Sequential, 4), [0, 1, 2, 3]);
        assert_ne!(
            alloc_order(Shape::Random, 64),
            alloc_order(Shape::Sequential, 64)
        );
    }

    #[test]
    fn expected_sums() {
        assert_eq!(
            expected(Shape::Random, 4),
            ["mark random heap_mib 4 nodes 131072 sum 8589869056"]
        );
    }
}

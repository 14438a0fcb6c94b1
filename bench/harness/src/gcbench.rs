//! GCBench (John Ellis and Pete Kovac, modified by Hans Boehm): the driver
//! shared by every peer.
//!
//! Nodes are `{left, right, i, j}` (two pointers, two 32-bit integers).
//! A tree of depth `d` has `treeSize(d) = 2^(d+1) - 1` nodes. Two ways of
//! building one:
//! - **top-down** (`Populate`): allocate an empty node, then allocate its
//!   two children empty, store them into its fields and populate each.
//!   Every pointer is stored into an object that is already in the heap:
//!   for a collector, the write-barrier case;
//! - **bottom-up** (`MakeTree`): build both subtrees first, then allocate
//!   the parent with them (initialising stores only).
//!
//! The run, with stretch depth `S` = 18, long-lived depth `L` = 16, array
//! size `A` = 500,000 and depths 4 to 16 (`--quick`: 12, 10, 5,000 and 4
//! to 8):
//! 1. a stretch tree of depth `S` is built bottom-up and dropped:
//!    `stretch depth {S}`;
//! 2. a long-lived tree of depth `L` is built top-down and an array of
//!    `A` doubles with `array[i] = 1/i` is allocated; both stay live:
//!    `long-lived tree depth {L}, array {A}`;
//! 3. for `d = 4, 6, …, 16`: `numIters(d) = 2 × treeSize(S) / treeSize(d)`
//!    trees of depth `d` are built top-down and dropped, then as many
//!    bottom-up; the last bottom-up tree is walked:
//!    `depth {d}: {numIters} trees top-down, {numIters} bottom-up, check {c}`
//!    (`c`: its node count). Metrics `topdown_ms_d{d}` and
//!    `bottomup_ms_d{d}` time the two phases;
//! 4. the long-lived structures are checked:
//!    `long-lived nodes {n}, array[1000] {array[1000]:.6}` (the index is
//!    `min(1000, A - 1)`; `n` is a walk of the long-lived tree).
//!
//! With `n` threads (`--threads 2`), the main thread builds the stretch
//! tree and the long-lived structures, then `n` worker threads each run
//! the whole step 3 with `ceil(numIters / n)` trees per phase, without
//! waiting for each other; a phase's metric is the slowest worker's time.
//! The printed lines are the same as with one thread.

use crate::{Metric, Report};
use std::thread;
use std::time::{Duration, Instant};

/// The sizes of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Depth of the stretch tree.
    pub stretch: u32,
    /// Depth of the long-lived tree.
    pub long_lived: u32,
    /// Length of the long-lived array of doubles.
    pub array: usize,
    /// First depth of the loop.
    pub min: u32,
    /// Last depth of the loop.
    pub max: u32,
}

impl Params {
    /// The standard sizes, or the `--quick` ones.
    pub fn new(quick: bool) -> Params {
        if quick {
            Params {
                stretch: 12,
                long_lived: 10,
                array: 5_000,
                min: 4,
                max: 8,
            }
        } else {
            Params {
                stretch: 18,
                long_lived: 16,
                array: 500_000,
                min: 4,
                max: 16,
            }
        }
    }

    /// The loop's depths.
    pub fn depths(&self) -> impl Iterator<Item = u32> + use<> {
        (self.min..=self.max).step_by(2)
    }

    /// Trees per phase at depth `d`: `2 × treeSize(stretch) / treeSize(d)`.
    pub fn num_iters(&self, d: u32) -> u64 {
        2 * tree_size(self.stretch) / tree_size(d)
    }

    /// The array index printed at the end.
    pub fn array_index(&self) -> usize {
        1000.min(self.array - 1)
    }
}

/// Nodes of a tree of depth `d`.
pub fn tree_size(d: u32) -> u64 {
    (1 << (d + 1)) - 1
}

/// Element `i` of the long-lived array: `1/i` (`array[0]` is infinite
/// and never read).
pub fn array_value(i: usize) -> f64 {
    1.0 / i as f64
}

/// The long-lived array.
pub fn array(len: usize) -> Vec<f64> {
    (0..len).map(array_value).collect()
}

/// The output lines computed from the closed forms.
pub fn expected(p: &Params) -> Vec<String> {
    let depths: Vec<(u32, u64)> = p.depths().map(|d| (d, tree_size(d))).collect();
    let i = p.array_index();
    lines(p, &depths, tree_size(p.long_lived), array_value(i))
}

/// One way of building short-lived trees (one per thread).
pub trait Trees {
    /// Builds a tree of `depth` top-down, then drops it.
    fn top_down(&mut self, depth: u32);
    /// Builds a tree of `depth` bottom-up, then drops it; if `walk`,
    /// walks it first and returns its node count (else 0).
    fn bottom_up(&mut self, depth: u32, walk: bool) -> u64;
}

/// One depth of one thread's loop.
struct DepthRun {
    top_down: Duration,
    bottom_up: Duration,
    check: u64,
}

/// Step 3 on one thread, with `iters(d)` trees per phase.
fn depth_loop<T: Trees>(t: &mut T, p: &Params, iters: impl Fn(u32) -> u64) -> Vec<DepthRun> {
    p.depths()
        .map(|d| {
            let n = iters(d);
            let t0 = Instant::now();
            for _ in 0..n {
                t.top_down(d);
            }
            let t1 = Instant::now();
            let mut check = 0;
            for i in 0..n {
                check = t.bottom_up(d, i + 1 == n);
            }
            DepthRun {
                top_down: t1 - t0,
                bottom_up: t1.elapsed(),
                check,
            }
        })
        .collect()
}

/// Runs GCBench on one thread. `build_long` allocates the long-lived
/// tree (top-down) and array, kept in whatever `L` is; `check_long` walks
/// the tree and reads the array at the given index.
pub fn run<T: Trees, L>(
    p: &Params,
    main: &mut T,
    build_long: impl FnOnce(&mut T, &Params) -> L,
    check_long: impl FnOnce(&mut T, &L, usize) -> (u64, f64),
) -> Report {
    main.bottom_up(p.stretch, false);
    let long = build_long(main, p);
    let runs = depth_loop(main, p, |d| p.num_iters(d));
    let (nodes, value) = check_long(main, &long, p.array_index());
    report(p, vec![runs], nodes, value)
}

/// Runs GCBench with `threads` worker threads, each of which makes its own
/// [`Trees`] with `worker` and runs step 3 with half (a `1/threads` share,
/// rounded up) of the trees. One thread runs [`run`].
pub fn run_threads<T: Trees, W: Trees, L>(
    p: &Params,
    threads: usize,
    main: &mut T,
    build_long: impl FnOnce(&mut T, &Params) -> L,
    check_long: impl FnOnce(&mut T, &L, usize) -> (u64, f64),
    worker: impl Fn() -> W + Sync,
) -> Report {
    if threads <= 1 {
        return run(p, main, build_long, check_long);
    }
    main.bottom_up(p.stretch, false);
    let long = build_long(main, p);
    let n = threads as u64;
    let runs: Vec<Vec<DepthRun>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let worker = &worker;
                s.spawn(move || depth_loop(&mut worker(), p, |d| p.num_iters(d).div_ceil(n)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a gcbench worker panicked"))
            .collect()
    });
    let (nodes, value) = check_long(main, &long, p.array_index());
    report(p, runs, nodes, value)
}

/// Lines and metrics from each thread's runs (phase times: the slowest
/// thread's; check: the first thread's).
fn report(p: &Params, runs: Vec<Vec<DepthRun>>, nodes: u64, value: f64) -> Report {
    let mut metrics = Vec::new();
    let mut depths = Vec::new();
    for (i, d) in p.depths().enumerate() {
        let slowest = |f: fn(&DepthRun) -> Duration| runs.iter().map(|r| f(&r[i])).max();
        let top_down = slowest(|r| r.top_down).unwrap_or_default();
        let bottom_up = slowest(|r| r.bottom_up).unwrap_or_default();
        metrics.push(Metric::ms(format!("topdown_ms_d{d}"), top_down));
        metrics.push(Metric::ms(format!("bottomup_ms_d{d}"), bottom_up));
        depths.push((d, runs[0][i].check));
    }
    Report {
        lines: lines(p, &depths, nodes, value),
        metrics,
    }
}

/// The output lines.
fn lines(p: &Params, depths: &[(u32, u64)], nodes: u64, value: f64) -> Vec<String> {
    let mut out = vec![
        format!("stretch depth {}", p.stretch),
        format!("long-lived tree depth {}, array {}", p.long_lived, p.array),
    ];
    for &(d, check) in depths {
        let n = p.num_iters(d);
        out.push(format!(
            "depth {d}: {n} trees top-down, {n} bottom-up, check {check}"
        ));
    }
    out.push(format!(
        "long-lived nodes {nodes}, array[{}] {value:.6}",
        p.array_index()
    ));
    out
}

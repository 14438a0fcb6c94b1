//! binary-trees, the Benchmarks Game's "simplistic adaptation of Hans
//! Boehm's GCBench": the driver shared by every peer.
//!
//! Rules (<https://benchmarksgame-team.pages.debian.net/benchmarksgame/description/binarytrees.html>):
//! perfect binary trees are fully created before any of their nodes is
//! freed, one allocation per node, with the peer's default settings.
//! With maximum depth `D` (21; 10 with `--quick`) and minimum depth 4:
//! 1. a *stretch* tree of depth `D + 1` is built, walked and dropped:
//!    `stretch tree of depth {D+1}\t check: {nodes}`;
//! 2. a *long-lived* tree of depth `D` is built and kept;
//! 3. for `d = 4, 6, …, D`: `2^(D - d + 4)` trees of depth `d` are built,
//!    walked and dropped one after the other:
//!    `{iterations}\t trees of depth {d}\t check: {total}`;
//! 4. the long-lived tree is walked:
//!    `long lived tree of depth {D}\t check: {nodes}`.
//!
//! A check counts the nodes of a tree by walking it (a tree of depth `d`
//! has `2^(d+1) - 1`).
//!
//! With `n` threads (`--threads 2`), every depth's loop is split between
//! `n` worker threads: worker `k` builds the trees numbered `k, k + n, …`
//! of every depth, one depth after the other, without waiting for the
//! others; the main thread builds the stretch and long-lived trees before
//! starting the workers and walks the long-lived tree after they all
//! finish, and prints the depth lines in depth order. The output is the
//! same as with one thread.

use std::thread;

/// The smallest depth of the iteration loop.
pub const MIN_DEPTH: u32 = 4;

/// The maximum depth `D`.
pub fn max_depth(quick: bool) -> u32 {
    if quick { 10 } else { 21 }
}

/// Number of trees of depth `depth` when the maximum depth is `max`.
pub fn iterations(max: u32, depth: u32) -> u64 {
    1 << (max - depth + MIN_DEPTH)
}

/// Nodes of a perfect binary tree of depth `depth`.
pub fn nodes(depth: u32) -> u64 {
    (1 << (depth + 1)) - 1
}

/// The depths of the iteration loop: 4, 6, …, `max`.
pub fn depths(max: u32) -> impl Iterator<Item = u32> {
    (MIN_DEPTH..=max).step_by(2)
}

/// The output lines computed from the closed forms (what every correct
/// run prints).
pub fn expected(max: u32) -> Vec<String> {
    report(
        max,
        nodes(max + 1),
        depths(max).map(|d| iterations(max, d) * nodes(d)),
        nodes(max),
    )
}

/// One way of building short-lived trees (one per thread).
pub trait Trees {
    /// Builds a tree of `depth`, walks it to count its nodes, drops it;
    /// returns the count.
    fn build_check(&mut self, depth: u32) -> u64;
}

/// Runs binary-trees on one thread: `main` builds every tree;
/// `build_long` builds the long-lived tree (kept in whatever `L` is) and
/// `check_long` walks it. Returns the output lines.
pub fn run<T: Trees, L>(
    max: u32,
    main: &mut T,
    build_long: impl FnOnce(&mut T, u32) -> L,
    check_long: impl FnOnce(&mut T, &L) -> u64,
) -> Vec<String> {
    let stretch = main.build_check(max + 1);
    let long = build_long(main, max);
    let totals: Vec<u64> = depths(max)
        .map(|d| (0..iterations(max, d)).map(|_| main.build_check(d)).sum())
        .collect();
    let long_check = check_long(main, &long);
    report(max, stretch, totals, long_check)
}

/// Runs binary-trees with the iteration loops split between `threads`
/// worker threads, each of which makes its own [`Trees`] with `worker`
/// (a spanheap mutator, a bumpalo arena, …). `main` builds the stretch
/// and long-lived trees on the calling thread. One thread runs [`run`].
pub fn run_threads<T: Trees, W: Trees, L>(
    max: u32,
    threads: usize,
    main: &mut T,
    build_long: impl FnOnce(&mut T, u32) -> L,
    check_long: impl FnOnce(&mut T, &L) -> u64,
    worker: impl Fn() -> W + Sync,
) -> Vec<String> {
    if threads <= 1 {
        return run(max, main, build_long, check_long);
    }
    let stretch = main.build_check(max + 1);
    let long = build_long(main, max);
    let n = threads as u64;
    let per_worker: Vec<Vec<u64>> = thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|k| {
                let worker = &worker;
                s.spawn(move || {
                    let mut w = worker();
                    depths(max)
                        .map(|d| {
                            (k..iterations(max, d))
                                .step_by(n as usize)
                                .map(|_| w.build_check(d))
                                .sum::<u64>()
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a binary-trees worker panicked"))
            .collect()
    });
    let totals: Vec<u64> = (0..depths(max).count())
        .map(|i| per_worker.iter().map(|w| w[i]).sum())
        .collect();
    let long_check = check_long(main, &long);
    report(max, stretch, totals, long_check)
}

/// The output lines.
fn report(max: u32, stretch: u64, totals: impl IntoIterator<Item = u64>, long: u64) -> Vec<String> {
    let mut out = vec![format!(
        "stretch tree of depth {}\t check: {stretch}",
        max + 1
    )];
    for (d, total) in depths(max).zip(totals) {
        out.push(format!(
            "{}\t trees of depth {d}\t check: {total}",
            iterations(max, d)
        ));
    }
    out.push(format!("long lived tree of depth {max}\t check: {long}"));
    out
}

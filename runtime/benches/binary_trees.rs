//! The Benchmarks Game's binary-trees
//! (<https://benchmarksgame-team.pages.debian.net/benchmarksgame/description/binarytrees.html>),
//! single-threaded, three ways in one binary: spanheap (`Gc`), `Box` (the
//! system allocator, glibc malloc) and `Rc`.
//!
//! One criterion *iteration* is one whole program run at depth
//! [`DEPTH`]: build and check a stretch tree of depth `DEPTH + 1` and drop
//! it; build a long-lived tree of depth `DEPTH`; for `d = 4, 6, …, DEPTH`
//! build, check and drop `2^(DEPTH - d + 4)` trees of depth `d`; check the
//! long-lived tree. `check` counts a tree's nodes. Trees are built
//! bottom-up, as in the reference programs.
//!
//! spanheap: one heap (default settings: GOGC=100, background sweeping)
//! and one mutator for the whole benchmark. Every tree is built and
//! checked inside its own `Mutator::scope`, which is left after the tree,
//! so a collection can run between any two trees (collections run only at
//! safepoints). The long-lived tree is kept in a `Root`, dropped at the end
//! of the iteration. Each iteration takes about a second, so the group uses
//! criterion's flat sampling (the same iteration count in every sample)
//! and 10 samples.
//!
//! Before measuring, the three implementations are run once and their
//! check numbers compared. After criterion finishes, `main` reads the
//! medians back from `target/criterion/binary-trees/…/new/estimates.json`
//! (only files written by this run) and prints a ratio table
//! (spanheap/Box, Rc/Box), then spanheap's GC statistics over the whole
//! benchmark.

use criterion::{BenchmarkId, Criterion, SamplingMode};
use spanheap::{GcStats, Heap, Mutator, Root};
use std::hint::black_box;

use std::time::{Duration, SystemTime};

/// The depth criterion measures (`max_depth` of the program).
const DEPTH: u32 = 16;
const MIN_DEPTH: u32 = 4;

/// The implementations, in table order.
const IMPLS: [&str; 3] = ["spanheap", "box", "rc"];

/// One binary-trees run for `max_depth`; returns the check numbers in
/// output order (stretch, each depth's sum, long-lived).
fn binary_trees<T: Trees>(t: &mut T, max_depth: u32) -> Vec<u64> {
    let max_depth = max_depth.max(MIN_DEPTH + 2);
    let mut out = vec![t.build_check(max_depth + 1)];
    let long = t.build_long(max_depth);
    for depth in (MIN_DEPTH..=max_depth).step_by(2) {
        let iterations = 1u64 << (max_depth - depth + MIN_DEPTH);
        let mut check = 0;
        for _ in 0..iterations {
            check += t.build_check(depth);
        }
        out.push(check);
    }
    out.push(t.check_long(&long));
    out
}

// ---------------------------------------------------------------------
// spanheap
// ---------------------------------------------------------------------

struct Spanheap(Mutator);

impl Trees for Spanheap {
    type LongLived = Root<Node<'static>>;
    fn build_check(&mut self, depth: u32) -> u64 {
        self.0.scope(|cx| gc_check(&gc_tree(cx, depth)))
    }
    fn build_long(&mut self, depth: u32) -> Root<Node<'static>> {
        self.0.scope(|cx| cx.root(gc_tree(cx, depth)))
    }
    fn check_long(&mut self, t: &Root<Node<'static>>) -> u64 {
        self.0.scope(|cx| gc_check(&t.get(cx)))
    }
}

// ---------------------------------------------------------------------
// Box
// ---------------------------------------------------------------------

// ---------------------------------------------------------------------
// Rc
// ---------------------------------------------------------------------

// ---------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------

/// Runs the benchmark group; returns spanheap's GC statistics and the
/// number of binary-trees runs made on its heap (if it ran).
fn bench(c: &mut Criterion) -> Option<(GcStats, u64)> {
    let heap = Heap::builder().build().expect("default heap settings");
    let mut sh = Spanheap(heap.mutator());

    // Same check numbers for all three (also warms the heap up).
    let expect = binary_trees(&mut Boxed, DEPTH);
    assert_eq!(
        binary_trees(&mut sh, DEPTH),
        expect,
        "spanheap checks differ"
    );
    assert_eq!(
        binary_trees(&mut Counted, DEPTH),
        expect,
        "Rc checks differ"
    );

    let mut g = c.benchmark_group("binary-trees");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let func = format!("depth{DEPTH}");
    let mut runs = 0u64;
    let mut ran = false;
    g.bench_function(BenchmarkId::new(&func, "spanheap"), |b| {
        ran = true;
        b.iter(|| {
            runs += 1;
            binary_trees(&mut sh, black_box(DEPTH))
        })
    });
    g.bench_function(BenchmarkId::new(&func, "box"), |b| {
        b.iter(|| binary_trees(&mut Boxed, black_box(DEPTH)))
    });
    g.bench_function(BenchmarkId::new(&func, "rc"), |b| {
        b.iter(|| binary_trees(&mut Counted, black_box(DEPTH)))
    });
    g.finish();
    drop(sh);
    ran.then(|| (heap.stats(), runs))
}

// ---------------------------------------------------------------------
// Ratio table (the same reading-back as heap/benches/alloc.rs).
// ---------------------------------------------------------------------

#[path = "../../heap/benches/support/medians.rs"]
mod medians;
use medians::{criterion_dir, parse_median};
#[path = "../../examples/src/trees.rs"]
mod trees;
use trees::*;

/// Median ns per iteration of `binary-trees/depth<DEPTH>/<imp>`, if this
/// run wrote it (files older than `since` come from an earlier run).
fn median_ns(dir: &std::path::Path, since: SystemTime, imp: &str) -> Option<f64> {
    let path = dir
        .join("binary-trees")
        .join(format!("depth{DEPTH}"))
        .join(imp)
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    parse_median(&std::fs::read_to_string(&path).ok()?)
}

fn print_ratio_table(since: SystemTime) {
    let dir = criterion_dir();
    let m: Vec<Option<f64>> = IMPLS.iter().map(|i| median_ns(&dir, since, i)).collect();
    if m.iter().all(Option::is_none) {
        println!(
            "\nratio table: no estimates written by this run in {} (filtered, or --test/--list mode)",
            dir.display()
        );
        return;
    }
    let ms = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{:.1}", v / 1e6));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "n/a".to_string(),
    };
    println!(
        "\nratio table (from {}): median ms per binary-trees run at depth {DEPTH}\n",
        dir.display()
    );
    println!("| depth | spanheap | Box | Rc | spanheap/Box | Rc/Box |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {DEPTH} | {} | {} | {} | {} | {} |",
        ms(m[0]),
        ms(m[1]),
        ms(m[2]),
        ratio(m[0], m[1]),
        ratio(m[2], m[1]),
    );
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    let stats = bench(&mut c);
    c.final_summary();
    print_ratio_table(since);
    if let Some((st, runs)) = stats {
        println!(
            "\nspanheap GC over {runs} measured + warm-up runs (plus 1 check run): {} collections, \
             pause total {:.1} ms, max {:.2} ms, heap_goal {:.1} MiB, heap_inuse {:.1} MiB",
            st.num_gc,
            st.pause_total.as_secs_f64() * 1e3,
            st.pause_max.as_secs_f64() * 1e3,
            st.heap_goal as f64 / (1u64 << 20) as f64,
            st.mem.heap_inuse as f64 / (1u64 << 20) as f64,
        );
    }
}

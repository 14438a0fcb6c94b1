//! The Benchmarks Game's binary-trees, single-threaded, three ways: spanheap
//! (`Gc`), `Box` (the system allocator) and `Rc`.
//!
//! The workload (<https://benchmarksgame-team.pages.debian.net/benchmarksgame/description/binarytrees.html>):
//! build and check a *stretch* tree of depth `max + 1` and drop it; build a
//! *long-lived* tree of depth `max` and keep it; then for each depth
//! `d = 4, 6, …, max` build `2^(max - d + 4)` trees of depth `d`, check
//! each and drop it; finally check the long-lived tree. `check` counts the
//! nodes of a tree. Trees are built bottom-up (children first), as in the
//! reference programs.
//!
//! spanheap: every tree is built and checked inside one `Mutator::scope`,
//! and the scope is left after each tree, so a collection can run between
//! any two trees (a collection runs only at a safepoint). The long-lived
//! tree is kept in a `Root`. The heap uses the default settings (GOGC=100
//! unless given, background sweeping on).
//!
//! Prints the standard output lines for spanheap, checks that `Box` and
//! `Rc` print the same lines, then a table of wall times (and process CPU
//! times, since spanheap's background sweeper can use a second core) with
//! ratios against `Box`, and spanheap's GC statistics. Everything except
//! the timings is deterministic.
//!
//! Usage: `cargo run --release -p spanheap-examples --bin binary-trees -- [depth] [gc-percent]`
//! (defaults 21 and 100; `gc-percent` is spanheap's GOGC, for experiments
//! with the pacing). `SPANHEAP_GCTRACE=1` prints one line per collection.

use spanheap::{Heap, Mutator, Root};
use std::time::{Duration, Instant};
mod trees;
use trees::*;

const MIN_DEPTH: u32 = 4;

/// Runs binary-trees for `n`, returning the output lines.
fn binary_trees<T: Trees>(t: &mut T, n: u32) -> Vec<String> {
    let max_depth = n.max(MIN_DEPTH + 2);
    let mut out = Vec::new();
    let stretch = max_depth + 1;
    out.push(format!(
        "stretch tree of depth {stretch}\t check: {}",
        t.build_check(stretch)
    ));
    let long = t.build_long(max_depth);
    for depth in (MIN_DEPTH..=max_depth).step_by(2) {
        let iterations = 1u64 << (max_depth - depth + MIN_DEPTH);
        let mut check = 0;
        for _ in 0..iterations {
            check += t.build_check(depth);
        }
        out.push(format!(
            "{iterations}\t trees of depth {depth}\t check: {check}"
        ));
    }
    out.push(format!(
        "long lived tree of depth {max_depth}\t check: {}",
        t.check_long(&long)
    ));
    out
}

// ---------------------------------------------------------------------
// spanheap
// ---------------------------------------------------------------------

struct Spanheap {
    heap: Heap,
    m: Mutator,
    scopes: u64,
    /// Largest `heap_inuse` seen, sampled at the end of a scope (just
    /// before the safepoint where a collection could run): in every scope
    /// that built a tree of depth 11 or more (4095+ nodes), otherwise in every
    /// 1024th scope (so at most ~0.8 MB of allocation goes unsampled).
    peak_inuse: u64,
}

impl Spanheap {
    fn sample(&mut self, depth: u32) -> bool {
        self.scopes += 1;
        depth >= 11 || self.scopes.is_multiple_of(1024)
    }
}

impl Trees for Spanheap {
    type LongLived = Root<Node<'static>>;

    fn build_check(&mut self, depth: u32) -> u64 {
        let sample = self.sample(depth);
        let heap = &self.heap;
        let peak = &mut self.peak_inuse;
        self.m.scope(|cx| {
            let t = gc_tree(cx, depth);
            let c = gc_check(&t);
            if sample {
                *peak = (*peak).max(heap.stats().mem.heap_inuse);
            }
            c
        })
    }

    fn build_long(&mut self, depth: u32) -> Root<Node<'static>> {
        self.m.scope(|cx| cx.root(gc_tree(cx, depth)))
    }

    fn check_long(&mut self, t: &Root<Node<'static>>) -> u64 {
        self.m.scope(|cx| gc_check(&t.get(cx)))
    }
}

// ---------------------------------------------------------------------
// Box
// ---------------------------------------------------------------------

// ---------------------------------------------------------------------
// Rc
// ---------------------------------------------------------------------

// ---------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------

/// User + system CPU time of the whole process (all threads), from
/// `/proc/self/stat` (in clock ticks of 10 ms; `None` off Linux).
fn process_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, so 12 and 13 here.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `f`, returning its result, wall time and process CPU time.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration, Option<Duration>) {
    let c0 = process_cpu();
    let t0 = Instant::now();
    let r = f();
    let wall = t0.elapsed();
    let cpu = match (c0, process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (r, wall, cpu)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(21);
    let gc_percent: u32 = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100);

    // spanheap first; its output lines are the program's output.
    let heap = Heap::builder().gc_percent(gc_percent).build()?;
    let mut sh = Spanheap {
        m: heap.mutator(),
        heap: heap.clone(),
        scopes: 0,
        peak_inuse: 0,
    };
    let (lines, sh_wall, sh_cpu) = timed(|| binary_trees(&mut sh, n));
    for l in &lines {
        println!("{l}");
    }
    let st = heap.stats();
    let peak_inuse = sh.peak_inuse.max(st.mem.heap_inuse);
    let scopes = sh.scopes;
    drop(sh);
    drop(heap);

    let (box_lines, box_wall, box_cpu) = timed(|| binary_trees(&mut Boxed, n));
    let (rc_lines, rc_wall, rc_cpu) = timed(|| binary_trees(&mut Counted, n));
    for (name, l) in [("Box", &box_lines), ("Rc", &rc_lines)] {
        if *l != lines {
            eprintln!("error: {name} output differs from spanheap's:");
            for x in l {
                eprintln!("  {x}");
            }
            std::process::exit(1);
        }
    }

    println!();
    println!("Box and Rc printed the same {} lines.", lines.len());
    println!();
    println!("| implementation | wall (s) | CPU, all threads (s) | wall / Box | CPU / Box |");
    println!("|---|---|---|---|---|");
    let cpu_s = |c: Option<Duration>| c.map_or("n/a".into(), |c| format!("{:.2}", c.as_secs_f64()));
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
        _ => "n/a".into(),
    };
    for (name, wall, cpu) in [
        ("spanheap (Gc)", sh_wall, sh_cpu),
        ("Box (system allocator)", box_wall, box_cpu),
        ("Rc", rc_wall, rc_cpu),
    ] {
        println!(
            "| {name} | {:.3} | {} | {:.2} | {} |",
            wall.as_secs_f64(),
            cpu_s(cpu),
            wall.as_secs_f64() / box_wall.as_secs_f64(),
            ratio(cpu, box_cpu),
        );
    }
    println!();
    println!(
        "spanheap (GOGC={gc_percent}): {} collections, pause total {:.3} ms, max {:.3} ms, \
         peak heap_inuse {:.1} MiB (sampled), {} scopes, heap_goal now {:.1} MiB",
        st.num_gc,
        ms(st.pause_total),
        ms(st.pause_max),
        mib(peak_inuse),
        scopes,
        mib(st.heap_goal),
    );
    Ok(())
}

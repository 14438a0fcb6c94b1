//! Steady-state allocate-and-drop throughput: spanheap's `MCache` against
//! the system allocator and mimalloc, in one binary.
//!
//! One criterion *iteration* is one batch: allocate `N` objects of one size
//! (about 2 MiB of objects, at least 64), write one word into each, then
//! drop the whole batch:
//!
//! * **spanheap**: `MCache::alloc(AllocRequest::scan(size))` (zeroed memory,
//!   scan spans so the tiny allocator stays out of the way; the 8-byte case
//!   is also run as `noscan`, i.e. through the tiny allocator, under the
//!   name `spanheap-tiny`). The batch is "dropped" as a collector would:
//!   `finish_sweep`, mark nothing, `begin_sweep`, `release_all`. Sweeping is
//!   lazy, so most of the sweep cost lands on the next batch's span refills
//!   (and the rest in `finish_sweep`): the measured time is the amortised
//!   per-allocation cost of fast path + refill + sweep.
//! * **system** / **mimalloc**: `GlobalAlloc::alloc_zeroed` with the
//!   object's `Layout` (size, align 8) — what `Box::new([0u64; size / 8])`
//!   amounts to — called directly on `std::alloc::System` and
//!   `mimalloc::MiMalloc` (mimalloc is *not* the global allocator), the
//!   pointers kept in a reused `Vec`, then every object `dealloc`ed in
//!   allocation order, as dropping a `Vec<Box<_>>` does.
//!
//! Zeroing: spanheap's `alloc` returns zeroed memory (it clears a reused
//! slot), so the peers are asked for zeroed memory too. The `alloc-uninit`
//! group (one thread only) repeats the comparison without zeroing:
//! `MCache::alloc_uninit` against `GlobalAlloc::alloc`.
//!
//! The object size (and so the size class / bin) is passed through
//! `black_box` once per batch for all three allocators, so spanheap — the
//! only one whose code can be inlined here — does not get its size class
//! constant-folded.
//!
//! Two threads: each thread allocates its own batch (its own `MCache` on one
//! shared `MHeap` for spanheap; the same process-wide allocator for the
//! others). The threads are spawned once per benchmark and run
//! `iters` batches each when criterion asks for a sample; the sample's time
//! is the wall time from releasing both threads to both having finished, so
//! the reported throughput is the aggregate of both threads (elements per
//! iteration = 2 N, ns/alloc = wall / (2 N iters)). For spanheap every batch
//! ends in a stop-the-world collection: both threads meet at a barrier, one
//! runs `finish_sweep` + `begin_sweep` while the other waits at a second
//! barrier, then each thread flushes its own cache; the barrier waits are
//! part of spanheap's measured cost (a GC pays them).
//!
//! After criterion finishes, `main` reads the medians back from
//! `target/criterion/<id>/new/estimates.json` (only files written by this
//! run) and prints a ratio table (ns per allocation and
//! spanheap/mimalloc, spanheap/system).

// Benchmark harness code, not library code: the no-std-sync-primitives rule
// (the loom shim) does not apply here. Atomics and `Arc` still come from
// `spanheap_heap::sync`, but the threads and barriers are plain std.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use mimalloc::MiMalloc;
use spanheap_heap::sync::Arc;
use spanheap_heap::sync::atomic::{AtomicU64, Ordering};
use spanheap_heap::{AllocRequest, HeapConfig, MCache, MHeap};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

/// Object sizes in bytes.
const SIZES: [usize; 6] = [8, 16, 64, 256, 1024, 32768];

/// Bytes of objects per batch.
const BATCH_BYTES: usize = 2 << 20;

/// Objects per batch (per thread) for `size`.
fn batch_len(size: usize) -> usize {
    (BATCH_BYTES / size).max(64)
}

/// The allocators under test. `SpanheapTiny` is spanheap with a noscan
/// request (the tiny allocator for sizes under 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allocator {
    SpanheapTiny,
    Spanheap,
    System,
    Mimalloc,
}

impl Allocator {
    fn name(self) -> &'static str {
        match self {
            Allocator::SpanheapTiny => "spanheap-tiny",
            Allocator::Spanheap => "spanheap",
            Allocator::System => "system",
            Allocator::Mimalloc => "mimalloc",
        }
    }
}

// ---------------------------------------------------------------------
// The three allocators' batches.
// ---------------------------------------------------------------------

fn new_heap() -> Arc<MHeap> {
    Arc::new(MHeap::new(HeapConfig::default()).expect("default heap config is valid"))
}

/// Allocates `n` objects from `cache` and writes one word into each.
/// With `ZERO`, through `alloc` (zeroed), otherwise `alloc_uninit`.
#[inline(never)]
fn spanheap_batch<const ZERO: bool>(cache: &mut MCache, req: AllocRequest, n: usize) {
    let req = black_box(req);
    for i in 0..n {
        let r = if ZERO {
            cache.alloc(req)
        } else {
            cache.alloc_uninit(req)
        };
        let p = r.expect("spanheap allocation failed");
        // SAFETY: `p` is a fresh, 8-aligned object of at least 8 bytes that
        // nothing else references; it stays allocated until the next
        // collection.
        unsafe { p.as_ptr().cast::<u64>().write(i as u64) };
    }
}

/// Drops a batch the way the collector does, single-threaded: finish the
/// previous sweep, mark nothing, start a new sweep, flush the cache.
fn spanheap_collect(heap: &MHeap, cache: &mut MCache) {
    heap.finish_sweep().expect("the only cache was flushed");
    // Marking: nothing is live.
    // (1) this benchmark is single-threaded here: no other thread uses this
    // heap or any MCache on it (criterion runs benchmarks on the calling
    // thread, and this heap is private to this benchmark); (2) no mark bit
    // is ever set in this benchmark.
    // SAFETY: begin_sweep's obligations 1 and 2 hold, as just argued.
    unsafe { heap.begin_sweep() }.expect("previous sweep finished");
    cache.release_all();
}

/// Allocates `n` blocks of `layout` from `a`, writes one word into each,
/// keeps them in `v`, then frees them all in allocation order.
#[inline(never)]
fn global_batch<A: GlobalAlloc, const ZERO: bool>(
    a: &A,
    layout: Layout,
    v: &mut Vec<*mut u8>,
    n: usize,
) {
    let layout = black_box(layout);
    for i in 0..n {
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe {
            if ZERO {
                a.alloc_zeroed(layout)
            } else {
                a.alloc(layout)
            }
        };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `p` is a fresh block of `layout.size() >= 8` bytes, aligned
        // to 8, owned by us.
        unsafe { p.cast::<u64>().write(i as u64) };
        v.push(p);
    }
    black_box(&mut *v);
    for p in v.drain(..) {
        // SAFETY: `p` was allocated above by `a` with `layout`, and is freed
        // exactly once.
        unsafe { a.dealloc(p, layout) };
    }
}

fn layout_of(size: usize) -> Layout {
    Layout::from_size_align(size, 8).expect("valid layout")
}

// ---------------------------------------------------------------------
// Two-thread harness.
// ---------------------------------------------------------------------

/// Start/stop protocol between criterion's thread and the two long-lived
/// worker threads of a two-thread benchmark.
struct Pair {
    start: Barrier,
    end: Barrier,
    /// Iterations for the next sample; 0 tells the workers to exit.
    rounds: AtomicU64,
}

impl Pair {
    fn new() -> Self {
        Pair {
            start: Barrier::new(3),
            end: Barrier::new(3),
            rounds: AtomicU64::new(0),
        }
    }

    /// A worker thread's loop: wait for a sample, run `w(iters)`, report.
    fn worker(&self, mut w: impl FnMut(u64)) {
        loop {
            self.start.wait();
            let r = self.rounds.load(Ordering::Relaxed);
            if r == 0 {
                return;
            }
            w(r);
            self.end.wait();
        }
    }

    /// One sample: releases both workers for `iters` batches each and
    /// returns the wall time until both have finished.
    fn sample(&self, iters: u64) -> Duration {
        // The barrier orders this store before the workers' loads.
        self.rounds.store(iters.max(1), Ordering::Relaxed);
        self.start.wait();
        let t = Instant::now();
        self.end.wait();
        t.elapsed()
    }

    fn stop(&self) {
        self.rounds.store(0, Ordering::Relaxed);
        self.start.wait();
    }
}

/// Benchmarks `workers[0]` and `workers[1]` running concurrently. The two
/// threads are spawned once and live for the whole benchmark (criterion
/// calls the benchmark closure once per warm-up step and per sample, so
/// spawning there would make every sample start from cold thread caches);
/// for each sample both run `iters` batches and the sample's time is the
/// wall time until both are done.
fn bench_two_threads<W: FnMut(u64) + Send>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    workers: [W; 2],
) {
    /// Lets the workers exit even if the benchmark panics on this thread.
    struct StopOnDrop<'a>(&'a Pair);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let pair = Pair::new();
    std::thread::scope(|s| {
        for w in workers {
            let pair = &pair;
            s.spawn(move || pair.worker(w));
        }
        let stop = StopOnDrop(&pair);
        g.bench_function(id, |b| b.iter_custom(|iters| pair.sample(iters)));
        drop(stop);
    });
}

/// One spanheap worker of the two-thread benchmark: its own `MCache` on the
/// shared heap; every batch ends in a stop-the-world collection
/// coordinated through `gc` (a barrier for the two workers).
fn spanheap_worker<'a>(
    heap: &'a Arc<MHeap>,
    gc: &'a Barrier,
    req: AllocRequest,
    n: usize,
) -> impl FnMut(u64) + Send + 'a {
    let mut cache = MCache::new(heap.clone());
    move |rounds| {
        for _ in 0..rounds {
            spanheap_batch::<true>(&mut cache, req, n);
            // Stop the world: both workers have finished their batch and
            // neither is inside a heap or MCache method.
            let leader = gc.wait().is_leader();
            if leader {
                heap.finish_sweep().expect("every cache was flushed");
                // Marking: nothing is live.
                // (1) the other worker is blocked in the `gc.wait()` below
                // until this returns, and has not touched the heap since the
                // barrier above; this thread is not in an MCache method; the
                // benchmark's main thread never touches the heap; the
                // barriers give the happens-before edges both ways. (2) No
                // mark bit is ever set in this benchmark.
                // SAFETY: begin_sweep's obligations 1 and 2 hold, as argued.
                unsafe { heap.begin_sweep() }.expect("previous sweep finished");
            }
            gc.wait();
            // Restart the world: each mutator flushes its own cache (Go's
            // prepareForSweep).
            cache.release_all();
        }
    }
}

/// One system/mimalloc worker of the two-thread benchmark: plain batches,
/// no coordination (manual memory management needs none).
fn global_worker<A: GlobalAlloc + Sync>(
    a: &A,
    size: usize,
    n: usize,
) -> impl FnMut(u64) + Send + '_ {
    /// The batch's pointer list, moved into the worker thread.
    struct Ptrs(Vec<*mut u8>);
    // SAFETY: the Vec is empty whenever it crosses threads (each batch frees
    // what it allocated before returning), and the blocks it holds during a
    // batch come from a `GlobalAlloc`, which may free them on any thread.
    unsafe impl Send for Ptrs {}
    let layout = layout_of(size);
    let mut v = Ptrs(Vec::with_capacity(n));
    move |rounds| {
        // Capture `v` whole (not just its non-Send field).
        let Ptrs(v) = &mut v;
        for _ in 0..rounds {
            global_batch::<A, true>(a, layout, v, n);
        }
    }
}

// ---------------------------------------------------------------------
// Benchmarks.
// ---------------------------------------------------------------------

fn request(alloc: Allocator, size: usize) -> AllocRequest {
    match alloc {
        Allocator::SpanheapTiny => AllocRequest::noscan(size),
        _ => AllocRequest::scan(size),
    }
}

fn allocators(size: usize) -> Vec<Allocator> {
    let mut v = Vec::new();
    if size < 16 {
        v.push(Allocator::SpanheapTiny);
    }
    v.extend([Allocator::Spanheap, Allocator::System, Allocator::Mimalloc]);
    v
}

/// One thread: zeroed (`alloc` against `alloc_zeroed`) or not
/// (`alloc_uninit` against `GlobalAlloc::alloc`), for the allocators
/// `pick` lists at each size.
fn bench_single<const ZERO: bool>(
    c: &mut Criterion,
    group: &str,
    pick: fn(usize) -> Vec<Allocator>,
) {
    let mut g = c.benchmark_group(group);
    for size in SIZES {
        let n = batch_len(size);
        g.throughput(Throughput::Elements(n as u64));
        for a in pick(size) {
            let id = BenchmarkId::new(format!("1t/{size}B"), a.name());
            match a {
                Allocator::SpanheapTiny | Allocator::Spanheap => {
                    let heap = new_heap();
                    let mut cache = MCache::new(heap.clone());
                    let req = request(a, size);
                    g.bench_function(id, |b| {
                        b.iter(|| {
                            spanheap_batch::<ZERO>(&mut cache, req, n);
                            spanheap_collect(&heap, &mut cache);
                        })
                    });
                }
                Allocator::System => {
                    let mut v = Vec::with_capacity(n);
                    g.bench_function(id, |b| {
                        b.iter(|| global_batch::<_, ZERO>(&System, layout_of(size), &mut v, n))
                    });
                }
                Allocator::Mimalloc => {
                    let mut v = Vec::with_capacity(n);
                    g.bench_function(id, |b| {
                        b.iter(|| global_batch::<_, ZERO>(&MiMalloc, layout_of(size), &mut v, n))
                    });
                }
            }
        }
    }
    g.finish();
}

fn bench_one_thread(c: &mut Criterion) {
    bench_single::<true>(c, "alloc", allocators);
}

/// One thread, without zeroing: `alloc_uninit` against `GlobalAlloc::alloc`.
fn bench_uninit(c: &mut Criterion) {
    bench_single::<false>(c, "alloc-uninit", |_| {
        vec![Allocator::Spanheap, Allocator::System, Allocator::Mimalloc]
    });
}

fn bench_two_threads_all(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc");
    for size in SIZES {
        let n = batch_len(size);
        g.throughput(Throughput::Elements(2 * n as u64));
        for a in allocators(size) {
            let id = BenchmarkId::new(format!("2t/{size}B"), a.name());
            match a {
                Allocator::SpanheapTiny | Allocator::Spanheap => {
                    let heap = new_heap();
                    let gc = Barrier::new(2);
                    let req = request(a, size);
                    let w = [
                        spanheap_worker(&heap, &gc, req, n),
                        spanheap_worker(&heap, &gc, req, n),
                    ];
                    bench_two_threads(&mut g, id, w);
                }
                Allocator::System => {
                    let w = [
                        global_worker(&System, size, n),
                        global_worker(&System, size, n),
                    ];
                    bench_two_threads(&mut g, id, w);
                }
                Allocator::Mimalloc => {
                    let w = [
                        global_worker(&MiMalloc, size, n),
                        global_worker(&MiMalloc, size, n),
                    ];
                    bench_two_threads(&mut g, id, w);
                }
            }
        }
    }
    g.finish();
}

// ---------------------------------------------------------------------
// Ratio table.
// ---------------------------------------------------------------------

#[path = "support/medians.rs"]
mod medians;
use medians::{criterion_dir, parse_median};

/// Median ns per allocation of benchmark `group/threads t/size B/alloc`,
/// if this run wrote its estimates (files older than `since` are ignored:
/// they come from an earlier, possibly filtered-out, run).
fn median_ns_per_alloc(
    dir: &std::path::Path,
    since: SystemTime,
    group: &str,
    threads: usize,
    size: usize,
    alloc: Allocator,
) -> Option<f64> {
    let path = dir
        .join(group)
        .join(format!("{threads}t_{size}B"))
        .join(alloc.name())
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let per_iter = parse_median(&std::fs::read_to_string(&path).ok()?)?;
    Some(per_iter / (threads * batch_len(size)) as f64)
}

fn print_ratio_table(since: SystemTime) {
    let dir = criterion_dir();
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "n/a".to_string(),
    };
    let mut rows = 0;
    let mut out = String::new();
    for (group, threads_list) in [("alloc", &[1usize, 2][..]), ("alloc-uninit", &[1][..])] {
        out.push_str(&format!(
            "\n{group}: median ns per allocation (batch of ~2 MiB per thread, allocate + drop)\n\n"
        ));
        out.push_str("| threads | size | spanheap request | N/thread | spanheap | mimalloc | system | spanheap/mimalloc | spanheap/system |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for &threads in threads_list {
            for size in SIZES {
                let get = |a| median_ns_per_alloc(&dir, since, group, threads, size, a);
                let (mi, sys) = (get(Allocator::Mimalloc), get(Allocator::System));
                let mut variants = vec![(Allocator::Spanheap, "scan")];
                if size < 16 && group == "alloc" {
                    variants.insert(0, (Allocator::SpanheapTiny, "noscan (tiny)"));
                }
                for (a, label) in variants {
                    let sh = get(a);
                    if sh.is_none() && mi.is_none() && sys.is_none() {
                        continue; // not run (filtered out)
                    }
                    rows += 1;
                    out.push_str(&format!(
                        "| {threads} | {size} B | {label} | {} | {} | {} | {} | {} | {} |\n",
                        batch_len(size),
                        fmt(sh),
                        fmt(mi),
                        fmt(sys),
                        ratio(sh, mi),
                        ratio(sh, sys),
                    ));
                }
            }
        }
    }
    if rows == 0 {
        println!(
            "\nratio table: no estimates written by this run in {} (filtered, or --test/--list mode)",
            dir.display()
        );
    } else {
        println!("\nratio table (from {}):\n{out}", dir.display());
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    bench_one_thread(&mut c);
    bench_two_threads_all(&mut c);
    bench_uninit(&mut c);
    c.final_summary();
    print_ratio_table(since);
}

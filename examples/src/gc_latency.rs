//! Go's GC latency test (the "gc latency" benchmark of Pusher's 2016
//! write-up and Gabriel Scherer's ports to other runtimes) on spanheap,
//! with a `Box` baseline, reporting the worst time of a single push.
//!
//! The workload: a *window* of `window` messages stays live in a ring;
//! each *push* allocates a fresh 1 KiB message whose bytes are all
//! `push index as u8` (so no two consecutive messages could be shared)
//! and stores it over the oldest slot (`index % window`), which makes
//! the message there garbage. The first `window` pushes fill the ring
//! (as in the original program, they are measured too). Each push is
//! timed with `Instant` and every push's time is kept, so the program
//! reports the maximum, percentiles and mean, not only the worst case.
//!
//! - **spanheap**: the ring is a `Window` object (a `Vec` of
//!   `GcCell<Option<Gc<[u8; 1024]>>>`) held by one `Root`; the messages
//!   are pointer-free, so they are headerless noscan objects. The whole
//!   run is one `Mutator::scope`, with a `Scope::safepoint()` after every
//!   [`SAFEPOINT_EVERY`] pushes (1000 by default; `--every=K` changes it).
//!   A collection can only run at a safepoint, so the push that ends with
//!   a safepoint is timed *together with the safepoint*: its time
//!   includes waiting for the other mutators to reach their safepoints
//!   (2 threads), the stop-the-world cycle, and re-entering the scope.
//!   This "push (+ safepoint if due)" step time, measured by the
//!   mutator, is the authoritative pause measure; the collector's own
//!   pause statistics (`GcStats`, from the start of sweep termination to
//!   the end of mark termination) are printed beside it.
//! - **`--box`**: the same loop over a `Vec<Option<Box<[u8; 1024]>>>`;
//!   the store frees the old message (glibc `free`) inside the timed
//!   push. No collector: its worst push is the machine's noise floor
//!   (page faults, preemption by the hypervisor or other threads).
//!
//! With `threads` > 1, each thread has its own mutator on one shared
//! heap (or its own `Vec` with `--box`) and its own window of
//! `window / threads` messages, and makes `pushes / threads` pushes, so
//! the live set and the total work are the same as with one thread. The
//! threads start together (a barrier), the wall time ends when the last
//! one has made its last push (a second barrier, reached outside any
//! scope so that a thread that is done never holds up a collection), and
//! the step times of all threads are pooled for the percentiles. The
//! report also gives the worst step once the ring is full (after each
//! thread's first `window / threads` pushes, while the heap still grows).
//!
//! Attribution (spanheap): a safepoint step during which collections
//! completed (the collector's cycle count changed while this thread was
//! out of its scope; no cycle can complete while a thread is inside a
//! scope) is a *GC step*; its time minus the pauses of those cycles is
//! time spent outside the collector's pause (waiting for the other
//! threads to reach a safepoint, waking up, re-entering). The report
//! gives the worst GC step, the worst other step, and that split.
//!
//! Derived numbers, computed from `Heap::stats()` at the end:
//! - *marked per cycle*: `heap_marked` of the last cycle (the live set is
//!   constant once the ring is full, so every later cycle marks about as
//!   much);
//! - *mark throughput*: marked bytes / pause, for the last cycle (its own
//!   pause) and on average (`heap_marked / (pause_total / num_gc)`). A
//!   pause also includes sweep termination and mark termination, so the
//!   last-cycle figure is a lower bound on the mark loop's own speed
//!   (`SPANHEAP_GCTRACE=1` prints the three phases of every cycle); the
//!   average is too high when the early cycles, while the ring fills,
//!   marked less. Bytes are a poor unit for this workload: messages are
//!   noscan, so marking one sets a bit and never reads its 1 KiB (the
//!   objects count is printed too);
//! - *GC wall share*: `pause_total / wall time` — the fraction of the run
//!   during which the world was stopped (with 2 threads, each pause stops
//!   both). Background sweeping on the second core is not in it; the
//!   process CPU time is printed for that.
//!
//! The last line, `RESULT key=value …`, is for `bench/gc-latency.sh`,
//! which runs this program and the Go version (`bench/go/latency`) and
//! prints one table.
//!
//! Usage: `cargo run --release -p spanheap-examples --bin gc-latency --
//! [window=200000] [pushes=2000000] [threads=1] [--box] [--every=K]
//! [--gogc=N] [--no-bg-sweep]` (`--no-bg-sweep` turns the background
//! sweeper thread off, for experiments; `SPANHEAP_GCTRACE=1` prints one
//! line per collection, `SPANHEAP_MARKWORKERS=N` sets the mark workers).

use spanheap::{Gc, GcCell, GcStats, Heap, Root, Scope, Trace};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Message size in bytes.
const MSG: usize = 1024;
/// A message: 1 KiB of bytes (pointer-free, so a noscan object).
type Msg = [u8; MSG];

/// Pushes between two safepoints (default of `--every`).
const SAFEPOINT_EVERY: usize = 1000;

/// How many of the slowest steps the report lists.
const SLOWEST: usize = 10;

/// The ring of live messages, one per spanheap thread.
#[derive(Trace)]
struct Window<'gc> {
    slots: Vec<GcCell<'gc, Option<Gc<'gc, Msg>>>>,
}

/// A safepoint step during which collections completed.
#[derive(Clone, Copy, Debug)]
struct GcStep {
    /// Index of the push that ended with the safepoint.
    step: usize,
    /// Step time (the push and the safepoint), ns.
    ns: u64,
    /// Cycles completed during the step.
    cycles: u64,
    /// Sum of those cycles' pauses (`GcStats::pauses`), ns.
    pause_ns: u64,
}

/// The worker threads and the main thread meet here: all start pushing
/// together, and the run (wall time) ends when all have finished
/// pushing; each thread then checks its window.
struct Gates {
    start: Barrier,
    done: Barrier,
}

/// What one thread measured.
struct ThreadResult {
    /// Time of each push (with its safepoint, if any), ns.
    lat: Vec<u32>,
    gc_steps: Vec<GcStep>,
}

fn ns(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// The message of push `j`.
#[inline(always)]
fn content(j: usize) -> u8 {
    j as u8
}

/// One push: allocate a fresh message, store it over slot `j % len`.
#[inline(always)]
fn push<'gc>(cx: &'gc Scope<'_>, w: &Window<'gc>, j: usize) {
    let msg = cx
        .alloc([content(j); MSG])
        .expect("spanheap allocation failed");
    w.slots[j % w.slots.len()].set(cx, Some(msg));
}

/// The push that last wrote slot `s` of a window of `n` after `pushes`
/// pushes.
fn last_writer(s: usize, n: usize, pushes: usize) -> Option<usize> {
    (s < pushes).then(|| s + (pushes - 1 - s) / n * n)
}

/// Checks that every slot holds the message of the push that last wrote
/// it (a collector that freed a live message would fail here).
fn verify(slot: impl Fn(usize) -> Option<Msg>, n: usize, pushes: usize) {
    for s in 0..n {
        match (slot(s), last_writer(s, n, pushes)) {
            (None, None) => {}
            (Some(m), Some(j)) if m.iter().all(|&b| b == content(j)) => {}
            _ => {
                eprintln!("error: window slot {s} does not hold the message of its last push");
                std::process::exit(1);
            }
        }
    }
}

/// One spanheap thread: its mutator, its window, `pushes` timed pushes.
fn spanheap_thread(
    heap: &Heap,
    window: usize,
    pushes: usize,
    every: usize,
    gates: &Gates,
) -> ThreadResult {
    let mut m = heap.mutator();
    let root: Root<Window<'static>> = m.scope(|cx| {
        let w = cx
            .alloc(Window {
                slots: (0..window).map(|_| GcCell::new(None)).collect(),
            })
            .expect("spanheap allocation failed");
        cx.root(w)
    });
    let mut lat = vec![0u32; pushes];
    let mut gc_steps = Vec::new();
    let c = heap.collector();
    gates.start.wait();
    m.scope(|cx| {
        let mut i = 0;
        while i < pushes {
            let end = (i + every).min(pushes);
            let (t_last, c0) = {
                let w = Gc::get_ref(root.get(cx));
                for (j, l) in lat.iter_mut().enumerate().take(end - 1).skip(i) {
                    let t0 = Instant::now();
                    push(cx, w, j);
                    *l = ns(t0.elapsed());
                }
                // No cycle completes while this thread is in its scope, so
                // any change of the count after this load happened during
                // the safepoint below.
                let c0 = c.cycles();
                let t0 = Instant::now();
                push(cx, w, end - 1);
                (t0, c0)
            };
            cx.safepoint();
            let d = t_last.elapsed();
            lat[end - 1] = ns(d);
            let c1 = c.cycles();
            if c1 != c0 {
                let st = heap.stats();
                // pauses[k] is the pause of cycle num_gc - len + 1 + k.
                let n = (c1 - c0) as usize;
                let pause: Duration = st.pauses.iter().rev().take(n).sum();
                gc_steps.push(GcStep {
                    step: end - 1,
                    ns: d.as_nanos() as u64,
                    cycles: c1 - c0,
                    pause_ns: pause.as_nanos() as u64,
                });
            }
            i = end;
        }
    });
    // Outside any scope: a thread that finished early does not hold up
    // the other threads' collections while it waits or verifies.
    gates.done.wait();
    m.scope(|cx| {
        let w = root.get(cx);
        verify(|s| w.slots[s].get().map(|g| *g), window, pushes);
    });
    ThreadResult { lat, gc_steps }
}

/// One `Box` thread: the same pushes into a `Vec<Option<Box<Msg>>>`.
fn box_thread(window: usize, pushes: usize, gates: &Gates) -> ThreadResult {
    let mut slots: Vec<Option<Box<Msg>>> = (0..window).map(|_| None).collect();
    let mut lat = vec![0u32; pushes];
    gates.start.wait();
    for (j, l) in lat.iter_mut().enumerate() {
        let t0 = Instant::now();
        let msg = Box::new([content(j); MSG]);
        slots[j % window] = Some(msg); // frees the oldest message
        *l = ns(t0.elapsed());
    }
    gates.done.wait();
    verify(|s| slots[s].as_deref().copied(), window, pushes);
    ThreadResult {
        lat,
        gc_steps: Vec::new(),
    }
}

/// User + system CPU time of the whole process (all threads), from
/// `/proc/self/stat` (in clock ticks of 10 ms; `None` off Linux).
fn process_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(v: &[u32], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as u64
}

struct Args {
    window: usize,
    pushes: usize,
    threads: usize,
    boxed: bool,
    every: usize,
    gogc: Option<u32>,
    bg_sweep: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: gc-latency [window=200000] [pushes=2000000] [threads=1] [--box] [--every=K] [--gogc=N] [--no-bg-sweep]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut pos = Vec::new();
    let mut a = Args {
        window: 200_000,
        pushes: 2_000_000,
        threads: 1,
        boxed: false,
        every: SAFEPOINT_EVERY,
        gogc: None,
        bg_sweep: true,
    };
    let num = |s: &str, what: &str| -> usize {
        s.parse()
            .unwrap_or_else(|_| usage(&format!("bad {what}: {s}")))
    };
    for arg in std::env::args().skip(1) {
        if arg == "--box" {
            a.boxed = true;
        } else if let Some(v) = arg.strip_prefix("--every=") {
            a.every = num(v, "--every");
        } else if let Some(v) = arg.strip_prefix("--gogc=") {
            a.gogc = Some(num(v, "--gogc") as u32);
        } else if arg == "--no-bg-sweep" {
            a.bg_sweep = false;
        } else if arg.starts_with('-') {
            usage(&format!("unknown option {arg}"));
        } else {
            pos.push(arg);
        }
    }
    let names = ["window", "pushes", "threads"];
    if pos.len() > names.len() {
        usage("too many arguments");
    }
    for (i, p) in pos.iter().enumerate() {
        let v = num(p, names[i]);
        match i {
            0 => a.window = v,
            1 => a.pushes = v,
            _ => a.threads = v,
        }
    }
    if a.threads == 0 || a.every == 0 || a.window < a.threads || a.pushes < a.threads {
        usage("threads and --every must be at least 1, window and pushes at least threads");
    }
    a
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse_args();
    let (win_t, push_t) = (a.window / a.threads, a.pushes / a.threads);
    let heap = if a.boxed {
        None
    } else {
        let mut b = Heap::builder().background_sweep(a.bg_sweep);
        if let Some(p) = a.gogc {
            b = b.gc_percent(p);
        }
        Some(b.build()?)
    };
    let gates = Gates {
        start: Barrier::new(a.threads + 1),
        done: Barrier::new(a.threads + 1),
    };
    let cpu0 = process_cpu();
    let (results, wall) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|_| {
                let (heap, gates) = (heap.as_ref(), &gates);
                s.spawn(move || match heap {
                    Some(h) => spanheap_thread(h, win_t, push_t, a.every, gates),
                    None => box_thread(win_t, push_t, gates),
                })
            })
            .collect();
        gates.start.wait();
        let t0 = Instant::now();
        gates.done.wait();
        let wall = t0.elapsed();
        let r: Vec<ThreadResult> = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .collect();
        (r, wall)
    });
    let cpu = match (cpu0, process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let st: Option<GcStats> = heap.as_ref().map(Heap::stats);

    // The worst step of each thread that did not see a cycle complete.
    let worst_other = results
        .iter()
        .flat_map(|r| {
            let gc: std::collections::HashSet<usize> = r.gc_steps.iter().map(|g| g.step).collect();
            r.lat
                .iter()
                .enumerate()
                .filter(move |(j, _)| !gc.contains(j))
                .map(|(_, &x)| x as u64)
        })
        .max()
        .unwrap_or(0);
    // The slowest steps of all threads: (ns, thread, push index, GC step).
    let mut slowest: Vec<(u64, usize, usize, Option<GcStep>)> = Vec::new();
    for (t, r) in results.iter().enumerate() {
        let mut idx: Vec<usize> = (0..r.lat.len()).collect();
        let k = SLOWEST.min(idx.len());
        idx.select_nth_unstable_by_key(k.saturating_sub(1), |&j| std::cmp::Reverse(r.lat[j]));
        for &j in &idx[..k] {
            let g = r.gc_steps.iter().find(|g| g.step == j).copied();
            slowest.push((r.lat[j] as u64, t, j, g));
        }
    }
    slowest.sort_by_key(|x| std::cmp::Reverse(x.0));
    slowest.truncate(SLOWEST);
    // The worst step once the ring is full (the first `win_t` pushes of
    // each thread fill it, and the heap grows meanwhile).
    let max_steady = results
        .iter()
        .flat_map(|r| r.lat.iter().skip(win_t).map(|&x| x as u64))
        .max()
        .unwrap_or(0);
    let mut lat: Vec<u32> = results.iter().flat_map(|r| r.lat.iter().copied()).collect();
    let gc_steps: Vec<GcStep> = results
        .iter()
        .flat_map(|r| r.gc_steps.iter().copied())
        .collect();
    let steps = lat.len() as u64;
    let mean_ns = lat.iter().map(|&x| x as u64).sum::<u64>() as f64 / steps as f64;
    lat.sort_unstable();
    let max = *lat.last().unwrap_or(&0) as u64;
    let (p50, p99, p999, p9999) = (
        quantile(&lat, 0.5),
        quantile(&lat, 0.99),
        quantile(&lat, 0.999),
        quantile(&lat, 0.9999),
    );
    let over = |t_us: u64| lat.len() - lat.partition_point(|&x| (x as u64) <= t_us * 1000);

    let name = if a.boxed { "box" } else { "spanheap" };
    println!(
        "gc-latency: {name}, window {} messages of {MSG} B ({:.0} MiB live), {} pushes, {} thread(s){}",
        a.window,
        mib((win_t * a.threads * MSG) as u64),
        push_t * a.threads,
        a.threads,
        if a.boxed {
            String::new()
        } else {
            format!(
                ", safepoint every {} pushes, GOGC={}",
                a.every,
                a.gogc.map_or("100 (default)".into(), |p| p.to_string())
            )
        }
    );
    println!();
    println!("step time (one push, plus the safepoint when due), over {steps} steps:");
    println!(
        "  max {:.1} µs   p99.99 {:.1} µs   p99.9 {:.1} µs   p99 {:.2} µs   p50 {:.2} µs   mean {:.0} ns",
        us(max),
        us(p9999),
        us(p999),
        us(p99),
        us(p50),
        mean_ns
    );
    println!("  max once the ring is full: {:.1} µs", us(max_steady));
    println!(
        "  steps over 250 µs: {}, over 1 ms: {}, over 10 ms: {}",
        over(250),
        over(1000),
        over(10_000)
    );
    println!(
        "wall {:.3} s, process CPU {}",
        wall.as_secs_f64(),
        cpu.map_or("n/a".into(), |c| format!("{:.2} s", c.as_secs_f64()))
    );

    println!("slowest steps (push index per thread; the ring is full from index {win_t}):");
    for (ns, t, j, g) in &slowest {
        let what = match g {
            Some(g) => format!(
                "safepoint with {} cycle(s), pause {:.1} µs",
                g.cycles,
                us(g.pause_ns)
            ),
            None if (j + 1) % a.every == 0 && !a.boxed => "safepoint, no cycle".into(),
            None => "push".into(),
        };
        println!("  {:>9.1} µs  thread {t} push {j:>8}  {what}", us(*ns));
    }

    let mut kv = vec![
        ("impl", name.to_string()),
        ("threads", a.threads.to_string()),
        ("window", a.window.to_string()),
        ("pushes", (push_t * a.threads).to_string()),
        ("max_us", format!("{:.1}", us(max))),
        ("max_steady_us", format!("{:.1}", us(max_steady))),
        ("p99_us", format!("{:.2}", us(p99))),
        ("p999_us", format!("{:.1}", us(p999))),
        ("p9999_us", format!("{:.1}", us(p9999))),
        ("mean_ns", format!("{mean_ns:.0}")),
        ("total_s", format!("{:.3}", wall.as_secs_f64())),
    ];
    if let Some(c) = process_cpu() {
        // The whole process so far (heap setup and window allocation too).
        kv.push(("cpu_s", format!("{:.2}", c.as_secs_f64())));
    }
    if let Some(st) = &st {
        let n = st.num_gc.max(1);
        let mean_pause = st.pause_total / n as u32;
        let last_pause = st.pauses.last().copied().unwrap_or_default();
        let gbps = |b: u64, d: Duration| {
            if d.is_zero() {
                0.0
            } else {
                b as f64 / d.as_secs_f64() / 1e9
            }
        };
        println!();
        println!(
            "collector (Heap::stats): {} cycles, pause total {:.1} ms, max {:.2} ms, mean {:.2} ms",
            st.num_gc,
            ms(st.pause_total),
            ms(st.pause_max),
            ms(mean_pause)
        );
        println!(
            "  marked per cycle (last cycle): {:.1} MiB, {} objects; heap goal now {:.1} MiB, heap_inuse {:.1} MiB",
            mib(st.heap_marked),
            st.last_marked_objects,
            mib(st.heap_goal),
            mib(st.mem.heap_inuse)
        );
        println!(
            "  mark throughput incl. sweep/mark termination: last cycle {:.2} GB/s ({:.1} MiB in {:.2} ms), \
             mean {:.2} GB/s (last cycle's marked bytes / mean pause of all cycles: \
             too high when early cycles marked a smaller heap)",
            gbps(st.heap_marked, last_pause),
            mib(st.heap_marked),
            ms(last_pause),
            gbps(st.heap_marked, mean_pause)
        );
        println!(
            "  GC wall share (pause total / wall): {:.1} %",
            100.0 * st.pause_total.as_secs_f64() / wall.as_secs_f64()
        );
        let worst_gc = gc_steps.iter().max_by_key(|g| g.ns);
        println!(
            "attribution: {} safepoint steps saw a cycle complete",
            gc_steps.len()
        );
        if let Some(g) = worst_gc {
            println!(
                "  worst GC step {:.1} µs = {} cycle pause(s) {:.1} µs + {:.1} µs outside the pause",
                us(g.ns),
                g.cycles,
                us(g.pause_ns),
                us(g.ns.saturating_sub(g.pause_ns))
            );
            let outside: Vec<u64> = gc_steps
                .iter()
                .map(|g| g.ns.saturating_sub(g.pause_ns))
                .collect();
            println!(
                "  time outside the pause in GC steps: mean {:.1} µs, max {:.1} µs",
                us(outside.iter().sum::<u64>() / outside.len() as u64),
                us(outside.iter().copied().max().unwrap_or(0))
            );
        }
        println!("  worst step without a cycle: {:.1} µs", us(worst_other));
        kv.extend([
            ("gcs", st.num_gc.to_string()),
            ("pause_total_ms", format!("{:.1}", ms(st.pause_total))),
            ("pause_max_us", format!("{:.0}", ms(st.pause_max) * 1e3)),
            ("max_nongc_us", format!("{:.1}", us(worst_other))),
        ]);
    } else {
        kv.extend([("gcs", "0".into())]);
    }
    let line: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!();
    println!("RESULT {}", line.join(" "));
    Ok(())
}

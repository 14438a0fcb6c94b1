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
//!   [`SAFEPOINT_EVERY`] pushes (1000 by default; `--every=K` changes it),
//!   as an interpreter would take one every few thousand instructions.
//!   Collections run concurrently with the pushes (the collector thread
//!   marks while this thread stays in its scope); a mark needs each
//!   thread's safepoint once (its clean-stack acknowledgement) to finish.
//!   The step that ends with a safepoint is timed *together with the
//!   safepoint*. Every push's time, measured by the mutator, is the
//!   authoritative latency measure: it includes the write barrier, mark
//!   assists, handshakes, and waiting for the gate when the collector
//!   holds it (the two short pauses per cycle that `GcStats` records).
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
//! Collector numbers (spanheap), from `Heap::stats()` at the end:
//! - *pauses*: `GcStats::pauses` (two per cycle: the gate's critical
//!   sections at mark start and mark termination), max and p99;
//! - *marked per cycle*: `heap_marked` of the last cycle (the live set is
//!   constant once the ring is full);
//! - *mark throughput*: the last cycle's marked bytes / its concurrent
//!   mark wall time (`GcStats::last_mark`). Bytes are a poor unit for this
//!   workload: messages are noscan, so marking one sets a bit and never
//!   reads its 1 KiB (the object count is printed too);
//! - *GC CPU*: CPU time of the collector's threads (`spanheap-gc`,
//!   `spanheap-mark-*`, `spanheap-sweep`, from `/proc/self/task`) over the
//!   CPU available during the run (cores × wall), as Go's
//!   `GCCPUFraction` counts it; mark assists and lazy sweeping on the
//!   mutator threads are not in it.
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
    gates.start.wait();
    m.scope(|cx| {
        let mut i = 0;
        while i < pushes {
            let end = (i + every).min(pushes);
            let t_last = {
                let w = Gc::get_ref(root.get(cx));
                for (j, l) in lat.iter_mut().enumerate().take(end - 1).skip(i) {
                    let t0 = Instant::now();
                    push(cx, w, j);
                    *l = ns(t0.elapsed());
                }
                let t0 = Instant::now();
                push(cx, w, end - 1);
                t0
            };
            cx.safepoint();
            lat[end - 1] = ns(t_last.elapsed());
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
    ThreadResult { lat }
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
    ThreadResult { lat }
}

/// CPU time of this process's threads whose name starts with one of
/// `prefixes` (`/proc/self/task/*/comm`, `stat`; `None` off Linux).
fn threads_cpu(prefixes: &[&str]) -> Option<Duration> {
    let mut ticks = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = e.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| comm.trim_end().starts_with(p)) {
            continue;
        }
        let st = std::fs::read_to_string(dir.join("stat")).ok()?;
        let rest = &st[st.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_millis(ticks * 10))
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
    const GC_THREADS: [&str; 3] = ["spanheap-gc", "spanheap-mark", "spanheap-sweep"];
    let cpu0 = process_cpu();
    let gc_cpu0 = threads_cpu(&GC_THREADS);
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
    let gc_cpu = match (gc_cpu0, threads_cpu(&GC_THREADS)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let st: Option<GcStats> = heap.as_ref().map(Heap::stats);

    // The slowest steps of all threads: (ns, thread, push index).
    let mut slowest: Vec<(u64, usize, usize)> = Vec::new();
    for (t, r) in results.iter().enumerate() {
        let mut idx: Vec<usize> = (0..r.lat.len()).collect();
        let k = SLOWEST.min(idx.len());
        idx.select_nth_unstable_by_key(k.saturating_sub(1), |&j| std::cmp::Reverse(r.lat[j]));
        for &j in &idx[..k] {
            slowest.push((r.lat[j] as u64, t, j));
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
    for (ns, t, j) in &slowest {
        let what = if (j + 1) % a.every == 0 && !a.boxed {
            "push + safepoint"
        } else {
            "push"
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
        let mut pauses = st.pauses.clone();
        pauses.sort_unstable();
        let pause_p99 = pauses
            .get(((pauses.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        let mark_mbps = if st.last_mark.is_zero() {
            0.0
        } else {
            st.heap_marked as f64 / st.last_mark.as_secs_f64() / 1e6
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gc_cpu_pct =
            gc_cpu.map(|c| 100.0 * c.as_secs_f64() / (cores as f64 * wall.as_secs_f64()));
        println!();
        println!(
            "collector (Heap::stats): {} cycles; pauses (2 per cycle): total {:.2} ms, max {:.1} µs, p99 {:.1} µs (of the last {})",
            st.num_gc,
            ms(st.pause_total),
            ms(st.pause_max) * 1e3,
            ms(pause_p99) * 1e3,
            pauses.len()
        );
        println!(
            "  concurrent mark: total {:.1} ms, last cycle {:.2} ms for {:.1} MiB, {} objects ({:.0} MB/s); \
             heap goal now {:.1} MiB, heap_inuse {:.1} MiB",
            ms(st.mark_total),
            ms(st.last_mark),
            mib(st.heap_marked),
            st.last_marked_objects,
            mark_mbps,
            mib(st.heap_goal),
            mib(st.mem.heap_inuse)
        );
        println!(
            "  GC CPU (collector, mark and sweep threads / {cores} cores x wall): {}",
            gc_cpu_pct.map_or("n/a".into(), |p| format!("{p:.1} %"))
        );
        println!(
            "  mark assists (in mutators' allocations, all threads): scanning {:.2} ms, waiting over the goal {:.2} ms",
            ms(st.assist_total),
            ms(st.assist_wait_total)
        );
        kv.extend([
            ("gcs", st.num_gc.to_string()),
            ("pause_total_ms", format!("{:.2}", ms(st.pause_total))),
            ("pause_max_us", format!("{:.0}", ms(st.pause_max) * 1e3)),
            ("pause_p99_us", format!("{:.0}", ms(pause_p99) * 1e3)),
            ("mark_ms", format!("{:.2}", ms(st.last_mark))),
            ("mark_mbps", format!("{mark_mbps:.0}")),
            ("assist_ms", format!("{:.2}", ms(st.assist_total))),
            ("assist_wait_ms", format!("{:.2}", ms(st.assist_wait_total))),
            (
                "gc_cpu_pct",
                gc_cpu_pct.map_or("nan".into(), |p| format!("{p:.1}")),
            ),
        ]);
    } else {
        kv.extend([("gcs", "0".into())]);
    }
    let line: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!();
    println!("RESULT {}", line.join(" "));
    Ok(())
}

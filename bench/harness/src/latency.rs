//! The `latency` workload: Go's GC latency test, the driver shared by
//! every peer (spec, sizes, closed-form output, timing and percentiles).
//!
//! The test comes from the Go issue tracker's GC latency program
//! (golang/go#9477, made widely known by Pusher's 2016 "Golang's
//! Real-time GC in Theory and Practice" and its ports to other runtimes);
//! this repository's own version is `examples/src/gc_latency.rs`.
//!
//! Rules, identical for every peer (Rust, `../go/latency.go`,
//! `../c/latency.c`):
//!
//! - A *window* of `W` messages stays live in a ring. Push `i` (`i` from 0
//!   to `P - 1`) allocates a fresh [`MSG`]-byte (1,024) pointer-free message
//!   whose bytes are all `i as u8`, and stores it in slot `i % W`. When
//!   `i >= W` it replaces message `j = i - W`, which becomes garbage; before
//!   it is replaced, its byte `j % 1024` is read and added to a `u64`
//!   checksum.
//! - Every push is timed on its own (a monotonic clock read before the
//!   allocation and after the store, the read-back included), and every
//!   push's time is kept (`u32` nanoseconds, saturating), not only the
//!   worst.
//! - Sizes: `W` = 200,000 messages (195 MiB live), `P` = 2,000,000 pushes;
//!   `--quick`: `W` = 2,000, `P` = 20,000.
//! - `--threads T` (peers with a shared heap only): each thread has its
//!   own window of `W / T` messages and makes `P / T` pushes, numbered
//!   from 0 in every thread; the threads build their (empty) windows, then
//!   start together (a barrier). The checksum is the sum over the threads.
//!
//! Output (stdout), one line: `latency window {W} pushes {P} checksum {C}`
//! where `W` and `P` are the totals over the threads (`T × (W / T)`,
//! `T × (P / T)`) and `C = T × Σ (j mod 256)` for `j < P/T − W/T`
//! ([`expected`]).
//!
//! Metrics (stderr), over all pushes of all threads pooled:
//! `max_push_ns`, `p99_push_ns`, `p999_push_ns` (nearest-rank
//! percentiles). The peers add their collectors' numbers (`gc_cycles`,
//! `max_pause_ns`, `p99_pause_ns`, where they have them).

use crate::{Metric, Report};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// A message's size in bytes.
pub const MSG: usize = 1024;

/// A message: pointer-free bytes.
pub type Msg = [u8; MSG];

/// Live messages (full size).
pub const WINDOW: usize = 200_000;

/// Pushes (full size).
pub const PUSHES: usize = 2_000_000;

/// `--quick` divides both sizes by this.
pub const QUICK_DIVISOR: usize = 100;

/// `(window, pushes)` for the whole run.
pub fn sizes(quick: bool) -> (usize, usize) {
    if quick {
        (WINDOW / QUICK_DIVISOR, PUSHES / QUICK_DIVISOR)
    } else {
        (WINDOW, PUSHES)
    }
}

/// One thread's `(window, pushes)`.
pub fn share(quick: bool, threads: usize) -> (usize, usize) {
    let (w, p) = sizes(quick);
    let t = threads.max(1);
    (w / t, p / t)
}

/// The message of push `i`.
#[inline(always)]
pub fn message(i: usize) -> Msg {
    [i as u8; MSG]
}

/// What message `j` adds to the checksum when it is replaced.
#[inline(always)]
pub fn leaving(m: &Msg, j: usize) -> u64 {
    u64::from(m[j % MSG])
}

/// The checksum of a correct run.
pub fn expected_checksum(quick: bool, threads: usize) -> u64 {
    let (w, p) = share(quick, threads);
    let n = p.saturating_sub(w) as u64;
    // Σ (j mod 256) for j < n: full periods of 0 + 1 + … + 255, then 0 … r−1.
    let (periods, r) = (n / 256, n % 256);
    let per_thread = periods * (255 * 256 / 2) + r * r.saturating_sub(1) / 2;
    per_thread * threads.max(1) as u64
}

/// The result line for `checksum`.
pub fn line(quick: bool, threads: usize, checksum: u64) -> String {
    let (w, p) = share(quick, threads);
    let t = threads.max(1);
    format!(
        "latency window {} pushes {} checksum {checksum}",
        w * t,
        p * t
    )
}

/// The output of a correct run.
pub fn expected(quick: bool, threads: usize) -> Vec<String> {
    vec![line(quick, threads, expected_checksum(quick, threads))]
}

/// A push time in nanoseconds (saturating at about 4.3 s).
#[inline(always)]
pub fn ns(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Runs `push` and stores its duration in `time`.
#[inline(always)]
pub fn timed<R>(time: &mut u32, push: impl FnOnce() -> R) -> R {
    let t0 = Instant::now();
    let r = push();
    *time = ns(t0.elapsed());
    r
}

/// A peer's thread of pushes.
pub trait Pushes {
    /// Builds an empty window of `window` slots, waits on `start`, then
    /// makes `times.len()` pushes (module docs), storing push `i`'s time in
    /// `times[i]`. Returns the checksum.
    fn pushes(&mut self, window: usize, times: &mut [u32], start: &Barrier) -> u64;
}

/// The value at quantile `q` of `sorted` (nearest rank).
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The report of a run: the line and the push-time metrics.
fn report(quick: bool, threads: usize, checksum: u64, mut times: Vec<u32>) -> Report {
    times.sort_unstable();
    let max = times.last().copied().unwrap_or(0);
    Report {
        lines: vec![line(quick, threads, checksum)],
        metrics: vec![
            Metric::int("max_push_ns", u64::from(max)),
            Metric::int("p99_push_ns", u64::from(quantile(&times, 0.99))),
            Metric::int("p999_push_ns", u64::from(quantile(&times, 0.999))),
        ],
    }
}

/// Runs the workload on one thread, the caller's.
pub fn run<P: Pushes>(quick: bool, peer: &mut P) -> Report {
    let (w, p) = share(quick, 1);
    let mut times = vec![0u32; p];
    let checksum = peer.pushes(w, &mut times, &Barrier::new(1));
    report(quick, 1, checksum, times)
}

/// Runs the workload on `threads` threads, each with its own `make()`
/// (created on that thread); one thread runs on the caller's.
pub fn run_threads<P: Pushes>(quick: bool, threads: usize, make: impl Fn() -> P + Sync) -> Report {
    if threads <= 1 {
        return run(quick, &mut make());
    }
    let (w, p) = share(quick, threads);
    let start = Barrier::new(threads);
    let results: Vec<(u64, Vec<u32>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (make, start) = (&make, &start);
                s.spawn(move || {
                    let mut times = vec![0u32; p];
                    let checksum = make().pushes(w, &mut times, start);
                    (checksum, times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a latency thread panicked"))
            .collect()
    });
    let checksum = results.iter().map(|r| r.0).sum();
    let times = results.into_iter().flat_map(|r| r.1).collect();
    report(quick, threads, checksum, times)
}

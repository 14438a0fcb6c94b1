//! Bounded memory, Go's `TestGcSys` analogue: allocating a lot with a
//! small live set must not grow the process. Go's test (`testprog/gc.go`,
//! `GCSys`) allocates a million 1029-byte slices (1 GB), keeping only the
//! last one, and fails if `MemStats.Sys` grew by more than 16 MiB.
//!
//! Here the same runs in a child process (the test binary re-executed with
//! [`CHILD`] set, so that no other test shares the RSS being measured),
//! twice:
//! - `noscan`: 1029-byte pointer-free objects (`[u8; 1029]`: headerless,
//!   in noscan spans of the 1152-byte class) — exactly Go's test;
//! - `scan`: objects with a GC pointer and a 1016-byte payload (1024 bytes
//!   plus the 8-byte type header: 1032 bytes, the same size class), each
//!   pointing at a permanently live anchor, so every one is scanned when
//!   marked and has its header read when swept.
//!
//! The live set is a rooted ring of the last [`RING`] objects (Go's keeps
//! one). The child first allocates [`WARMUP`] bytes and collects (the
//! heap's first arena, its span and bitmap metadata and the collector's
//! threads come into being then, as they exist in Go's process before its
//! test starts), reads its RSS (`VmRSS`), allocates the total, reading the
//! RSS every 64 Ki objects, and prints the first reading and the highest.
//! The parent asserts that the highest exceeds the first by less than 16
//! MiB. This proves that collections keep up with the allocation, that
//! swept slots are reused, and that the memory the collector keeps mapped
//! (110 % of the larger of the heap goal and the cycle's peak) stays small
//! when the live heap is small.
//!
//! A control runs the same loop with collection off (GOGC=off) over 64
//! MiB, and asserts that the RSS then grows by at least 3/4 of it: the
//! measurement sees memory that is not reclaimed.
//!
//! The total is 1 GiB, Go's (about a quarter of a second per kind in the
//! test profile); `SPANHEAP_BOUNDED_MEMORY_MIB=N` changes it.

use spanheap::{Gc, GcCell, Heap, Root, Trace};
use std::process::Command;

/// Set in the child: which kind of object it allocates.
const CHILD: &str = "SPANHEAP_BOUNDED_MEMORY_CHILD";
/// Overrides the total allocated, MiB.
const TOTAL_ENV: &str = "SPANHEAP_BOUNDED_MEMORY_MIB";
/// Objects kept live (a ring of the most recent ones).
const RING: usize = 16;
/// Bytes allocated before the first RSS reading.
const WARMUP: usize = 8 << 20;
/// The bound on the RSS growth (Go's).
const BOUND: u64 = 16 << 20;
/// Objects allocated per scope.
const PER_SCOPE: usize = 256;
/// RSS is read every this many objects.
const READ_EVERY: usize = 64 << 10;

/// Go's object: 1029 pointer-free bytes.
type Noscan = [u8; 1029];

/// A scan object of 1024 bytes (plus its header).
#[derive(Trace)]
struct Scan<'gc> {
    anchor: Gc<'gc, Anchor>,
    data: [u8; 1016],
}

/// The object every `Scan` points at; rooted for the whole run.
#[derive(Trace)]
struct Anchor {
    id: u64,
}

/// The live set: the last [`RING`] objects of each kind.
#[derive(Trace)]
struct Ring<'gc> {
    noscan: Vec<GcCell<'gc, Option<Gc<'gc, Noscan>>>>,
    scan: Vec<GcCell<'gc, Option<Gc<'gc, Scan<'gc>>>>>,
}

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

/// The child: allocates `total` bytes of `kind` objects, printing one
/// `bounded-memory:` line with its measurements.
fn child(kind: &str, total: usize) {
    let (scan, gc) = match kind {
        "scan" => (true, true),
        "noscan" => (false, true),
        "gc-off" => (false, false),
        _ => panic!("unknown kind {kind}"),
    };
    let b = Heap::builder();
    let b = if gc { b.gc_percent(100) } else { b.gc_off() };
    let h = b
        .stress(None)
        .checkmark(false)
        .trace(false)
        .build()
        .unwrap();
    let mut m = h.mutator();
    let (anchor, ring): (Root<Anchor>, Root<Ring<'static>>) = m.scope(|cx| {
        let a = cx.alloc(Anchor { id: 7 }).unwrap();
        let r = cx
            .alloc(Ring {
                noscan: (0..RING).map(|_| GcCell::new(None)).collect(),
                scan: (0..RING).map(|_| GcCell::new(None)).collect(),
            })
            .unwrap();
        (cx.root(a), cx.root(r))
    });
    let size = if scan { 1032 } else { 1029 };
    let mut n = 0usize;
    let alloc_objects = |m: &mut spanheap::Mutator, count: usize, n: &mut usize| {
        m.scope(|cx| {
            let (a, r) = (anchor.get(cx), ring.get(cx));
            for _ in 0..count {
                let fill = *n as u8;
                if scan {
                    let o = cx
                        .alloc(Scan {
                            anchor: a,
                            data: [fill; 1016],
                        })
                        .unwrap();
                    r.scan[*n % RING].set(cx, Some(o));
                } else {
                    let o = cx.alloc([fill; 1029]).unwrap();
                    r.noscan[*n % RING].set(cx, Some(o));
                }
                *n += 1;
            }
        });
    };
    let mut done = 0;
    while done < WARMUP / size {
        alloc_objects(&mut m, PER_SCOPE, &mut done);
    }
    h.collect();
    let before = rss();
    let mut max = before;
    let objects = total / size;
    while n < objects {
        let k = PER_SCOPE.min(objects - n);
        alloc_objects(&mut m, k, &mut n);
        if n % READ_EVERY < k {
            max = max.max(rss());
        }
    }
    let after = rss();
    max = max.max(after);
    // The live set is intact: the ring holds the last RING objects.
    m.scope(|cx| {
        let r = ring.get(cx);
        for back in 1..=RING.min(n) {
            let i = n - back;
            let fill = i as u8;
            if scan {
                let o = r.scan[i % RING].get().expect("ring slot");
                assert!(o.data.iter().all(|&b| b == fill), "object {i} corrupted");
                assert_eq!(o.anchor.id, 7);
            } else {
                let o = r.noscan[i % RING].get().expect("ring slot");
                assert!(o.iter().all(|&b| b == fill), "object {i} corrupted");
            }
        }
    });
    let st = h.stats();
    println!(
        "bounded-memory: kind={kind} objects={n} object_bytes={size} allocated_mib={} \
         rss_before={before} rss_after={after} rss_max={max} cycles={} heap_sys={} \
         heap_released={} heap_goal={}",
        (n * size) >> 20,
        st.num_gc,
        st.mem.heap_sys,
        st.mem.heap_released,
        st.heap_goal,
    );
}

fn total_bytes() -> usize {
    std::env::var(TOTAL_ENV)
        .ok()
        .map(|v| {
            v.parse::<usize>()
                .expect("SPANHEAP_BOUNDED_MEMORY_MIB: a number")
                << 20
        })
        .unwrap_or(1 << 30)
}

/// Runs the child for `kind`, allocating `total` bytes (re-running `test`
/// of this binary); returns its result line and its RSS growth (`None` in
/// the child itself).
fn run(test: &str, kind: &str, total: usize) -> Option<(String, u64)> {
    if let Ok(k) = std::env::var(CHILD) {
        if k == kind {
            child(kind, total);
        }
        return None;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, kind)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The test harness prints the test's name on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("bounded-memory:").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result line in the child's output: {stdout}"));
    println!("{line}");
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    let (before, max) = (field("rss_before"), field("rss_max"));
    assert!(
        field("allocated_mib") as usize >= (total >> 20) - 1,
        "the child did not allocate the total: {line}"
    );
    Some((line.to_string(), max.saturating_sub(before)))
}

/// Runs the child for `kind` and checks that its RSS grew by less than
/// [`BOUND`].
fn bounded(test: &str, kind: &str) {
    let Some((line, growth)) = run(test, kind, total_bytes()) else {
        return;
    };
    assert!(
        growth < BOUND,
        "RSS grew by {:.1} MiB (bound {} MiB) allocating {} MiB in {kind} objects with \
         {RING} live: {line}",
        growth as f64 / (1 << 20) as f64,
        BOUND >> 20,
        total_bytes() >> 20,
    );
}

#[test]
fn rss_stays_bounded_noscan_1029_byte_objects() {
    bounded("rss_stays_bounded_noscan_1029_byte_objects", "noscan");
}

#[test]
fn rss_stays_bounded_scan_objects() {
    bounded("rss_stays_bounded_scan_objects", "scan");
}

/// The control: the same loop with GOGC=off over 64 MiB must show the
/// growth (the measurement reads the right process, after the
/// allocation, and would see memory that is not reclaimed).
#[test]
fn rss_measurement_sees_growth_without_collection() {
    let total = 64 << 20;
    let test = "rss_measurement_sees_growth_without_collection";
    let Some((line, growth)) = run(test, "gc-off", total) else {
        return;
    };
    assert!(
        growth >= (total as u64) * 3 / 4,
        "without collections, RSS grew by only {growth} bytes allocating {total}: {line}"
    );
}

//! Allocation churn with a constant live set: spanheap against `Box` and
//! `Rc`, single-threaded, in one binary.
//!
//! A ring of `LIVE` objects is kept alive. Each *step* allocates a new
//! object whose payload is a `u64` array of 16, 64 or 256 bytes (chosen
//! uniformly at random), fills it, and stores it over a randomly chosen
//! slot of the ring, so the old object becomes garbage: the live set stays
//! at `LIVE` objects (about `LIVE` × 112 bytes of payload) and garbage is
//! produced at a steady rate. The random sequence (xorshift64*, fixed
//! seed) is the same for all three. Each step also reads the first word of
//! the object it replaces, so the loop cannot be optimised away.
//!
//! One criterion *iteration* is [`STEPS`] steps; the ratio table reports
//! ns per step.
//!
//! - **spanheap**: the ring is a `GcRefCell<Vec<Obj>>` inside a GC object
//!   held by one `Root`; `Obj` is an enum of `Gc<[u64; 2]>`,
//!   `Gc<[u64; 8]>`, `Gc<[u64; 32]>` (pointer-free payloads, so the new
//!   objects are noscan and headerless). The mutator leaves its scope
//!   every [`PER_SCOPE`] allocations, re-entering and reaching the ring
//!   through the `Root`; collections run there when the heap reached its
//!   goal. Default heap settings (GOGC=100, background sweeping). Each
//!   ring size has its own heap, filled before measuring.
//! - **Box** / **Rc**: a `Vec` of the same enum over `Box<[u64; N]>` /
//!   `Rc<[u64; N]>`; the assignment drops (frees) the old object.
//!
//! After criterion finishes, `main` prints a ratio table (spanheap/Box,
//! Rc/Box) from the medians this run wrote to
//! `target/criterion/churn/…/new/estimates.json`, and spanheap's GC
//! statistics for each ring size: collections, pause total and maximum,
//! heap goal and `heap_inuse` at the end.

use criterion::{BenchmarkId, Criterion, Throughput};
use spanheap::{Gc, GcRefCell, GcStats, Heap, Mutator, Root, Trace};
use std::hint::black_box;

use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// Ring sizes (live objects).
const LIVES: [usize; 2] = [100_000, 1_000_000];
/// Steps per criterion iteration.
const STEPS: usize = 100_000;
/// spanheap leaves its scope after this many allocations.
const PER_SCOPE: usize = 1000;

/// The implementations, in table order.
const IMPLS: [&str; 3] = ["spanheap", "box", "rc"];

/// xorshift64*: deterministic and cheap.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Rng(0x5eed_1234_abcd_ef01)
    }
    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A ring index below `live` and a size kind (0, 1, 2).
    #[inline(always)]
    fn step(&mut self, live: usize) -> (usize, u64) {
        let r = self.next();
        ((r as usize) % live, (r >> 40) % 3)
    }
}

// ---------------------------------------------------------------------
// spanheap
// ---------------------------------------------------------------------

#[derive(Trace)]
enum Obj<'gc> {
    S(Gc<'gc, [u64; 2]>),
    M(Gc<'gc, [u64; 8]>),
    L(Gc<'gc, [u64; 32]>),
}

impl Obj<'_> {
    #[inline(always)]
    fn first(&self) -> u64 {
        match self {
            Obj::S(g) => g[0],
            Obj::M(g) => g[0],
            Obj::L(g) => g[0],
        }
    }
}

#[derive(Trace)]
struct Ring<'gc> {
    slots: GcRefCell<'gc, Vec<Obj<'gc>>>,
}

struct Spanheap {
    heap: Heap,
    m: Mutator,
    ring: Root<Ring<'static>>,
    live: usize,
    rng: Rng,
    steps: u64,
}

impl Spanheap {
    fn new(live: usize) -> Self {
        let heap = Heap::builder().build().expect("default heap settings");
        let mut m = heap.mutator();
        let ring = m.scope(|cx| {
            let r = cx
                .alloc(Ring {
                    slots: GcRefCell::new(Vec::with_capacity(live)),
                })
                .expect("spanheap allocation failed");
            cx.root(r)
        });
        // Fill the ring, leaving the scope every PER_SCOPE allocations.
        let mut filled = 0;
        while filled < live {
            let k = PER_SCOPE.min(live - filled);
            m.scope(|cx| {
                let ring = Gc::get_ref(ring.get(cx));
                let mut v = ring.slots.borrow_mut(cx);
                for i in filled..filled + k {
                    let x = i as u64;
                    let o = match i % 3 {
                        0 => Obj::S(cx.alloc([x; 2]).expect("spanheap allocation failed")),
                        1 => Obj::M(cx.alloc([x; 8]).expect("spanheap allocation failed")),
                        _ => Obj::L(cx.alloc([x; 32]).expect("spanheap allocation failed")),
                    };
                    v.push(o);
                }
            });
            filled += k;
        }
        Spanheap {
            heap,
            m,
            ring,
            live,
            rng: Rng::new(),
            steps: 0,
        }
    }

    /// `n` steps, in scopes of PER_SCOPE allocations.
    #[inline(never)]
    fn run(&mut self, n: usize) -> u64 {
        let (ring, live, rng) = (&self.ring, self.live, &mut self.rng);
        let mut sum = 0;
        let mut done = 0;
        while done < n {
            let k = PER_SCOPE.min(n - done);
            sum += self.m.scope(|cx| {
                let ring = Gc::get_ref(ring.get(cx));
                let mut v = ring.slots.borrow_mut(cx);
                let mut sum = 0;
                for j in 0..k {
                    let (i, kind) = rng.step(live);
                    let x = (done + j) as u64;
                    let o = match kind {
                        0 => Obj::S(cx.alloc([x; 2]).expect("spanheap allocation failed")),
                        1 => Obj::M(cx.alloc([x; 8]).expect("spanheap allocation failed")),
                        _ => Obj::L(cx.alloc([x; 32]).expect("spanheap allocation failed")),
                    };
                    sum += std::mem::replace(&mut v[i], o).first();
                }
                sum
            });
            done += k;
        }
        self.steps += n as u64;
        sum
    }
}

// ---------------------------------------------------------------------
// Box and Rc
// ---------------------------------------------------------------------

enum BoxObj {
    S(Box<[u64; 2]>),
    M(Box<[u64; 8]>),
    L(Box<[u64; 32]>),
}

enum RcObj {
    S(Rc<[u64; 2]>),
    M(Rc<[u64; 8]>),
    L(Rc<[u64; 32]>),
}

/// A pointer type the ring can hold (`Box` or `Rc` of the three arrays).
trait Manual {
    fn make(kind: u64, x: u64) -> Self;
    fn first(&self) -> u64;
}

impl Manual for BoxObj {
    #[inline(always)]
    fn make(kind: u64, x: u64) -> Self {
        match kind {
            0 => BoxObj::S(Box::new([x; 2])),
            1 => BoxObj::M(Box::new([x; 8])),
            _ => BoxObj::L(Box::new([x; 32])),
        }
    }
    #[inline(always)]
    fn first(&self) -> u64 {
        match self {
            BoxObj::S(b) => b[0],
            BoxObj::M(b) => b[0],
            BoxObj::L(b) => b[0],
        }
    }
}

impl Manual for RcObj {
    #[inline(always)]
    fn make(kind: u64, x: u64) -> Self {
        match kind {
            0 => RcObj::S(Rc::new([x; 2])),
            1 => RcObj::M(Rc::new([x; 8])),
            _ => RcObj::L(Rc::new([x; 32])),
        }
    }
    #[inline(always)]
    fn first(&self) -> u64 {
        match self {
            RcObj::S(b) => b[0],
            RcObj::M(b) => b[0],
            RcObj::L(b) => b[0],
        }
    }
}

struct ManualRing<T> {
    v: Vec<T>,
    rng: Rng,
}

impl<T: Manual> ManualRing<T> {
    fn new(live: usize) -> Self {
        let v = (0..live)
            .map(|i| T::make((i % 3) as u64, i as u64))
            .collect();
        ManualRing { v, rng: Rng::new() }
    }

    #[inline(never)]
    fn run(&mut self, n: usize) -> u64 {
        let live = self.v.len();
        let mut sum = 0;
        for j in 0..n {
            let (i, kind) = self.rng.step(live);
            let o = T::make(kind, j as u64);
            sum += std::mem::replace(&mut self.v[i], o).first();
        }
        sum
    }
}

// ---------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------

/// Runs the group; returns spanheap's statistics per ring size that ran.
fn bench(c: &mut Criterion) -> Vec<(usize, GcStats, u64)> {
    let mut g = c.benchmark_group("churn");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .sample_size(20)
        .throughput(Throughput::Elements(STEPS as u64));
    let mut stats = Vec::new();
    for live in LIVES {
        let func = format!("live{live}");
        {
            // Built lazily so a filtered-out benchmark does not fill a heap.
            let mut sh: Option<Spanheap> = None;
            g.bench_function(BenchmarkId::new(&func, "spanheap"), |b| {
                let sh = sh.get_or_insert_with(|| Spanheap::new(live));
                b.iter(|| sh.run(black_box(STEPS)))
            });
            if let Some(sh) = sh {
                stats.push((live, sh.heap.stats(), sh.steps));
            }
        }
        {
            let mut r: Option<ManualRing<BoxObj>> = None;
            g.bench_function(BenchmarkId::new(&func, "box"), |b| {
                let r = r.get_or_insert_with(|| ManualRing::new(live));
                b.iter(|| r.run(black_box(STEPS)))
            });
        }
        {
            let mut r: Option<ManualRing<RcObj>> = None;
            g.bench_function(BenchmarkId::new(&func, "rc"), |b| {
                let r = r.get_or_insert_with(|| ManualRing::new(live));
                b.iter(|| r.run(black_box(STEPS)))
            });
        }
    }
    g.finish();
    stats
}

// ---------------------------------------------------------------------
// Ratio table (the same reading-back as heap/benches/alloc.rs).
// ---------------------------------------------------------------------

#[path = "../../heap/benches/support/medians.rs"]
mod medians;
use medians::{criterion_dir, parse_median};

/// Median ns per step of `churn/live<live>/<imp>`, if this run wrote it
/// (files older than `since` come from an earlier run).
fn median_ns_per_step(
    dir: &std::path::Path,
    since: SystemTime,
    live: usize,
    imp: &str,
) -> Option<f64> {
    let path = dir
        .join("churn")
        .join(format!("live{live}"))
        .join(imp)
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    Some(parse_median(&std::fs::read_to_string(&path).ok()?)? / STEPS as f64)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn print_tables(since: SystemTime, stats: &[(usize, GcStats, u64)]) {
    let dir = criterion_dir();
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "n/a".to_string(),
    };
    let mut out = String::new();
    for live in LIVES {
        let m: Vec<Option<f64>> = IMPLS
            .iter()
            .map(|i| median_ns_per_step(&dir, since, live, i))
            .collect();
        if m.iter().all(Option::is_none) {
            continue;
        }
        out.push_str(&format!(
            "| {live} | {} | {} | {} | {} | {} |\n",
            fmt(m[0]),
            fmt(m[1]),
            fmt(m[2]),
            ratio(m[0], m[1]),
            ratio(m[2], m[1]),
        ));
    }
    if out.is_empty() {
        println!(
            "\nratio table: no estimates written by this run in {} (filtered, or --test/--list mode)",
            dir.display()
        );
    } else {
        println!(
            "\nratio table (from {}): median ns per step (allocate one object, replace a random live one)\n",
            dir.display()
        );
        println!("| live objects | spanheap | Box | Rc | spanheap/Box | Rc/Box |");
        println!("|---|---|---|---|---|---|");
        print!("{out}");
    }
    if !stats.is_empty() {
        println!("\nspanheap GC statistics (whole benchmark: warm-up and measurement)\n");
        println!(
            "| live objects | steps | collections | steps/collection | pause total (ms) | pause max (ms) | mean pause (ms) | heap_goal (MiB) | heap_inuse (MiB) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (live, st, steps) in stats {
            let per = |x: f64| {
                if st.num_gc == 0 {
                    "n/a".to_string()
                } else {
                    format!("{:.0}", x / st.num_gc as f64)
                }
            };
            println!(
                "| {live} | {steps} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} |",
                st.num_gc,
                per(*steps as f64),
                st.pause_total.as_secs_f64() * 1e3,
                st.pause_max.as_secs_f64() * 1e3,
                if st.num_gc == 0 {
                    0.0
                } else {
                    st.pause_total.as_secs_f64() * 1e3 / st.num_gc as f64
                },
                mib(st.heap_goal),
                mib(st.mem.heap_inuse),
            );
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    let stats = bench(&mut c);
    c.final_summary();
    print_tables(since, &stats);
}

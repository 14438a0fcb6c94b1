//! A large random graph with cycles, built and mutated by two threads on
//! one heap, with parts of it cut off and shown collected.
//!
//! Each of the two threads has its own `Mutator` and owns a graph: a heap
//! object `Graph`, kept alive by a `Root`, lists the thread's *clusters*
//! of 64 `Vertex` objects. A vertex has a payload derived from its id and
//! a `GcRefCell` list of edges: to random vertices of its own cluster
//! (so a cluster is full of cycles), and one edge in 256 to a random vertex
//! of a random cluster (so the clusters are linked, in cycles too). The
//! run is a sequence of steps, separated by barriers:
//!
//! 1. *build*: each thread allocates `vertices-per-thread` vertices (rounded
//!    up to whole clusters) and wires each to `edges-per-vertex` targets.
//! 2. each *round*, each thread, in a first step,
//!    - `vertices-per-thread` times: rewires a random edge to a new
//!      target, and *replaces* a random vertex of a cluster by a new one
//!      with new edges. The old vertex is *retired*: it keeps its edges,
//!      and the edges of others that point at it;
//!    - sends `Root`s of `vertices-per-thread / 512` random vertices to
//!      the other thread over a channel;
//!
//!    and in a second step,
//!    - adds each vertex the other thread sent as an edge of one of its own
//!      vertices, and drops the `Root` (a *cross-link*: the vertex may then
//!      stay alive only because the other thread's graph reaches it);
//!    - *cuts* about a quarter of its clusters: their vertices are
//!      retired. Then every vertex drops its edges to this thread's retired
//!      vertices — except one vertex in 64, which keeps them. Most retired
//!      vertices, and the cycles among them (whole clusters), become
//!      garbage; some stay reachable (through the vertices that kept their
//!      edges, or through the other thread);
//!    - allocates new clusters to replace the ones it cut.
//!
//! The threads stay inside their scopes for a whole step and call
//! `Scope::safepoint` every 1024 operations, so collections paced by their
//! allocation run concurrently with the mutation (and exercise the write
//! barrier). After each step, with both threads outside their scopes, the
//! main thread *checks*: it walks the graph from both threads' clusters
//! (verifying every payload it reaches), then forces two collections
//! (`Heap::collect`: the second one finishes the sweep of the first, so
//! every object unreachable at the first has been dropped by then), and
//! compares, for each thread, `allocated - dropped` (counted by a field of
//! `Vertex` whose `Drop` bumps a counter) with the number of its vertices
//! the walk reached. They must be equal: a difference means the collector
//! freed a reachable vertex or kept (or never dropped) an unreachable one
//! — a collector bug, which the program reports, exiting with status 1.
//!
//! Output: one row per check with the vertices allocated, reachable and
//! dropped so far (both threads), the vertices retired so far and how many
//! of those are still reachable, the cross-links made so far, the
//! collections the threads' allocation started during the step (not the
//! checks' forced ones), and the step's and the check's wall times; then
//! the verdict and the heap's statistics (`Heap::stats`). Everything but
//! the timings and the collector's own counters is deterministic: each
//! thread draws from its own seeded SplitMix64, and the exchanges happen
//! between barriers. The defaults take about 4 s on two cores.
//!
//! `SPANHEAP_GCSTRESS=N` (a collection every `N` allocations of a thread)
//! and `SPANHEAP_CHECKMARK=1` (every mark verified by a stop-the-world
//! re-mark) make the run a stress test of the collector.
//!
//! Usage: `cargo run --release -p spanheap-examples --bin graph --
//! [--gctrace] [vertices-per-thread=100000] [edges-per-vertex=4]
//! [rounds=5]` (`--gctrace`, or `SPANHEAP_GCTRACE=1`, prints one line per
//! collection to stderr).

use spanheap::{AllocError, Gc, GcRefCell, GcStats, Heap, Mutator, Root, Scope, Trace};
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Barrier, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Mutator threads.
const THREADS: usize = 2;
/// Operations between two safepoints of a mutator thread.
const SAFEPOINT_EVERY: usize = 1024;
/// Vertices per cluster.
const CLUSTER: usize = 64;
/// One edge in this many leads out of its cluster.
const LONG_ONE_IN: u64 = 256;
/// Each round cuts one cluster in this many.
const CUT_ONE_IN: u64 = 4;
/// One vertex in this many keeps its edges to retired vertices.
const KEEP_ONE_IN: u64 = 64;
/// Vertices sent to the other thread per round: `vertices / EXPORT_PER`.
const EXPORT_PER: usize = 512;
/// Words of payload per vertex.
const PAYLOAD: usize = 4;
/// A vertex id is its owner thread in these high bits and its sequence
/// number below.
const OWNER_SHIFT: u32 = 40;

/// Vertices allocated by each thread (`Tally`s created).
static ALLOCATED: [AtomicU64; THREADS] = [const { AtomicU64::new(0) }; THREADS];
/// Vertices of each thread dropped (by the collector's sweep, or after a
/// failed allocation).
static DROPPED: [AtomicU64; THREADS] = [const { AtomicU64::new(0) }; THREADS];

/// Counts the vertices of one thread: one is made with each vertex, and
/// its `Drop` runs when the collector frees the vertex. (`Vertex` itself
/// cannot implement `Drop`: the derive forbids it, since a traced type's
/// `Drop` could reach objects freed by the same sweep; a skipped field's
/// type may.)
struct Tally {
    owner: usize,
}

impl Tally {
    fn new(owner: usize) -> Self {
        ALLOCATED[owner].fetch_add(1, Ordering::Relaxed);
        Tally { owner }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        DROPPED[self.owner].fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Trace)]
struct Vertex<'gc> {
    /// Owner thread and sequence number (see [`OWNER_SHIFT`]).
    id: u64,
    /// Derived from `id` ([`payload`]), checked by every walk.
    payload: [u64; PAYLOAD],
    /// Set by the owner when the vertex leaves its cluster.
    retired: AtomicBool,
    edges: GcRefCell<'gc, Vec<V<'gc>>>,
    #[trace(skip)]
    _tally: Tally,
}

/// A pointer to a vertex.
type V<'gc> = Gc<'gc, Vertex<'gc>>;

#[derive(Trace)]
struct Cluster<'gc> {
    /// Always [`CLUSTER`] vertices.
    vertices: GcRefCell<'gc, Vec<V<'gc>>>,
}

/// A thread's graph. Retired vertices are in no cluster: they live as
/// long as an edge reaches them.
#[derive(Trace)]
struct Graph<'gc> {
    clusters: GcRefCell<'gc, Vec<Gc<'gc, Cluster<'gc>>>>,
}

fn owner(id: u64) -> usize {
    (id >> OWNER_SHIFT) as usize
}

fn payload(id: u64) -> [u64; PAYLOAD] {
    std::array::from_fn(|i| SplitMix64(id ^ ((i as u64) << 56)).next())
}

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast, and good enough to
/// pick random vertices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// A new vertex of thread `owner`, with the next sequence number.
fn new_vertex<'gc>(owner: usize, next_seq: &mut u64, edges: Vec<V<'gc>>) -> Vertex<'gc> {
    let id = ((owner as u64) << OWNER_SHIFT) | *next_seq;
    *next_seq += 1;
    Vertex {
        id,
        payload: payload(id),
        retired: AtomicBool::new(false),
        edges: GcRefCell::new(edges),
        _tally: Tally::new(owner),
    }
}

/// A random edge target for a vertex of the cluster `home` (not empty):
/// a vertex of `home`, or one time in [`LONG_ONE_IN`] a vertex of a
/// random cluster of `clusters`. No cluster may be borrowed mutably.
fn target<'gc>(
    rng: &mut SplitMix64,
    clusters: &[Gc<'gc, Cluster<'gc>>],
    home: &[V<'gc>],
) -> V<'gc> {
    if rng.one_in(LONG_ONE_IN)
        && let Some(v) = random_vertex(rng, clusters)
    {
        return v;
    }
    home[rng.below(home.len())]
}

/// A random vertex of a random cluster.
fn random_vertex<'gc>(rng: &mut SplitMix64, clusters: &[Gc<'gc, Cluster<'gc>>]) -> Option<V<'gc>> {
    if clusters.is_empty() {
        return None;
    }
    let vertices = clusters[rng.below(clusters.len())].vertices.borrow();
    if vertices.is_empty() {
        return None;
    }
    Some(vertices[rng.below(vertices.len())])
}

/// Runs `f` on consecutive chunks of `0..total` of at most `chunk` items,
/// with a safepoint before each chunk. `f` gets the scope shared, so the
/// `Gc`s it makes cannot outlive its call (nor, therefore, cross a
/// safepoint).
fn in_chunks(
    cx: &mut Scope<'_>,
    total: usize,
    chunk: usize,
    mut f: impl FnMut(&Scope<'_>, Range<usize>) -> Result<(), AllocError>,
) -> Result<(), AllocError> {
    let mut i = 0;
    while i < total {
        cx.safepoint();
        let end = total.min(i + chunk);
        f(cx, i..end)?;
        i = end;
    }
    Ok(())
}

/// Chunk size, in clusters, for work on whole clusters.
const CLUSTER_CHUNK: usize = SAFEPOINT_EVERY / CLUSTER;

/// The parameters.
#[derive(Clone, Copy)]
struct Config {
    gctrace: bool,
    vertices: usize,
    edges: usize,
    rounds: usize,
}

impl Config {
    fn clusters(&self) -> usize {
        self.vertices.div_ceil(CLUSTER)
    }

    fn exports(&self) -> usize {
        (self.vertices / EXPORT_PER).max(1)
    }
}

/// What the threads and the main thread share.
struct Shared {
    /// The two threads and the main thread meet here between steps.
    barrier: Barrier,
    /// The first allocation error; once set, every step is skipped.
    failure: Mutex<Option<String>>,
    /// Vertices retired (replaced or cut) so far, all threads.
    retired: AtomicU64,
    /// Cross-links made so far, all threads.
    links: AtomicU64,
}

impl Shared {
    fn failed(&self) -> bool {
        self.lock_failure().is_some()
    }

    fn fail(&self, msg: String) {
        self.lock_failure().get_or_insert(msg);
    }

    fn lock_failure(&self) -> MutexGuard<'_, Option<String>> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mutator thread's state, apart from its mutator.
struct Worker {
    me: usize,
    cfg: Config,
    rng: SplitMix64,
    next_seq: u64,
    graph: Root<Graph<'static>>,
    to_peer: Sender<Root<Vertex<'static>>>,
    from_peer: Receiver<Root<Vertex<'static>>>,
}

impl Worker {
    /// Adds clusters until there are `cfg.clusters()`. Each new vertex gets
    /// `edges` edges (see [`target`]).
    fn refill(&mut self, cx: &mut Scope<'_>) -> Result<(), AllocError> {
        let Worker {
            me,
            cfg,
            rng,
            next_seq,
            graph,
            ..
        } = self;
        let have = graph.get(cx).clusters.borrow().len();
        let missing = cfg.clusters().saturating_sub(have);
        in_chunks(cx, missing, CLUSTER_CHUNK, |cx, range| {
            let g = graph.get(cx);
            for _ in range {
                let mut vertices = Vec::with_capacity(CLUSTER);
                for _ in 0..CLUSTER {
                    let edges = Vec::with_capacity(cfg.edges);
                    vertices.push(cx.alloc(new_vertex(*me, next_seq, edges))?);
                }
                {
                    let clusters = g.clusters.borrow();
                    for v in &vertices {
                        let mut edges = v.edges.borrow_mut(cx);
                        for _ in 0..cfg.edges {
                            edges.push(target(rng, &clusters, &vertices));
                        }
                    }
                }
                let c = cx.alloc(Cluster {
                    vertices: GcRefCell::new(vertices),
                })?;
                g.clusters.borrow_mut(cx).push(c);
            }
            Ok(())
        })
    }

    /// `vertices` times: points a random edge of a random vertex at a new
    /// target, and replaces a random vertex by a new one, retiring it.
    fn mutate(&mut self, cx: &mut Scope<'_>, shared: &Shared) -> Result<(), AllocError> {
        let Worker {
            me,
            cfg,
            rng,
            next_seq,
            graph,
            ..
        } = self;
        let mut replaced = 0;
        in_chunks(cx, cfg.vertices, SAFEPOINT_EVERY, |cx, range| {
            let g = graph.get(cx);
            let clusters = g.clusters.borrow();
            if clusters.is_empty() {
                return Ok(());
            }
            for _ in range {
                let c = clusters[rng.below(clusters.len())];
                let edges = {
                    let home = c.vertices.borrow();
                    let v = home[rng.below(home.len())];
                    let to = target(rng, &clusters, &home);
                    let mut edges = v.edges.borrow_mut(cx);
                    if edges.is_empty() {
                        edges.push(to);
                    } else {
                        let j = rng.below(edges.len());
                        edges[j] = to;
                    }
                    drop(edges);
                    (0..cfg.edges)
                        .map(|_| target(rng, &clusters, &home))
                        .collect()
                };
                let new = cx.alloc(new_vertex(*me, next_seq, edges))?;
                let mut home = c.vertices.borrow_mut(cx);
                let j = rng.below(home.len());
                std::mem::replace(&mut home[j], new)
                    .retired
                    .store(true, Ordering::Relaxed);
                replaced += 1;
            }
            Ok(())
        })?;
        shared.retired.fetch_add(replaced, Ordering::Relaxed);
        Ok(())
    }

    /// Sends `Root`s of random vertices to the other thread.
    fn export(&mut self, cx: &mut Scope<'_>) -> Result<(), AllocError> {
        let Worker {
            cfg,
            rng,
            graph,
            to_peer,
            ..
        } = self;
        in_chunks(cx, cfg.exports(), SAFEPOINT_EVERY, |cx, range| {
            let g = graph.get(cx);
            let clusters = g.clusters.borrow();
            for _ in range {
                let Some(v) = random_vertex(rng, &clusters) else {
                    break;
                };
                // The receiver lives as long as the other thread, which
                // ends only after the last step.
                if to_peer.send(cx.root(v)).is_err() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Adds each vertex the other thread sent as an edge of a random vertex
    /// of this thread, and drops its `Root`.
    fn import(&mut self, cx: &mut Scope<'_>, shared: &Shared) -> Result<(), AllocError> {
        let Worker {
            rng,
            graph,
            from_peer,
            ..
        } = self;
        // Every send happened before the barrier that started this step.
        let batch: Vec<Root<Vertex<'static>>> = from_peer.try_iter().collect();
        let mut links = 0;
        in_chunks(cx, batch.len(), SAFEPOINT_EVERY, |cx, range| {
            let g = graph.get(cx);
            let clusters = g.clusters.borrow();
            for root in &batch[range] {
                let Some(v) = random_vertex(rng, &clusters) else {
                    break;
                };
                v.edges.borrow_mut(cx).push(root.get(cx));
                links += 1;
            }
            Ok(())
        })?;
        shared.links.fetch_add(links, Ordering::Relaxed);
        Ok(())
    }

    /// Removes about one cluster in [`CUT_ONE_IN`], retiring its vertices,
    /// then has every vertex but one in [`KEEP_ONE_IN`] drop its edges to
    /// this thread's retired vertices. (Edges to the other thread's
    /// vertices stay: the other thread retires those, concurrently.)
    fn cut(&mut self, cx: &mut Scope<'_>, shared: &Shared) -> Result<(), AllocError> {
        let Worker { me, rng, graph, .. } = self;
        let len = graph.get(cx).clusters.borrow().len();
        let (mut kept, mut retired) = (0, 0);
        // Compacts the list in place: `kept` trails the chunk's range.
        in_chunks(cx, len, CLUSTER_CHUNK, |cx, range| {
            let g = graph.get(cx);
            let mut clusters = g.clusters.borrow_mut(cx);
            for i in range {
                let c = clusters[i];
                if rng.one_in(CUT_ONE_IN) {
                    for v in c.vertices.borrow().iter() {
                        v.retired.store(true, Ordering::Relaxed);
                        retired += 1;
                    }
                } else {
                    clusters[kept] = c;
                    kept += 1;
                }
            }
            Ok(())
        })?;
        graph.get(cx).clusters.borrow_mut(cx).truncate(kept);
        shared.retired.fetch_add(retired, Ordering::Relaxed);
        let me = *me;
        let is_retired = |e: &V<'_>| owner(e.id) == me && e.retired.load(Ordering::Relaxed);
        in_chunks(cx, kept, CLUSTER_CHUNK, |cx, range| {
            let g = graph.get(cx);
            let clusters = g.clusters.borrow();
            for c in &clusters[range] {
                for v in c.vertices.borrow().iter() {
                    if !rng.one_in(KEEP_ONE_IN) && v.edges.borrow().iter().any(is_retired) {
                        v.edges.borrow_mut(cx).retain(|e| !is_retired(e));
                    }
                }
            }
            Ok(())
        })
    }
}

/// Runs one step of a thread's work inside a scope (unless a step has
/// failed already), then waits at the barrier, outside the scope.
fn step(
    m: &mut Mutator,
    w: &mut Worker,
    shared: &Shared,
    f: impl FnOnce(&mut Worker, &mut Scope<'_>) -> Result<(), AllocError>,
) {
    if !shared.failed()
        && let Err(e) = m.scope(|cx| f(w, cx))
    {
        shared.fail(format!("thread {}: allocation failed: {e}", w.me));
    }
    shared.barrier.wait();
}

/// A mutator thread: the build, then the rounds' two steps, each followed
/// by a barrier; and a barrier after each of the main thread's checks.
fn thread_main(heap: &Heap, mut w: Worker, shared: &Shared) {
    let mut m = heap.mutator();
    step(&mut m, &mut w, shared, Worker::refill);
    shared.barrier.wait(); // the check
    for _ in 0..w.cfg.rounds {
        step(&mut m, &mut w, shared, |w, cx| {
            w.mutate(cx, shared)?;
            w.export(cx)
        });
        step(&mut m, &mut w, shared, |w, cx| {
            w.import(cx, shared)?;
            w.cut(cx, shared)?;
            w.refill(cx)
        });
        shared.barrier.wait(); // the check
    }
}

/// What a walk of the graph found.
#[derive(Default)]
struct Census {
    /// Vertices of each thread reachable from the clusters.
    reachable: [u64; THREADS],
    /// Reachable retired vertices.
    retired_reachable: u64,
    /// Reachable vertices with a wrong payload or an impossible id.
    corrupt: u64,
}

/// Walks the graph from both threads' clusters. The threads are outside
/// their scopes, so no collection waits for this scope's safepoint.
fn census(cx: &Scope<'_>, graphs: &[Root<Graph<'static>>]) -> Census {
    let mut c = Census::default();
    let mut seen: Vec<Vec<bool>> = ALLOCATED
        .iter()
        .map(|a| vec![false; a.load(Ordering::Relaxed) as usize])
        .collect();
    let mut stack = Vec::new();
    for g in graphs {
        for cluster in g.get(cx).clusters.borrow().iter() {
            stack.extend(cluster.vertices.borrow().iter().copied());
        }
    }
    while let Some(v) = stack.pop() {
        let (t, seq) = (owner(v.id), (v.id & ((1 << OWNER_SHIFT) - 1)) as usize);
        let Some(seen) = seen.get_mut(t).and_then(|s| s.get_mut(seq)) else {
            c.corrupt += 1;
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        c.reachable[t] += 1;
        c.corrupt += u64::from(v.payload != payload(v.id));
        c.retired_reachable += u64::from(v.retired.load(Ordering::Relaxed));
        stack.extend(v.edges.borrow().iter().copied());
    }
    c
}

const USAGE: &str =
    "usage: graph [--gctrace] [vertices-per-thread=100000] [edges-per-vertex=4] [rounds=5]";

fn usage(msg: &str) -> ! {
    eprintln!("graph: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Config {
    let mut cfg = Config {
        gctrace: false,
        vertices: 100_000,
        edges: 4,
        rounds: 5,
    };
    let mut pos = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--gctrace" => cfg.gctrace = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            a if a.starts_with('-') => usage(&format!("unknown option {a}")),
            _ => pos.push(arg),
        }
    }
    // (name, smallest, largest): the largest keep sequence numbers below
    // 2^OWNER_SHIFT.
    let limits = [
        ("vertices-per-thread", 1, 1 << 28),
        ("edges-per-vertex", 0, 1024),
        ("rounds", 0, 1000),
    ];
    if pos.len() > limits.len() {
        usage("too many arguments");
    }
    for (p, &(name, lo, hi)) in pos.iter().zip(&limits) {
        let v: usize = p
            .parse()
            .unwrap_or_else(|_| usage(&format!("bad {name}: {p}")));
        if !(lo..=hi).contains(&v) {
            usage(&format!("{name} must be in {lo}..={hi}, not {v}"));
        }
        match name {
            "vertices-per-thread" => cfg.vertices = v,
            "edges-per-vertex" => cfg.edges = v,
            _ => cfg.rounds = v,
        }
    }
    cfg
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The main thread's side of a check: walks the graph, collects, compares
/// the counters and prints a row. Returns whether they agree.
fn check(
    heap: &Heap,
    m: &mut Mutator,
    graphs: &[Root<Graph<'static>>],
    shared: &Shared,
    label: &str,
    (paced_gcs, step_time): (u64, Duration),
) -> bool {
    let t0 = Instant::now();
    let c = m.scope(|cx| census(cx, graphs));
    // The second collection finishes the sweep of the first: everything
    // unreachable at the first has been dropped when it returns.
    heap.collect();
    heap.collect();
    let took = t0.elapsed();
    let alloc = ALLOCATED.each_ref().map(|a| a.load(Ordering::Relaxed));
    let dropped = DROPPED.each_ref().map(|d| d.load(Ordering::Relaxed));
    let mut ok = c.corrupt == 0;
    if c.corrupt > 0 {
        eprintln!(
            "graph: {label}: {} reachable vertices have a wrong payload or id \
             (heap corruption: a collector bug, please report it)",
            c.corrupt
        );
    }
    for t in 0..THREADS {
        let live = alloc[t].checked_sub(dropped[t]);
        if live != Some(c.reachable[t]) {
            ok = false;
            eprintln!(
                "graph: {label}: MISMATCH for thread {t}: {} vertices allocated, {} dropped, \
                 {} reachable: the collector {} (a collector bug, please report it)",
                alloc[t],
                dropped[t],
                c.reachable[t],
                if live.is_none_or(|l| l < c.reachable[t]) {
                    "dropped reachable vertices"
                } else {
                    "did not drop unreachable vertices"
                },
            );
        }
    }
    println!(
        "{label:<8} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6} {:>5} {:>7.0} {:>6.0}  {}",
        alloc.iter().sum::<u64>(),
        c.reachable.iter().sum::<u64>(),
        dropped.iter().sum::<u64>(),
        shared.retired.load(Ordering::Relaxed),
        c.retired_reachable,
        shared.links.load(Ordering::Relaxed),
        paced_gcs,
        ms(step_time),
        ms(took),
        if ok { "ok" } else { "MISMATCH" },
    );
    ok
}

fn print_stats(s: &GcStats, wall: Duration) {
    println!(
        "gc: {} cycles ({} forced by the checks), pauses {:.3} ms total / {:.3} ms max, \
         concurrent mark {:.0} ms, assists {:.0} ms",
        s.num_gc,
        s.num_forced_gc,
        ms(s.pause_total),
        ms(s.pause_max),
        ms(s.mark_total),
        ms(s.assist_total),
    );
    println!(
        "last cycle: {:.1} MiB marked ({} objects); {} objects scanned in all cycles",
        mib(s.heap_marked),
        s.last_marked_objects,
        s.scanned_objects,
    );
    println!(
        "memory: {:.1} MiB in use, {:.1} MiB mapped, {:.1} MiB released to the OS; \
         {} objects live, {} freed",
        mib(s.mem.heap_inuse),
        mib(s.mem.heap_sys),
        mib(s.mem.heap_released),
        s.mem.heap_objects,
        s.mem.frees,
    );
    println!("wall time {:.2} s", wall.as_secs_f64());
}

fn main() -> ExitCode {
    let cfg = parse_args();
    let heap = match Heap::builder().trace(cfg.gctrace).build() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("graph: cannot build the heap: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut m = heap.mutator();
    let graphs = m.scope(|cx| {
        (0..THREADS)
            .map(|_| {
                let g = cx.alloc(Graph {
                    clusters: GcRefCell::new(Vec::new()),
                })?;
                Ok(cx.root(g))
            })
            .collect::<Result<Vec<_>, AllocError>>()
    });
    let graphs = match graphs {
        Ok(g) => g,
        Err(e) => {
            eprintln!("graph: allocation failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "graph: {THREADS} threads, each with {} clusters of {CLUSTER} vertices with {} edges",
        cfg.clusters(),
        cfg.edges,
    );
    println!(
        "{} rounds; per round and thread: {} rewires and replacements, {} cross-links, \
         ~1/{CUT_ONE_IN} of the clusters cut",
        cfg.rounds,
        cfg.vertices,
        cfg.exports(),
    );
    println!(
        "step      allocated  reachable    dropped    retired  (reach.)  links  gcs* step-ms chk-ms"
    );
    let shared = Shared {
        barrier: Barrier::new(THREADS + 1),
        failure: Mutex::new(None),
        retired: AtomicU64::new(0),
        links: AtomicU64::new(0),
    };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| channel()).unzip();
    let t0 = Instant::now();
    let mut ok = true;
    std::thread::scope(|s| {
        for (me, from_peer) in receivers.into_iter().enumerate() {
            let w = Worker {
                me,
                cfg,
                rng: SplitMix64(0x5EED_0000 + me as u64),
                next_seq: 0,
                graph: graphs[me].clone(),
                to_peer: senders[(me + 1) % THREADS].clone(),
                from_peer,
            };
            let (heap, shared) = (&heap, &shared);
            std::thread::Builder::new()
                .name(format!("graph-{me}"))
                .spawn_scoped(s, move || thread_main(heap, w, shared))
                .expect("cannot spawn a thread");
        }
        // The threads' steps: their wall time and the collections their
        // allocation started meanwhile.
        let threads_steps = |steps: usize| {
            let (t, gcs) = (Instant::now(), heap.stats().num_gc);
            for _ in 0..steps {
                shared.barrier.wait();
            }
            (heap.stats().num_gc - gcs, t.elapsed())
        };
        let mut check_step = |label: &str, step: (u64, Duration)| {
            if !shared.failed() {
                ok &= check(&heap, &mut m, &graphs, &shared, label, step);
            }
            shared.barrier.wait();
        };
        check_step("build", threads_steps(1));
        for r in 1..=cfg.rounds {
            check_step(&format!("round {r}"), threads_steps(2));
        }
    });
    let wall = t0.elapsed();
    if let Some(msg) = shared.lock_failure().take() {
        eprintln!("graph: {msg}");
        return ExitCode::FAILURE;
    }
    println!(
        "retired: vertices replaced or cut so far, (reach.): those still reachable; \
         links: cross-links made so far"
    );
    println!("gcs*: collections started by the threads' allocation during the step");
    if ok {
        println!(
            "check: ok: after every step, for each thread, allocated - dropped == reachable \
             (every unreachable vertex was dropped, cycles included, and no reachable one)"
        );
    } else {
        println!("check: FAILED (see the messages above): a collector bug");
    }
    print_stats(&heap.stats(), wall);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

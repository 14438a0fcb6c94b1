//! Soak test: a mixed workload on one heap for a long time, watched for
//! leaks, corruption and long pauses.
//!
//! `threads` mutator threads (default 2) share one heap. Each thread has
//!
//! - a *long-lived table*: a rooted object with [`TABLE_SLOTS`] slots, each
//!   holding an `Entry` — an id, a payload of a random kind (pointer-free
//!   blobs of 8 B to 150 KB in the heap, the largest ones large objects of
//!   their own spans; or a `Box<[u8]>` / `String` from the system
//!   allocator, freed by the sweep's drop) and an edge (a small immutable
//!   `Edge` object naming its target's id) to another entry, of this thread
//!   or of another. About 3–4 MB per thread. It is slowly mutated: entries
//!   are replaced by new ones, edges are re-pointed, and entries are
//!   swapped with a shared, rooted *exchange* table that all threads use,
//!   so entries (and the graphs hanging from their edges) move between
//!   threads;
//! - a stream of *short-lived graphs*: binary trees (built bottom-up,
//!   Merkle-summed), lists built top-down (each new node stored into the
//!   previous one: the write barrier on fresh objects), payloads of every
//!   kind, objects with a finalizer and weak references — each built,
//!   checked and dropped.
//!
//! **Checksums.** Every object stores a checksum of its contents, and
//! everything that points to an object records what it expects to find
//! there (an entry names its payload's seed, an edge its target's id, a
//! tree node covers its children's sums), so both a corrupted object and a
//! pointer to a freed slot reused by another object of the same type are
//! caught. Objects are verified whenever they are read, and each thread
//! walks its whole table, the exchange and the edges leaving them every
//! [`WALK_EVERY`] operations; the main thread walks everything once more at
//! the end, after the threads stopped.
//!
//! **Samples.** The main thread samples the RSS (`VmRSS` of
//! `/proc/self/status`) and `Heap::stats` every second or so (more often
//! for short runs) and prints one line every `--report-every`: elapsed
//! time, RSS, heap goal, live heap (marked by the last cycle), in-use
//! spans, mapped heap, the part of it kept resident (mapped minus released
//! to the OS by the scavenger), cycles, the longest pause so far
//! (`GcStats::pause_max`: the collector's stop-the-world critical
//! sections) and the operations done.
//!
//! **Verdict.** The run fails (exit status 1, with a message) if
//! - a checksum breaks, an allocation fails or a thread panics;
//! - the longest pause exceeds `--max-pause-ms` (default
//!   [`DEFAULT_MAX_PAUSE_MS`]: pauses measured here are well under a
//!   millisecond, tens of milliseconds when a loaded 2-core machine
//!   preempts the collector inside one; the bound is for regressions such
//!   as a pause that scans the heap, not for noise);
//! - the RSS keeps growing. The criterion: the run is cut in thirds; the
//!   first is warm-up (the tables fill, the pacer settles, arenas get
//!   mapped). RSS is sampled about once a second (at least 60 samples per
//!   run). The run leaks if the *median* RSS of the last third exceeds the
//!   median of the middle third by more than [`LEAK_TOLERANCE_PCT`] % plus
//!   [`LEAK_TOLERANCE_MIB`] MiB, *and* the median of the last sixth
//!   exceeds that of the fifth sixth by more than half as much: growth
//!   that goes on trips both, one step up trips the second only if it
//!   falls near three quarters of the run. A leak of `r` bytes/s moves
//!   the medians of the thirds apart by `r × duration / 3`; with the
//!   tolerance (about 12 MiB at the 35–45 MiB this workload keeps), a
//!   30-second run catches leaks of about 1.2 MiB/s, a 10-minute run
//!   leaks of about 60 KiB/s, a 30-minute run leaks of about 25 KiB/s.
//!   Medians, not the highest samples, and the second test, because on a
//!   loaded machine the RSS has spikes and steps that are not leaks: a
//!   collector starved of CPU lets the mutators run far past the heap
//!   goal, and afterwards the system allocator keeps resident what the
//!   collector's grey-object queue took meanwhile (10-minute runs here
//!   saw a one-sample spike from 38 to 58 MiB, and a step from 40 to 98
//!   MiB that stayed). The summary prints the highest samples (and when
//!   the highest was taken), the heap's resident bytes (to tell a heap
//!   leak from one elsewhere), the split of the final RSS, and the
//!   least-squares slope of the RSS over the second half, as information.
//!
//! A *hang* fails the run too: a watchdog thread exits the process with
//! status 1 if no thread finishes a scope of operations for 30 s, or if
//! the end of the run (the threads' last walk, the final check) takes more
//! than 60 s. (A collector thread that panics leaves the mutators waiting
//! for a collection that never ends.)
//!
//! `--leak-bytes-per-sec N` makes thread 0 keep `N` more bytes per second
//! live in a rooted list that is never trimmed — a deliberate leak, to show
//! the criterion fires (`soak --duration 30s --leak-bytes-per-sec 2M`
//! fails).
//!
//! `--fault-lose-every N` breaks the collector on purpose (its marking
//! loses every `N`-th object, `HeapBuilder::__fault_lose_every`), to show
//! that the checksums catch reachable objects that were freed and reused.
//!
//! Usage: `cargo run --release -p spanheap-examples --bin soak --
//! [--threads N] [--duration 10m] [--report-every 60s] [--max-pause-ms MS]
//! [--seed S] [--gctrace]`; durations take `ms`, `s`, `m` or `h`.
//! `bench/soak.sh [DURATION]` builds and runs it (default 30 minutes).

use spanheap::{AllocError, Gc, GcCell, GcRefCell, GcStats, Heap, Root, Scope, Trace, Weak};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Entries in each thread's long-lived table.
const TABLE_SLOTS: usize = 2048;
/// Entries in the shared exchange table.
const EXCHANGE_SLOTS: usize = 256;
/// Operations between two safepoints of a thread.
const SAFEPOINT_EVERY: u64 = 16;
/// Operations per scope (the thread leaves its scope between them, which
/// also runs any finalizers that are ready).
const OPS_PER_SCOPE: u64 = 1024;
/// Operations between two full walks of a thread's long-lived data.
const WALK_EVERY: u64 = 20_000;
/// Entries verified per chunk of a full walk (a safepoint between chunks).
const WALK_CHUNK: usize = 256;
/// Edges followed from each entry by a walk.
const EDGE_DEPTH: usize = 4;
/// Default bound on the longest pause, in milliseconds.
const DEFAULT_MAX_PAUSE_MS: f64 = 100.0;
/// Leak criterion: relative tolerance, percent.
const LEAK_TOLERANCE_PCT: f64 = 10.0;
/// Leak criterion: absolute tolerance, MiB.
const LEAK_TOLERANCE_MIB: f64 = 8.0;
/// Size of one chunk of the deliberate leak.
const LEAK_CHUNK: usize = 1000;
/// Stack size of the worker threads: the largest payload is built on the
/// stack before it moves into the heap.
const WORKER_STACK: usize = 16 << 20;

// ---------------------------------------------------------------------
// Checksums and random numbers

/// SplitMix64 (Steele, Lea & Flood 2014): the workload's random numbers
/// and the generator of payload bytes.
#[derive(Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n`; `n > 0`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// SplitMix64's finaliser: a 64-bit mixing function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Checksum of a few words.
fn sum_words(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |h, &w| mix(h ^ w).rotate_left(17))
}

/// Checksum of bytes, 8 at a time.
fn sum_bytes(data: &[u8]) -> u64 {
    let mut h = 0x1319_8A2E_0370_7344 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    mix(h)
}

/// Fills `data` with the byte stream of `seed`.
fn fill(data: &mut [u8], seed: u64) {
    let mut rng = SplitMix64(seed);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&rng.next().to_le_bytes());
    }
    let last = rng.next().to_le_bytes();
    let rem = chunks.into_remainder();
    let n = rem.len();
    rem.copy_from_slice(&last[..n]);
}

/// A broken checksum or a pointer to the wrong object: what the verdict
/// reports.
#[derive(Debug)]
enum Fault {
    Corrupt(String),
    Alloc(AllocError),
}

impl From<AllocError> for Fault {
    fn from(e: AllocError) -> Self {
        Fault::Alloc(e)
    }
}

/// Fails with a message unless `ok`.
fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Fault> {
    if ok {
        Ok(())
    } else {
        Err(Fault::Corrupt(what()))
    }
}

// ---------------------------------------------------------------------
// The objects

/// A pointer-free payload of `N` bytes (a headerless noscan object; above
/// 32 KiB a large object with a span of its own).
#[derive(Trace)]
struct Blob<const N: usize> {
    seed: u64,
    sum: u64,
    data: [u8; N],
}

/// Bytes held outside the heap, in the system allocator: the object has
/// drop glue, so its sweep runs the drop that frees them (if it did not,
/// the RSS would grow).
#[derive(Trace)]
struct Bytes {
    seed: u64,
    sum: u64,
    data: Box<[u8]>,
}

/// A `String` outside the heap, as `Bytes`.
#[derive(Trace)]
struct Text {
    seed: u64,
    sum: u64,
    text: String,
}

/// A payload of one of the kinds, chosen at random.
#[derive(Trace, Clone, Copy)]
enum Payload<'gc> {
    B8(Gc<'gc, Blob<8>>),
    B120(Gc<'gc, Blob<120>>),
    B1000(Gc<'gc, Blob<1000>>),
    B8000(Gc<'gc, Blob<8000>>),
    B40k(Gc<'gc, Blob<40_000>>),
    B150k(Gc<'gc, Blob<150_000>>),
    Bytes(Gc<'gc, Bytes>),
    Text(Gc<'gc, Text>),
}

/// How often each payload kind is drawn, per 1000: (long-lived table,
/// short-lived stream). Large objects are rare in the table (each stays
/// for a while) and more common in the stream.
const KIND_WEIGHTS: [(u64, u64); 8] = [
    (300, 250),
    (300, 250),
    (250, 200),
    (110, 150),
    (4, 40),
    (1, 10),
    (20, 50),
    (15, 50),
];

fn blob<'gc, const N: usize>(cx: &'gc Scope<'_>, seed: u64) -> Result<Gc<'gc, Blob<N>>, Fault> {
    let mut b = Blob {
        seed,
        sum: 0,
        data: [0u8; N],
    };
    fill(&mut b.data, seed);
    b.sum = sum_bytes(&b.data);
    Ok(cx.alloc(b)?)
}

/// A new payload of a random kind (`long`: the table's weights).
fn payload<'gc>(
    cx: &'gc Scope<'_>,
    rng: &mut SplitMix64,
    long: bool,
) -> Result<(Payload<'gc>, u64), Fault> {
    let seed = rng.next();
    let total: u64 = KIND_WEIGHTS
        .iter()
        .map(|w| if long { w.0 } else { w.1 })
        .sum();
    let mut pick = rng.below(total);
    let mut kind = 0;
    for (i, w) in KIND_WEIGHTS.iter().enumerate() {
        let w = if long { w.0 } else { w.1 };
        if pick < w {
            kind = i;
            break;
        }
        pick -= w;
    }
    let p = match kind {
        0 => Payload::B8(blob(cx, seed)?),
        1 => Payload::B120(blob(cx, seed)?),
        2 => Payload::B1000(blob(cx, seed)?),
        3 => Payload::B8000(blob(cx, seed)?),
        4 => Payload::B40k(blob(cx, seed)?),
        5 => Payload::B150k(blob(cx, seed)?),
        6 => {
            let mut data = vec![0u8; 64 + (seed % 4000) as usize].into_boxed_slice();
            fill(&mut data, seed);
            let sum = sum_bytes(&data);
            Payload::Bytes(cx.alloc(Bytes { seed, sum, data })?)
        }
        _ => {
            let len = 16 + (seed % 2000) as usize;
            let mut rng = SplitMix64(seed);
            let text: String = (0..len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            let sum = sum_bytes(text.as_bytes());
            Payload::Text(cx.alloc(Text { seed, sum, text })?)
        }
    };
    Ok((p, seed))
}

/// Verifies a payload: its bytes against its checksum, its seed against
/// the one its holder expects.
fn verify_payload(p: Payload<'_>, seed: u64) -> Result<(), Fault> {
    let (s, sum, got) = match p {
        Payload::B8(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::B120(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::B1000(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::B8000(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::B40k(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::B150k(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::Bytes(b) => (b.seed, b.sum, sum_bytes(&b.data)),
        Payload::Text(t) => (t.seed, t.sum, sum_bytes(t.text.as_bytes())),
    };
    check(s == seed, || {
        format!("payload has seed {s:#x}, its holder expects {seed:#x}")
    })?;
    check(sum == got, || {
        format!("payload {seed:#x}: checksum {sum:#x}, contents hash to {got:#x}")
    })
}

/// A long-lived entry. Immutable except its edge.
#[derive(Trace)]
struct Entry<'gc> {
    /// `(thread + 1) << 40 | sequence number`: unique.
    id: u64,
    /// The seed of `payload`.
    payload_seed: u64,
    /// `sum_words(&[id, payload_seed])`.
    sum: u64,
    payload: Payload<'gc>,
    edge: GcCell<'gc, Option<Gc<'gc, Edge<'gc>>>>,
}

/// An edge between entries: immutable, so that the target's expected id
/// always matches the pointer (re-pointing an edge allocates a new one).
#[derive(Trace)]
struct Edge<'gc> {
    target_id: u64,
    /// `sum_words(&[target_id, EDGE_SALT])`.
    sum: u64,
    target: Gc<'gc, Entry<'gc>>,
}

const EDGE_SALT: u64 = 0xED6E;

/// A table of entries (a thread's long-lived table, or the exchange).
#[derive(Trace)]
struct Table<'gc> {
    slots: Vec<GcCell<'gc, Option<Gc<'gc, Entry<'gc>>>>>,
}

/// A short-lived binary tree node; `sum` covers the value and the
/// children's sums (a Merkle tree).
#[derive(Trace)]
struct TreeNode<'gc> {
    val: u64,
    sum: u64,
    left: Option<Gc<'gc, TreeNode<'gc>>>,
    right: Option<Gc<'gc, TreeNode<'gc>>>,
}

/// A short-lived list node, linked top-down.
#[derive(Trace)]
struct ListNode<'gc> {
    val: u64,
    sum: u64,
    next: GcCell<'gc, Option<Gc<'gc, ListNode<'gc>>>>,
}

/// A short-lived object with a finalizer.
#[derive(Trace)]
struct Finalizable {
    id: u64,
    sum: u64,
}

/// The deliberate leak (`--leak-bytes-per-sec`): chunks never dropped.
#[derive(Trace)]
struct Leak<'gc> {
    chunks: GcRefCell<'gc, Vec<Gc<'gc, Blob<LEAK_CHUNK>>>>,
}

/// Finalizers set and run (every finalizable object is short-lived, so at
/// the end, after two collections, all must have run).
static FINALIZERS_SET: AtomicU64 = AtomicU64::new(0);
static FINALIZERS_RUN: AtomicU64 = AtomicU64::new(0);
/// Finalizers that found their object corrupted.
static FINALIZERS_BAD: AtomicU64 = AtomicU64::new(0);

fn verify_entry(e: Gc<'_, Entry<'_>>) -> Result<(), Fault> {
    check(e.sum == sum_words(&[e.id, e.payload_seed]), || {
        format!("entry {:#x}: bad checksum", e.id)
    })?;
    verify_payload(e.payload, e.payload_seed)
}

fn verify_edge(e: Gc<'_, Edge<'_>>) -> Result<(), Fault> {
    check(e.sum == sum_words(&[e.target_id, EDGE_SALT]), || {
        format!("edge to {:#x}: bad checksum", e.target_id)
    })?;
    check(e.target.id == e.target_id, || {
        format!(
            "edge to {:#x} points at entry {:#x} (a freed and reused slot?)",
            e.target_id, e.target.id
        )
    })
}

/// Verifies `e`, then follows up to `depth` edges from it, verifying each
/// edge and entry. Returns the objects verified.
fn verify_chain<'gc>(mut e: Gc<'gc, Entry<'gc>>, depth: usize) -> Result<u64, Fault> {
    verify_entry(e)?;
    let mut n = 1;
    for _ in 0..depth {
        let Some(edge) = e.edge.get() else { break };
        verify_edge(edge)?;
        e = edge.target;
        verify_entry(e)?;
        n += 2;
    }
    Ok(n)
}

// ---------------------------------------------------------------------
// The workload

/// What the threads and the main thread share.
struct Shared {
    stop: AtomicBool,
    ops: AtomicU64,
    walks: AtomicU64,
    /// Objects verified (reads and walks).
    verified: AtomicU64,
    /// The faults found (the first few are kept).
    faults: Mutex<Vec<String>>,
    fault_count: AtomicU64,
    exchange: Root<Table<'static>>,
    /// `--leak-bytes-per-sec`: the rate and the list.
    leak: Option<(u64, Root<Leak<'static>>)>,
    start: Instant,
}

impl Shared {
    fn fault(&self, who: &str, f: Fault) {
        let msg = match f {
            Fault::Corrupt(m) => format!("{who}: CHECKSUM: {m}"),
            Fault::Alloc(e) => format!("{who}: allocation failed: {e}"),
        };
        self.fault_count.fetch_add(1, Ordering::SeqCst);
        let mut v = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if v.len() < 20 {
            v.push(msg);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A worker thread's state, apart from its mutator.
struct Worker<'s> {
    me: usize,
    threads: usize,
    rng: SplitMix64,
    next_seq: u64,
    table: Root<Table<'static>>,
    shared: &'s Shared,
    /// Chunks leaked so far (thread 0 with `--leak-bytes-per-sec`).
    leaked: u64,
    /// Longest single operation seen (information: an operation that
    /// builds a big tree takes a while; a stall shows here).
    slowest_op: Duration,
}

impl Worker<'_> {
    fn new_entry<'gc>(
        &mut self,
        cx: &'gc Scope<'_>,
        edge_to: Option<Gc<'gc, Entry<'gc>>>,
    ) -> Result<Gc<'gc, Entry<'gc>>, Fault> {
        let (payload, payload_seed) = payload(cx, &mut self.rng, true)?;
        self.next_seq += 1;
        let id = ((self.me as u64 + 1) << 40) | self.next_seq;
        let edge = match edge_to {
            Some(t) => Some(new_edge(cx, t)?),
            None => None,
        };
        Ok(cx.alloc(Entry {
            id,
            payload_seed,
            sum: sum_words(&[id, payload_seed]),
            payload,
            edge: GcCell::new(edge),
        })?)
    }

    /// A random entry of this thread's table, or one time in 8 of the
    /// exchange (verified).
    fn pick<'gc>(
        &mut self,
        cx: &'gc Scope<'_>,
        table: &Table<'gc>,
    ) -> Result<Option<Gc<'gc, Entry<'gc>>>, Fault> {
        let e = if self.rng.below(8) == 0 {
            let ex = self.shared.exchange.get(cx);
            ex.slots[self.rng.below(EXCHANGE_SLOTS as u64) as usize].get()
        } else {
            table.slots[self.rng.below(TABLE_SLOTS as u64) as usize].get()
        };
        if let Some(e) = e {
            verify_entry(e)?;
            self.shared.verified.fetch_add(1, Ordering::Relaxed);
        }
        Ok(e)
    }

    /// Fills the table (and this thread's share of the exchange).
    fn build(&mut self, cx: &mut Scope<'_>) -> Result<(), Fault> {
        for chunk in (0..TABLE_SLOTS).step_by(WALK_CHUNK) {
            cx.safepoint();
            let t = self.table.get(cx);
            for i in chunk..(chunk + WALK_CHUNK).min(TABLE_SLOTS) {
                let to = if i > 0 {
                    t.slots[self.rng.below(i as u64) as usize].get()
                } else {
                    None
                };
                let e = self.new_entry(cx, to)?;
                t.slots[i].set(cx, Some(e));
            }
        }
        let ex = self.shared.exchange.get(cx);
        let t = self.table.get(cx);
        for k in (self.me..EXCHANGE_SLOTS).step_by(self.threads) {
            if ex.slots[k].get().is_none() {
                let to = t.slots[self.rng.below(TABLE_SLOTS as u64) as usize].get();
                let e = self.new_entry(cx, to)?;
                ex.slots[k].set(cx, Some(e));
            }
        }
        Ok(())
    }

    /// One operation, chosen at random.
    fn op(&mut self, cx: &Scope<'_>) -> Result<(), Fault> {
        let table = self.table.get(cx);
        match self.rng.below(1000) {
            // Long-lived mutations.
            0..=29 => {
                // Replace an entry by a new one with an edge to a random
                // entry; the old one lives on while edges reach it.
                let to = self.pick(cx, &table)?;
                let e = self.new_entry(cx, to)?;
                let i = self.rng.below(TABLE_SLOTS as u64) as usize;
                if let Some(old) = table.slots[i].replace(cx, Some(e)) {
                    verify_entry(old)?;
                }
            }
            30..=59 => {
                // Re-point an entry's edge.
                if let (Some(from), Some(to)) = (self.pick(cx, &table)?, self.pick(cx, &table)?) {
                    let edge = new_edge(cx, to)?;
                    if let Some(old) = from.edge.replace(cx, Some(edge)) {
                        verify_edge(old)?;
                    }
                }
            }
            60..=69 => {
                // Swap an entry with the exchange: entries move between
                // threads.
                let ex = self.shared.exchange.get(cx);
                let i = self.rng.below(TABLE_SLOTS as u64) as usize;
                let k = self.rng.below(EXCHANGE_SLOTS as u64) as usize;
                if let Some(mine) = table.slots[i].get() {
                    verify_entry(mine)?;
                    if let Some(theirs) = ex.slots[k].replace(cx, Some(mine)) {
                        verify_entry(theirs)?;
                        table.slots[i].set(cx, Some(theirs));
                    }
                }
            }
            70..=149 => {
                // Read: follow a few edges.
                if let Some(e) = self.pick(cx, &table)? {
                    let n = verify_chain(e, EDGE_DEPTH)?;
                    self.shared.verified.fetch_add(n, Ordering::Relaxed);
                }
            }
            // Short-lived graphs.
            150..=449 => {
                let depth = 2 + self.rng.below(9) as u32;
                let seed = self.rng.next();
                let (root, sum) = tree(cx, seed, depth)?;
                let (n, got) = verify_tree(root)?;
                check(got == sum && n == (1 << depth) - 1, || {
                    format!("tree {seed:#x}: {n} nodes summing to {got:#x}, built {sum:#x}")
                })?;
                self.shared.verified.fetch_add(n, Ordering::Relaxed);
            }
            450..=649 => {
                let len = 8 + self.rng.below(500);
                let seed = self.rng.next();
                let n = list(cx, seed, len)?;
                self.shared.verified.fetch_add(n, Ordering::Relaxed);
            }
            650..=989 => {
                let (p, seed) = payload(cx, &mut self.rng, false)?;
                verify_payload(p, seed)?;
                self.shared.verified.fetch_add(1, Ordering::Relaxed);
            }
            990..=994 => {
                // An object with a finalizer, dropped at once.
                let id = self.rng.next();
                let f = cx.alloc(Finalizable {
                    id,
                    sum: sum_words(&[id]),
                })?;
                cx.set_finalizer(f, |_cx, f| {
                    if f.sum != sum_words(&[f.id]) {
                        FINALIZERS_BAD.fetch_add(1, Ordering::SeqCst);
                    }
                    FINALIZERS_RUN.fetch_add(1, Ordering::SeqCst);
                });
                FINALIZERS_SET.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                // A weak reference to a fresh payload: alive within the
                // scope (its only pointer is on this stack).
                let (p, seed) = payload(cx, &mut self.rng, false)?;
                if let Payload::B1000(b) = p {
                    let w: Weak<Blob<1000>> = cx.downgrade(b);
                    let up = w.upgrade(cx);
                    check(up.is_some_and(|u| Gc::ptr_eq(u, b)), || {
                        format!("weak reference to live payload {seed:#x} was cleared")
                    })?;
                }
                verify_payload(p, seed)?;
            }
        }
        self.leak(cx)
    }

    /// Thread 0 with `--leak-bytes-per-sec`: keeps the leak at its rate.
    fn leak(&mut self, cx: &Scope<'_>) -> Result<(), Fault> {
        let shared = self.shared;
        let Some((rate, list)) = shared.leak.as_ref().filter(|_| self.me == 0) else {
            return Ok(());
        };
        let due = (shared.start.elapsed().as_secs_f64() * *rate as f64) as u64;
        let l = list.get(cx);
        let mut chunks = l.chunks.borrow_mut(cx);
        while self.leaked * (LEAK_CHUNK as u64) < due {
            chunks.push(blob(cx, self.leaked)?);
            self.leaked += 1;
        }
        Ok(())
    }

    /// Walks the whole table and the exchange, following edges, in chunks
    /// with a safepoint between them.
    fn walk(&mut self, cx: &mut Scope<'_>) -> Result<(), Fault> {
        let mut n = 0;
        for chunk in (0..TABLE_SLOTS + EXCHANGE_SLOTS).step_by(WALK_CHUNK) {
            cx.safepoint();
            let (t, ex) = (self.table.get(cx), self.shared.exchange.get(cx));
            for i in chunk..(chunk + WALK_CHUNK).min(TABLE_SLOTS + EXCHANGE_SLOTS) {
                let slot = if i < TABLE_SLOTS {
                    &t.slots[i]
                } else {
                    &ex.slots[i - TABLE_SLOTS]
                };
                if let Some(e) = slot.get() {
                    n += verify_chain(e, EDGE_DEPTH)?;
                }
            }
        }
        self.shared.verified.fetch_add(n, Ordering::Relaxed);
        self.shared.walks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Most threads `--threads` accepts.
const THREADS_MAX: usize = 64;

fn new_edge<'gc>(
    cx: &'gc Scope<'_>,
    target: Gc<'gc, Entry<'gc>>,
) -> Result<Gc<'gc, Edge<'gc>>, Fault> {
    Ok(cx.alloc(Edge {
        target_id: target.id,
        sum: sum_words(&[target.id, EDGE_SALT]),
        target,
    })?)
}

/// A perfect binary tree of `depth` levels, built bottom-up; returns it
/// and its root's sum.
fn tree<'gc>(
    cx: &'gc Scope<'_>,
    seed: u64,
    depth: u32,
) -> Result<(Gc<'gc, TreeNode<'gc>>, u64), Fault> {
    let (left, right) = if depth > 1 {
        (
            Some(tree(cx, seed.wrapping_mul(3), depth - 1)?.0),
            Some(tree(cx, seed.wrapping_mul(5), depth - 1)?.0),
        )
    } else {
        (None, None)
    };
    let val = mix(seed);
    let sum = sum_words(&[val, left.map_or(0, |n| n.sum), right.map_or(0, |n| n.sum)]);
    Ok((
        cx.alloc(TreeNode {
            val,
            sum,
            left,
            right,
        })?,
        sum,
    ))
}

/// Recomputes a tree's sums; returns its node count and root sum.
fn verify_tree(n: Gc<'_, TreeNode<'_>>) -> Result<(u64, u64), Fault> {
    let (mut count, mut ls, mut rs) = (1, 0, 0);
    if let Some(l) = n.left {
        let (c, s) = verify_tree(l)?;
        count += c;
        ls = s;
    }
    if let Some(r) = n.right {
        let (c, s) = verify_tree(r)?;
        count += c;
        rs = s;
    }
    let got = sum_words(&[n.val, ls, rs]);
    check(got == n.sum, || {
        format!(
            "tree node {:#x}: checksum {:#x}, contents {got:#x}",
            n.val, n.sum
        )
    })?;
    Ok((count, got))
}

/// A list of `len` nodes built top-down (each new node is stored into the
/// previous one, an older object), then walked; returns the nodes checked.
fn list(cx: &Scope<'_>, seed: u64, len: u64) -> Result<u64, Fault> {
    let node = |i: u64| {
        let val = mix(seed ^ i);
        ListNode {
            val,
            sum: sum_words(&[val, i]),
            next: GcCell::new(None),
        }
    };
    let head = cx.alloc(node(0))?;
    let mut tail = head;
    for i in 1..len {
        let n = cx.alloc(node(i))?;
        tail.next.set(cx, Some(n));
        tail = n;
    }
    let (mut i, mut cur) = (0, Some(head));
    while let Some(n) = cur {
        check(
            n.val == mix(seed ^ i) && n.sum == sum_words(&[n.val, i]),
            || format!("list {seed:#x}: node {i} corrupted"),
        )?;
        i += 1;
        cur = n.next.get();
    }
    check(i == len, || {
        format!("list {seed:#x}: {i} nodes, built {len}")
    })?;
    Ok(len)
}

/// A worker thread: builds its table, then runs operations until told to
/// stop, walking its data every [`WALK_EVERY`] operations.
fn worker(heap: &Heap, mut w: Worker<'_>) {
    let who = format!("thread {}", w.me);
    let mut m = heap.mutator();
    if let Err(f) = m.scope(|cx| w.build(cx)) {
        w.shared.fault(&who, f);
        return;
    }
    let mut next_walk = WALK_EVERY;
    let mut done: u64 = 0;
    while !w.shared.stop.load(Ordering::Relaxed) {
        let r = m.scope(|cx| {
            for i in 0..OPS_PER_SCOPE {
                if i % SAFEPOINT_EVERY == 0 {
                    cx.safepoint();
                }
                let t0 = Instant::now();
                w.op(cx)?;
                w.slowest_op = w.slowest_op.max(t0.elapsed());
            }
            Ok::<_, Fault>(())
        });
        done += OPS_PER_SCOPE;
        w.shared.ops.fetch_add(OPS_PER_SCOPE, Ordering::Relaxed);
        PROGRESS.fetch_add(1, Ordering::Relaxed);
        let r = r.and_then(|()| {
            if done >= next_walk {
                next_walk += WALK_EVERY;
                m.scope(|cx| w.walk(cx))
            } else {
                Ok(())
            }
        });
        if let Err(f) = r {
            w.shared.fault(&who, f);
            return;
        }
    }
    if let Err(f) = m.scope(|cx| w.walk(cx)) {
        w.shared.fault(&who, f);
    }
    SLOWEST_OP_NS.fetch_max(
        u64::try_from(w.slowest_op.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The slowest operation of any thread, ns.
static SLOWEST_OP_NS: AtomicU64 = AtomicU64::new(0);

/// Scopes of operations finished by all threads (the watchdog's view).
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// Set when the run's time is up: the threads finish, then the final
/// check runs.
static FINISHING: AtomicBool = AtomicBool::new(false);
/// With the threads running, no scope of operations finished for this
/// long is a hang.
const STALL: Duration = Duration::from_secs(30);
/// The threads' last scope and walk plus the final check taking this
/// long is a hang.
const FINISH_GRACE: Duration = Duration::from_secs(60);

/// A hang (a deadlock, or a collector thread that died: mutators then
/// wait for a collection that never ends) cannot be reported by the
/// threads that hang: this detached thread exits the process with a
/// failure when no work gets done.
fn watchdog() {
    let mut last = PROGRESS.load(Ordering::Relaxed);
    let mut since = Instant::now();
    let mut finishing_since: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if FINISHING.load(Ordering::SeqCst) {
            let t = *finishing_since.get_or_insert_with(Instant::now);
            if t.elapsed() > FINISH_GRACE {
                eprintln!(
                    "soak: FAIL: HANG: the threads and the final check did not finish within \
                     {} s of the end of the run",
                    FINISH_GRACE.as_secs()
                );
                std::process::exit(1);
            }
            continue;
        }
        let now = PROGRESS.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > STALL {
            eprintln!(
                "soak: FAIL: HANG: no thread finished a scope of {OPS_PER_SCOPE} operations in \
                 {} s (a deadlock, or a collector thread died: see above)",
                STALL.as_secs()
            );
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------
// Measurement

/// The resident set size, from `/proc/self/status` (`None` off Linux).
fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One sample: seconds since the start, RSS, and the heap's mapped and
/// resident (mapped minus released) bytes.
#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    rss: u64,
    heap_sys: u64,
    heap_resident: u64,
}

/// The leak verdict over the samples of a run of `total` seconds.
struct LeakCheck {
    /// Median RSS of the middle and the last third.
    mid_median: u64,
    last_median: u64,
    /// How much higher the last third's median may be.
    allowed: u64,
    /// Median RSS of the fifth and the sixth sixth of the run.
    fifth_median: u64,
    sixth_median: u64,
    /// Highest RSS of the middle and the last third (information).
    mid_max: u64,
    last_max: u64,
    /// The highest sample after the warm-up.
    peak: Sample,
    /// Median heap resident bytes (mapped minus released) of the middle
    /// and last third: whether growth is in the heap or elsewhere (the
    /// system allocator, stacks, metadata).
    mid_heap: u64,
    last_heap: u64,
    /// Least-squares slope of the RSS over the second half, bytes/s.
    slope: f64,
}

/// The median of `v` (empty: 0).
fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

impl LeakCheck {
    fn new(samples: &[Sample], total: f64) -> Option<LeakCheck> {
        let third = |lo: f64, hi: f64| -> Vec<Sample> {
            samples
                .iter()
                .filter(|s| s.t >= lo && s.t < hi)
                .copied()
                .collect()
        };
        let mid = third(total / 3.0, 2.0 * total / 3.0);
        let last = third(2.0 * total / 3.0, f64::INFINITY);
        if mid.len() < 3 || last.len() < 3 {
            return None;
        }
        let med = |v: &[Sample], f: fn(&Sample) -> u64| median(v.iter().map(f).collect());
        let max = |v: &[Sample]| v.iter().map(|s| s.rss).max().unwrap_or(0);
        let mid_median = med(&mid, |s| s.rss);
        let allowed = (mid_median as f64 * LEAK_TOLERANCE_PCT / 100.0
            + LEAK_TOLERANCE_MIB * (1u64 << 20) as f64) as u64;
        let peak = *mid.iter().chain(&last).max_by_key(|s| s.rss)?;
        let half: Vec<&Sample> = samples.iter().filter(|s| s.t >= total / 2.0).collect();
        let n = half.len() as f64;
        let (mt, mr) = (
            half.iter().map(|s| s.t).sum::<f64>() / n,
            half.iter().map(|s| s.rss as f64).sum::<f64>() / n,
        );
        let (cov, var) = half.iter().fold((0.0, 0.0), |(c, v), s| {
            (c + (s.t - mt) * (s.rss as f64 - mr), v + (s.t - mt).powi(2))
        });
        let fifth = third(2.0 * total / 3.0, 5.0 * total / 6.0);
        let sixth = third(5.0 * total / 6.0, f64::INFINITY);
        Some(LeakCheck {
            mid_median,
            last_median: med(&last, |s| s.rss),
            allowed,
            fifth_median: med(&fifth, |s| s.rss),
            sixth_median: med(&sixth, |s| s.rss),
            mid_max: max(&mid),
            last_max: max(&last),
            peak,
            mid_heap: med(&mid, |s| s.heap_resident),
            last_heap: med(&last, |s| s.heap_resident),
            slope: if var > 0.0 { cov / var } else { 0.0 },
        })
    }

    /// The last third's median is above the middle third's by more than
    /// the tolerance, *and* the last sixth's above the fifth's by more than
    /// half of it: growth that goes on, not one step up.
    fn leaks(&self) -> bool {
        self.last_median > self.mid_median + self.allowed
            && self.sixth_median > self.fifth_median + self.allowed / 2
    }
}

// ---------------------------------------------------------------------
// Command line

struct Args {
    threads: usize,
    duration: Duration,
    report_every: Option<Duration>,
    max_pause: Duration,
    seed: u64,
    leak_rate: u64,
    fault_lose_every: Option<u64>,
    gctrace: bool,
}

const USAGE: &str = "usage: soak [--threads N] [--duration 10m] [--report-every 60s] \
     [--max-pause-ms MS] [--seed S] [--gctrace]";

fn usage(msg: &str) -> ! {
    eprintln!("soak: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}

/// `500ms`, `30s`, `10m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1e3,
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `1000`, `64K`, `2M`, `1G` (powers of 1024).
fn parse_bytes(s: &str) -> Option<u64> {
    let (num, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn bad_value(name: &str, val: &str) -> ! {
    usage(&format!("bad value for {name}: {val}"))
}

fn parse_args() -> Args {
    let mut a = Args {
        threads: 2,
        duration: Duration::from_secs(600),
        report_every: None,
        max_pause: Duration::from_secs_f64(DEFAULT_MAX_PAUSE_MS / 1e3),
        seed: 0x50A4,
        leak_rate: 0,
        fault_lose_every: None,
        gctrace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if name == "--gctrace" {
            a.gctrace = true;
            continue;
        }
        if name == "-h" || name == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let val = inline
            .or_else(|| it.next())
            .unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match name.as_str() {
            "--threads" => {
                a.threads = val.parse().unwrap_or_else(|_| bad_value(&name, &val));
                if !(1..=THREADS_MAX).contains(&a.threads) {
                    usage(&format!("--threads must be in 1..={THREADS_MAX}"));
                }
            }
            "--duration" => {
                a.duration = parse_duration(&val).unwrap_or_else(|| bad_value(&name, &val))
            }
            "--report-every" => {
                a.report_every =
                    Some(parse_duration(&val).unwrap_or_else(|| bad_value(&name, &val)))
            }
            "--max-pause-ms" => {
                let v: f64 = val.parse().unwrap_or_else(|_| bad_value(&name, &val));
                a.max_pause =
                    Duration::try_from_secs_f64(v / 1e3).unwrap_or_else(|_| bad_value(&name, &val));
            }
            "--seed" => a.seed = val.parse().unwrap_or_else(|_| bad_value(&name, &val)),
            // Hidden: a deliberate leak, to show that the verdict catches one.
            "--leak-bytes-per-sec" => {
                a.leak_rate = parse_bytes(&val).unwrap_or_else(|| bad_value(&name, &val))
            }
            // Hidden: a broken collector (marking loses every n-th object),
            // to show that the checksums catch objects freed while reachable.
            "--fault-lose-every" => {
                a.fault_lose_every = Some(val.parse().unwrap_or_else(|_| bad_value(&name, &val)))
            }
            _ => usage(&format!("unknown option {name}")),
        }
    }
    a
}

// ---------------------------------------------------------------------
// Main

fn print_sample(t: Duration, rss: Option<u64>, st: &GcStats, ops: u64) {
    let goal = if st.heap_goal == u64::MAX {
        "   none".to_string()
    } else {
        format!("{:7.1}", mib(st.heap_goal))
    };
    println!(
        "{:>7.0}s {:>8.1} {goal} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7} {:>9.3} {:>12}",
        t.as_secs_f64(),
        rss.map_or(f64::NAN, mib),
        mib(st.heap_marked),
        mib(st.mem.heap_inuse),
        mib(st.mem.heap_sys),
        mib(st.mem.heap_sys.saturating_sub(st.mem.heap_released)),
        st.num_gc,
        ms(st.pause_max),
        ops,
    );
}

fn main() -> ExitCode {
    let a = parse_args();
    let total = a.duration.as_secs_f64();
    let report_every = a
        .report_every
        .unwrap_or_else(|| Duration::from_secs(60).min(a.duration / 10));
    // Samples for the leak check: about 1 s apart, at least 60 per run.
    let sample_every = (a.duration / 60).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut builder = Heap::builder().trace(a.gctrace);
    if let Some(n) = a.fault_lose_every {
        builder = builder.__fault_lose_every(n);
    }
    let heap = match builder.build() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("soak: cannot build the heap: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut m = heap.mutator();
    let roots = m.scope(|cx| {
        let table = |n: usize| {
            cx.alloc(Table {
                slots: (0..n).map(|_| GcCell::new(None)).collect(),
            })
        };
        let exchange = cx.root(table(EXCHANGE_SLOTS)?);
        let tables = (0..a.threads)
            .map(|_| Ok(cx.root(table(TABLE_SLOTS)?)))
            .collect::<Result<Vec<_>, AllocError>>()?;
        let leak = if a.leak_rate > 0 {
            let l = cx.alloc(Leak {
                chunks: GcRefCell::new(Vec::new()),
            })?;
            Some((a.leak_rate, cx.root(l)))
        } else {
            None
        };
        Ok::<_, AllocError>((exchange, tables, leak))
    });
    let (exchange, tables, leak) = match roots {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: allocation failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rss0 = rss_bytes();
    println!(
        "soak: {} threads for {:.0} s, {TABLE_SLOTS} long-lived entries per thread, \
         {EXCHANGE_SLOTS} shared, seed {}; max pause bound {:.1} ms{}",
        a.threads,
        total,
        a.seed,
        ms(a.max_pause),
        if a.leak_rate > 0 {
            format!("; LEAKING {} bytes/s on purpose", a.leak_rate)
        } else {
            String::new()
        }
    );
    println!(
        "{:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>12}",
        "elapsed",
        "rss-MiB",
        "goal",
        "live",
        "inuse",
        "mapped",
        "kept",
        "cycles",
        "maxpause",
        "ops"
    );
    println!(
        "{:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>12}",
        "", "", "MiB", "MiB", "MiB", "MiB", "MiB", "", "ms", ""
    );
    let shared = Shared {
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        walks: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        faults: Mutex::new(Vec::new()),
        fault_count: AtomicU64::new(0),
        exchange,
        leak,
        start: Instant::now(),
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut panicked = 0;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("soak-watchdog".into())
            .spawn(watchdog)
            .expect("cannot spawn a thread");
        let handles: Vec<_> = tables
            .iter()
            .enumerate()
            .map(|(me, table)| {
                let w = Worker {
                    me,
                    threads: a.threads,
                    rng: SplitMix64(a.seed ^ mix(me as u64 + 1)),
                    next_seq: 0,
                    table: table.clone(),
                    shared: &shared,
                    leaked: 0,
                    slowest_op: Duration::ZERO,
                };
                let heap = &heap;
                std::thread::Builder::new()
                    .name(format!("soak-{me}"))
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, move || worker(heap, w))
                    .expect("cannot spawn a thread")
            })
            .collect();
        let start = shared.start;
        let mut next_report = report_every;
        loop {
            let now = start.elapsed();
            if now >= a.duration || shared.stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(sample_every.min(a.duration - now));
            let t = start.elapsed();
            let st = heap.stats();
            let rss = rss_bytes();
            samples.push(Sample {
                t: t.as_secs_f64(),
                rss: rss.unwrap_or(0),
                heap_sys: st.mem.heap_sys,
                heap_resident: st.mem.heap_sys.saturating_sub(st.mem.heap_released),
            });
            if t >= next_report || t >= a.duration {
                print_sample(t, rss, &st, shared.ops.load(Ordering::Relaxed));
                while next_report <= t {
                    next_report += report_every;
                }
            }
        }
        shared.stop.store(true, Ordering::SeqCst);
        FINISHING.store(true, Ordering::SeqCst);
        for h in handles {
            if h.join().is_err() {
                panicked += 1;
            }
        }
    });
    let wall = shared.start.elapsed();

    // The final check, with every thread stopped: walk everything again,
    // then collect twice and run the finalizers (every finalizable object
    // is garbage by now).
    let final_walk = m.scope(|cx| {
        let mut n = 0;
        for t in tables
            .iter()
            .map(|t| t.get(cx))
            .chain([shared.exchange.get(cx)])
        {
            for slot in &t.slots {
                if let Some(e) = slot.get() {
                    n += verify_chain(e, EDGE_DEPTH)?;
                }
            }
        }
        if let Some((_, l)) = &shared.leak {
            for (i, b) in l.get(cx).chunks.borrow().iter().enumerate() {
                verify_payload(Payload::B1000(*b), i as u64)?;
                n += 1;
            }
        }
        Ok::<_, Fault>(n)
    });
    match final_walk {
        Ok(n) => {
            shared.verified.fetch_add(n, Ordering::Relaxed);
        }
        Err(f) => shared.fault("final walk", f),
    }
    heap.collect();
    m.run_finalizers();
    heap.collect();
    m.run_finalizers();
    let st = heap.stats();

    let ops = shared.ops.load(Ordering::Relaxed);
    println!();
    println!(
        "summary: {:.1} s, {} threads, {ops} operations ({:.0}/s), {} objects verified, {} full walks",
        wall.as_secs_f64(),
        a.threads,
        ops as f64 / wall.as_secs_f64(),
        shared.verified.load(Ordering::Relaxed),
        shared.walks.load(Ordering::Relaxed),
    );
    let mut pauses = st.pauses.clone();
    pauses.sort_unstable();
    let p99 = pauses
        .get(((pauses.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    println!(
        "gc: {} cycles, pauses total {:.2} ms, max {:.3} ms (bound {:.1} ms), p99 of the last {} {:.3} ms; \
         slowest operation {:.1} ms",
        st.num_gc,
        ms(st.pause_total),
        ms(st.pause_max),
        ms(a.max_pause),
        pauses.len(),
        ms(p99),
        SLOWEST_OP_NS.load(Ordering::Relaxed) as f64 / 1e6,
    );
    println!(
        "heap at the end: {:.1} MiB live, {:.1} MiB in use, {:.1} MiB mapped, {:.1} MiB released; \
         {} roots, {} weak refs; finalizers set {}, run {}",
        mib(st.heap_marked),
        mib(st.mem.heap_inuse),
        mib(st.mem.heap_sys),
        mib(st.mem.heap_released),
        st.roots,
        st.weak_refs,
        FINALIZERS_SET.load(Ordering::SeqCst),
        FINALIZERS_RUN.load(Ordering::SeqCst),
    );
    if let Some(rss) = rss_bytes() {
        // What the RSS holds besides the heap's resident pages: the span
        // and bitmap metadata, and the rest (the system allocator's
        // memory — `Box`/`String` payloads, vectors —, stacks, code).
        let kept = st.mem.heap_sys.saturating_sub(st.mem.heap_released);
        let meta = st.mem.gc_sys + st.mem.mspan_inuse;
        println!(
            "rss at the end: {:.1} MiB = heap pages kept {:.1} MiB + heap metadata {:.1} MiB + \
             other {:.1} MiB (system allocator, stacks, code)",
            mib(rss),
            mib(kept),
            mib(meta),
            mib(rss.saturating_sub(kept + meta)),
        );
    }
    let leak = LeakCheck::new(&samples, wall.as_secs_f64().min(total));
    if let Some(l) = &leak {
        println!(
            "rss: {:.1} MiB at start; median {:.1} MiB over the middle third, {:.1} MiB over the \
             last (allowed +{:.1} MiB); max {:.1} and {:.1} MiB",
            rss0.map_or(f64::NAN, mib),
            mib(l.mid_median),
            mib(l.last_median),
            mib(l.allowed),
            mib(l.mid_max),
            mib(l.last_max),
        );
        println!(
            "rss: highest after the warm-up {:.1} MiB at {:.0} s (heap mapped {:.1} MiB, resident \
             {:.1} MiB then); heap resident median {:.1} -> {:.1} MiB; slope over the second \
             half {:+.2} MiB/min",
            mib(l.peak.rss),
            l.peak.t,
            mib(l.peak.heap_sys),
            mib(l.peak.heap_resident),
            mib(l.mid_heap),
            mib(l.last_heap),
            l.slope * 60.0 / (1u64 << 20) as f64,
        );
    }

    let mut failures: Vec<String> = shared
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let more = shared.fault_count.load(Ordering::SeqCst) as usize;
    if more > failures.len() {
        failures.push(format!("... {} faults in all", more));
    }
    if panicked > 0 {
        failures.push(format!("{panicked} worker thread(s) panicked"));
    }
    if st.pause_max > a.max_pause {
        failures.push(format!(
            "PAUSE: the longest pause was {:.3} ms, over the bound of {:.1} ms",
            ms(st.pause_max),
            ms(a.max_pause)
        ));
    }
    match &leak {
        Some(l) if l.leaks() => failures.push(format!(
            "LEAK: the RSS kept growing: median {:.1} MiB over the last third against {:.1} MiB \
             over the middle third (more than {LEAK_TOLERANCE_PCT} % + {LEAK_TOLERANCE_MIB} MiB)",
            mib(l.last_median),
            mib(l.mid_median)
        )),
        Some(_) => {}
        None if failures.is_empty() && rss0.is_some() => {
            failures.push("too few RSS samples for the leak check".into());
        }
        None => {}
    }
    let (set, run) = (
        FINALIZERS_SET.load(Ordering::SeqCst),
        FINALIZERS_RUN.load(Ordering::SeqCst),
    );
    if failures.is_empty() && set != run {
        failures.push(format!(
            "FINALIZERS: {set} set on short-lived objects, {run} ran after two final collections"
        ));
    }
    if FINALIZERS_BAD.load(Ordering::SeqCst) > 0 {
        failures.push(format!(
            "CHECKSUM: {} finalizers found their object corrupted",
            FINALIZERS_BAD.load(Ordering::SeqCst)
        ));
    }
    if failures.is_empty() {
        println!("soak: PASS (no checksum error, pauses under the bound, RSS not growing)");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("soak: FAIL: {f}");
        }
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// One sample a second over `secs` seconds, RSS from `rss(t)`.
    fn run(secs: u64, rss: impl Fn(u64) -> u64) -> Vec<Sample> {
        (1..=secs)
            .map(|t| Sample {
                t: t as f64,
                rss: rss(t),
                heap_sys: 0,
                heap_resident: 0,
            })
            .collect()
    }

    #[test]
    fn a_flat_sawtooth_does_not_leak() {
        let s = run(600, |t| (30 + t % 7) * MIB);
        let l = LeakCheck::new(&s, 600.0).unwrap();
        assert!(!l.leaks());
        assert!(l.slope.abs() < 0.01 * MIB as f64);
    }

    #[test]
    fn steady_growth_leaks() {
        // 25 KiB/s for 30 minutes: the medians of the thirds differ by
        // 600 s × 25 KiB ≈ 14.6 MiB > 10 % of ~52 MiB + 8 MiB.
        let s = run(1800, |t| 30 * MIB + t * 25 * 1024);
        let l = LeakCheck::new(&s, 1800.0).unwrap();
        assert!(l.leaks(), "{} -> {}", l.mid_median, l.last_median);
        assert!((l.slope - 25.0 * 1024.0).abs() < 1.0);
    }

    #[test]
    fn slow_growth_within_the_tolerance_passes() {
        let s = run(1800, |t| 30 * MIB + t * 5 * 1024);
        assert!(!LeakCheck::new(&s, 1800.0).unwrap().leaks());
    }

    #[test]
    fn one_spike_is_not_a_leak() {
        let s = run(600, |t| if t == 500 { 60 * MIB } else { 36 * MIB });
        let l = LeakCheck::new(&s, 600.0).unwrap();
        assert!(!l.leaks());
        assert_eq!(l.last_max, 60 * MIB);
        assert_eq!(l.peak.t, 500.0);
    }

    #[test]
    fn one_step_up_is_not_a_leak() {
        // The system allocator keeping +60 MiB after a burst at 70 % of
        // the run: the thirds differ, the last two sixths do not.
        let s = run(600, |t| if t < 420 { 38 * MIB } else { 98 * MIB });
        let l = LeakCheck::new(&s, 600.0).unwrap();
        assert!(l.last_median > l.mid_median + l.allowed);
        assert!(!l.leaks());
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        assert!(LeakCheck::new(&run(4, |_| MIB), 4.0).is_none());
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_bytes("2M"), Some(2 << 20));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("M"), None);
    }

    #[test]
    fn checksums_see_one_flipped_bit() {
        let mut data = [0u8; 1000];
        fill(&mut data, 42);
        let sum = sum_bytes(&data);
        data[999] ^= 1;
        assert_ne!(sum_bytes(&data), sum);
        let mut other = [0u8; 1000];
        fill(&mut other, 43);
        assert_ne!(other, data);
    }
}

//! The side-by-side benchmark harness: the same workloads written for
//! spanheap and for its Rust peers, each peer as its own documentation
//! writes it.
//!
//! A run is one workload on one peer ([`run`]). It produces a [`Report`]:
//! result lines that are deterministic and identical for every peer (and for
//! the Go and Boehm-GC versions in `../go` and `../c`), plus `metric` lines
//! (times measured inside the program, collector statistics) that are not.
//! The binaries print the result lines on stdout and the metrics on stderr;
//! wall time and RSS are measured by the caller, from outside.
//!
//! Workloads (exact specifications in `README.md` and in each module):
//! - [`binary_trees`]: the Benchmarks Game's binary-trees, depth 21;
//! - [`gcbench`]: Ellis, Kovac and Boehm's GCBench, top-down and bottom-up;
//! - [`alloc`]: allocate-and-drop of 16 B to 64 KiB objects with a ring of
//!   1,000 live ones;
//! - [`latency`]: Go's GC latency test, every push of a 1 KiB message into
//!   a window of 200,000 live ones timed;
//! - [`go_malloc`]: the shapes of Go's runtime malloc benchmarks
//!   (`BenchmarkMalloc8` …), one object allocated and dropped per iteration;
//! - [`mark`]: mark throughput — one forced full collection of a live
//!   binary tree of 32-byte nodes, laid out in order or shuffled — and
//!   [`mark::probe`], the machine's pointer-chasing latency.
//!
//! Peers ([`Peer`]): spanheap; the tracing or cycle-collecting GC crates
//! gc-arena, dumpster and rust-gc; the non-GC baselines `Box` (system
//! allocator, or mimalloc in the `harness-mimalloc` binary), `Rc` and a
//! bumpalo arena. One module per peer under [`peers`].

pub mod alloc;
pub mod binary_trees;
pub mod cli;
pub mod gcbench;
pub mod go_malloc;
pub mod latency;
pub mod mark;
pub mod peers;

use std::fmt;
use std::time::Duration;

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The Benchmarks Game's binary-trees.
    BinaryTrees,
    /// Ellis/Kovac/Boehm GCBench.
    GcBench,
    /// The allocation microbenchmark.
    Alloc,
    /// Go's GC latency test: per-push times with a large live window.
    Latency,
    /// The shapes of Go's runtime malloc benchmarks.
    GoMalloc,
    /// Mark throughput: one forced full collection of a large live tree.
    Mark,
    /// The pointer-chase probe: latency-bound bandwidth (`box` only).
    Probe,
}

impl Workload {
    /// Every workload, in the order the README lists them.
    pub const ALL: [Workload; 7] = [
        Workload::BinaryTrees,
        Workload::GcBench,
        Workload::Alloc,
        Workload::Latency,
        Workload::GoMalloc,
        Workload::Mark,
        Workload::Probe,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::BinaryTrees => "binary-trees",
            Workload::GcBench => "gcbench",
            Workload::Alloc => "alloc",
            Workload::Latency => "latency",
            Workload::GoMalloc => "go-malloc",
            Workload::Mark => "mark",
            Workload::Probe => "probe",
        }
    }

    /// The workload with command-line name `s`.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// A peer: one implementation of every workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// spanheap (this repository's `runtime/` crate).
    Spanheap,
    /// `Box` on the system allocator.
    Box,
    /// `Rc` (with `RefCell` where a field is written after allocation).
    Rc,
    /// A bumpalo `Bump` arena, reset when its objects are dead.
    Bumpalo,
    /// gc-arena: `Arena`, `Rootable!`, `mutate`, `collect_debt`.
    GcArena,
    /// dumpster: `unsync::Gc`, or `sync::Gc` with threads.
    Dumpster,
    /// rust-gc (crate `gc`): `Gc`, `GcCell`, `#[derive(Trace, Finalize)]`.
    RustGc,
    /// The `Box` code under mimalloc as the global allocator; only the
    /// `harness-mimalloc` binary runs it under mimalloc.
    Mimalloc,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 8] = [
        Peer::Spanheap,
        Peer::Box,
        Peer::Rc,
        Peer::Bumpalo,
        Peer::GcArena,
        Peer::Dumpster,
        Peer::RustGc,
        Peer::Mimalloc,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Spanheap => "spanheap",
            Peer::Box => "box",
            Peer::Rc => "rc",
            Peer::Bumpalo => "bumpalo",
            Peer::GcArena => "gc-arena",
            Peer::Dumpster => "dumpster",
            Peer::RustGc => "rust-gc",
            Peer::Mimalloc => "mimalloc",
        }
    }

    /// The peer with command-line name `s`.
    pub fn parse(s: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether the peer runs the multi-threaded variants: every thread
    /// allocates into one shared heap, which also holds the long-lived
    /// structures. gc-arena (one arena per thread, no `Send` pointers) and
    /// rust-gc (a thread-local collector) have no shared heap.
    pub fn shares_heap_across_threads(self) -> bool {
        !matches!(self, Peer::GcArena | Peer::RustGc)
    }
}

/// How to run a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Small sizes (for CI and the agreement test).
    pub quick: bool,
    /// Mutator threads (1 unless `--threads N`); for `mark`, marker
    /// workers.
    pub threads: usize,
    /// `mark`: the tree's memory layout (`--shape`).
    pub shape: mark::Shape,
    /// `mark`, `probe`: the heap size in MiB (`--heap-mib`; `None`: the
    /// workload's default, which `--quick` makes small).
    pub heap_mib: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quick: false,
            threads: 1,
            shape: mark::Shape::Sequential,
            heap_mib: None,
        }
    }
}

/// One `metric <name> <value>` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Name, e.g. `max_pause_ns`.
    pub name: String,
    /// The value, already formatted.
    pub value: String,
}

impl Metric {
    /// An integer metric.
    pub fn int(name: impl Into<String>, value: u64) -> Metric {
        Metric {
            name: name.into(),
            value: value.to_string(),
        }
    }

    /// A duration in milliseconds, 3 decimals.
    pub fn ms(name: impl Into<String>, d: Duration) -> Metric {
        Metric {
            name: name.into(),
            value: format!("{:.3}", d.as_secs_f64() * 1e3),
        }
    }

    /// A duration in nanoseconds.
    pub fn ns(name: impl Into<String>, d: Duration) -> Metric {
        Metric::int(name, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// A floating-point metric, 2 decimals.
    pub fn float(name: impl Into<String>, value: f64) -> Metric {
        Metric {
            name: name.into(),
            value: format!("{value:.2}"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "metric {} {}", self.name, self.value)
    }
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The deterministic result lines (stdout), without newlines.
    pub lines: Vec<String>,
    /// Measurements (stderr).
    pub metrics: Vec<Metric>,
}

/// A peer that cannot run a workload in the requested variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The peer.
    pub peer: Peer,
    /// The workload.
    pub workload: Workload,
    /// Why, in a few words.
    pub why: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported: {} {} {}",
            self.peer.name(),
            self.workload.name(),
            self.why
        )
    }
}

/// Runs `workload` on `peer`.
///
/// # Errors
/// [`Unsupported`] for a multi-threaded run of a peer without a heap
/// shared between threads, and for a multi-threaded `alloc` or `go-malloc`
/// (which have no multi-threaded variant).
pub fn run(workload: Workload, peer: Peer, opts: &Options) -> Result<Report, Unsupported> {
    let threads = opts.threads.max(1);
    let unsupported = |why: &str| Unsupported {
        peer,
        workload,
        why: why.to_owned(),
    };
    // `mark` and `probe` decide their variants themselves (for `mark`,
    // `--threads` is the number of marker workers).
    if threads > 1 && !matches!(workload, Workload::Mark | Workload::Probe) {
        if matches!(workload, Workload::Alloc | Workload::GoMalloc) {
            return Err(unsupported("has no multi-threaded variant"));
        }
        if !peer.shares_heap_across_threads() {
            return Err(unsupported(
                "is single-threaded (no heap shared between threads)",
            ));
        }
    }
    let quick = opts.quick;
    Ok(match (peer, workload) {
        (Peer::Spanheap, Workload::BinaryTrees) => peers::spanheap::binary_trees(quick, threads),
        (Peer::Spanheap, Workload::GcBench) => peers::spanheap::gcbench(quick, threads),
        (Peer::Spanheap, Workload::Alloc) => peers::spanheap::alloc(quick),
        (Peer::Box | Peer::Mimalloc, Workload::BinaryTrees) => {
            peers::boxed::binary_trees(quick, threads)
        }
        (Peer::Box | Peer::Mimalloc, Workload::GcBench) => peers::boxed::gcbench(quick, threads),
        (Peer::Box | Peer::Mimalloc, Workload::Alloc) => peers::boxed::alloc(quick),
        (Peer::Rc, Workload::BinaryTrees) => peers::rc::binary_trees(quick, threads),
        (Peer::Rc, Workload::GcBench) => peers::rc::gcbench(quick, threads),
        (Peer::Rc, Workload::Alloc) => peers::rc::alloc(quick),
        (Peer::Bumpalo, Workload::BinaryTrees) => peers::bumpalo::binary_trees(quick, threads),
        (Peer::Bumpalo, Workload::GcBench) => peers::bumpalo::gcbench(quick, threads),
        (Peer::Bumpalo, Workload::Alloc) => peers::bumpalo::alloc(quick),
        (Peer::GcArena, Workload::BinaryTrees) => peers::gc_arena::binary_trees(quick),
        (Peer::GcArena, Workload::GcBench) => peers::gc_arena::gcbench(quick),
        (Peer::GcArena, Workload::Alloc) => peers::gc_arena::alloc(quick),
        (Peer::Dumpster, Workload::BinaryTrees) => peers::dumpster::binary_trees(quick, threads),
        (Peer::Dumpster, Workload::GcBench) => peers::dumpster::gcbench(quick, threads),
        (Peer::Dumpster, Workload::Alloc) => peers::dumpster::alloc(quick),
        (Peer::RustGc, Workload::BinaryTrees) => peers::rust_gc::binary_trees(quick),
        (Peer::RustGc, Workload::GcBench) => peers::rust_gc::gcbench(quick),
        (Peer::RustGc, Workload::Alloc) => peers::rust_gc::alloc(quick),
        (Peer::Spanheap, Workload::Latency) => peers::spanheap::latency(quick, threads),
        (Peer::Box | Peer::Mimalloc, Workload::Latency) => peers::boxed::latency(quick, threads),
        (Peer::Rc, Workload::Latency) => peers::rc::latency(quick, threads),
        (Peer::Bumpalo, Workload::Latency) => peers::bumpalo::latency(quick, threads),
        (Peer::GcArena, Workload::Latency) => peers::gc_arena::latency(quick),
        (Peer::Dumpster, Workload::Latency) => peers::dumpster::latency(quick, threads),
        (Peer::RustGc, Workload::Latency) => peers::rust_gc::latency(quick),
        (Peer::Spanheap, Workload::GoMalloc) => go_malloc::spanheap(quick),
        (Peer::Box | Peer::Mimalloc, Workload::GoMalloc) => go_malloc::boxed(quick),
        (Peer::Rc, Workload::GoMalloc) => go_malloc::rc(quick),
        (Peer::Bumpalo, Workload::GoMalloc) => go_malloc::bumpalo(quick),
        (Peer::GcArena, Workload::GoMalloc) => go_malloc::gc_arena(quick),
        (Peer::Dumpster, Workload::GoMalloc) => go_malloc::dumpster(quick),
        (Peer::RustGc, Workload::GoMalloc) => go_malloc::rust_gc(quick),
        (_, Workload::Mark) => return mark::run(peer, opts),
        (_, Workload::Probe) => return mark::probe::run(peer, opts),
    })
}

//! `spanheap-heap`: Go's memory allocator, in Rust — the memory layer of
//! spanheap.
//!
//! This crate allocates and frees; it does not decide *what* is garbage.
//! The collector (`spanheap-gc`) sets mark bits and drives the sweep; the
//! typed API (`spanheap`) decides what goes in scan and noscan spans. The
//! design is Go's runtime allocator (`malloc.go`, `mheap.go`, `mcentral.go`,
//! `mcache.go`, `mgcsweep.go`); a reader of Go's runtime should find every
//! structure here under its Go name.
//!
//! # Overview
//!
//! Objects up to 32 KiB are rounded up to one of 67 size classes
//! ([`sizeclasses`]). Each class has spans — runs of 8 KiB pages carved into
//! equal slots — in two flavours: *scan* spans for objects that may hold GC
//! pointers and *noscan* spans for objects that do not (the marker never
//! looks inside those). A size class and a flavour make a [`SpanClass`]
//! (`sizeclass << 1 | noscan`, 136 of them).
//!
//! **Allocation** goes down a hierarchy and stops at the first level that
//! can serve it:
//!
//! 1. [`MCache`] (one per mutator, no locks): the span it holds for the
//!    class has a free slot, found with `trailing_zeros` on a 64-slot
//!    inverted bitmap window (`allocCache`). Noscan objects under 16 bytes
//!    share 16-byte *tiny* blocks.
//! 2. [`MCentral`] (one per span class): the mcache swaps its full span for
//!    one with free slots — a swept one if any, otherwise it sweeps spans of
//!    this class until one has room.
//! 3. [`MHeap`] (one per heap, one lock): a fresh span from the page
//!    allocator ([`pagealloc`], bitmaps plus a summary tree, first fit).
//! 4. The OS: more address space in 64 MiB arenas, committed 4 MiB at a time.
//!
//! Objects over 32 KiB skip 1–2 and get a span of their own.
//!
//! **Freeing** is sweeping, in the opposite direction: after marking, each
//! span's mark bitmap becomes its allocation bitmap (unmarked slots are free
//! again — no free lists). A span with no marked object goes back to the
//! page heap; free pages go back to the OS when the heap retains more than
//! it needs ([`scavenger`]). Sweeping is lazy, per span, and ordered by the
//! sweepgen protocol (see [`mspan`] and [`sweep`]).
//!
//! # What the collector gets from this crate
//! - `MHeap::find_object` / `mark_object`: address (interior pointers
//!   included) → span → object index in O(1), through the arena index and
//!   magic division; mark bits are set with an atomic `fetch_or`.
//! - `MHeap::set_allocate_black`: objects allocated during marking are born
//!   marked (Go's `gcmarknewobject`); `begin_sweep` turns it off.
//! - `MHeap::request_handshake` + `MCache::report_handshakes`: the
//!   collector's way to reach each mutator within one allocation.
//! - `MHeap::begin_sweep` / `sweep_one` / `finish_sweep`: the sweepgen cycle.
//! - a free hook called for every freed object of a scan span (drop glue);
//! - `heap_live`, `set_gc_trigger`, `MCache::take_gc_due`: pacer inputs.
//! - `MemStats`: Go's memory statistics, per size class.
//!
//! # Safety contract
//! The heap hands out raw memory. Rust-level soundness of the *heap's own*
//! data structures never depends on callers: bad sizes are errors, marking a
//! wrong address does nothing or is caught by the zombie check. The two
//! operations whose misuse could corrupt allocation state (`begin_sweep`:
//! marking must be over; `set_allocate_black`: sweeping must be over) are
//! `unsafe fn`s with documented obligations; the sweepgen itself changes
//! under a lock every mcache slow path takes shared, so mutators may keep
//! allocating. See `docs/safety.md`.
//!
//! Every atomic, lock and thread goes through [`sync`], which maps to loom
//! under `cfg(loom)`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod arena;
pub mod error;
pub mod fixalloc;
pub(crate) mod gcbits;
pub mod mcache;
pub mod mcentral;
pub mod mheap;
pub mod mspan;
pub mod os;
pub mod pagealloc;
pub(crate) mod sanitizer;
pub mod scavenger;
pub mod sizeclasses;
pub mod stats;
pub mod sweep;
pub mod sync;

pub use error::{AllocError, ConfigError, MAX_MARK_WORKERS};
pub use mcache::{AllocRequest, MCache, TINY_SPAN_CLASS};
pub use mcentral::MCentral;
pub use mheap::{CHUNK_BYTES, DEFAULT_ARENA_SIZE, FreeHook, HeapConfig, MHeap, ObjectRef};
pub use mspan::{MSpan, NUM_SPAN_CLASSES, SpanClass, SpanState, SweepCounts};
pub use scavenger::BackgroundScavenger;
pub use stats::{ClassStats, MemStats};
pub use sweep::SweepError;

/// Reports a broken heap invariant and aborts the process (Go's `throw`).
///
/// For corruption the heap cannot recover from — a zombie found at sweep,
/// a collector or sweeper thread dying half-way — not for user mistakes,
/// which get `Err` values. It aborts instead of panicking: a panic would
/// unwind into whatever user code was allocating (a lazy sweep runs
/// inside `alloc`) with a span half swept, and a `catch_unwind` there
/// would let the program go on over a heap that hands out live memory.
/// The message goes straight to the stderr handle, not through
/// `eprintln!`, which a test harness captures (and loses on abort).
///
/// Under loom it panics instead, so that a model fails with the
/// interleaving that broke the invariant rather than killing the test
/// process.
#[cold]
pub fn throw(msg: &str) -> ! {
    if cfg!(loom) {
        panic!("spanheap: fatal: {msg}");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "spanheap: fatal: {msg}; aborting");
    std::process::abort()
}

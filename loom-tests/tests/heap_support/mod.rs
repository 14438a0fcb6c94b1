//! Shared harness of the heap-level loom models (`heap_*.rs`): the model
//! builder with the suite's exploration budget, a tiny heap, and the runner
//! that shows a broken variant is caught.
//!
//! Not a test target itself (cargo only builds `tests/*.rs`); each model
//! file includes it with `mod heap_support;`.

#![allow(dead_code)] // every model file uses a different part of it

use spanheap_heap::sync::broken;
use spanheap_heap::{HeapConfig, MHeap};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The smallest heap the allocator accepts: one 4 MiB arena, which is one
/// page-allocator chunk (512 pages).
pub fn tiny_config() -> HeapConfig {
    HeapConfig {
        arena_size: 4 << 20,
        ..HeapConfig::default()
    }
}

/// A tiny heap without a free hook.
pub fn tiny_heap() -> MHeap {
    MHeap::new(tiny_config()).expect("valid config")
}

/// Runs `body` under loom and returns the number of interleavings
/// explored. The preemption bound comes from `LOOM_MAX_PREEMPTIONS`
/// (default 2, as in CI: every broken variant of these models is caught
/// within it; a bound of 3 explores 3-9 times as many interleavings and
/// the correct models pass it too). `max_branches` is raised because
/// building a heap alone performs a few thousand loom-visible operations.
pub fn explore(body: fn()) -> usize {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.max_branches = builder.max_branches.max(200_000);
    // A fn item captures nothing, so each test counts its own runs even
    // though libtest runs tests of one file on several threads.
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    builder.check(move || {
        c.fetch_add(1, Ordering::Relaxed);
        body();
    });
    count.load(Ordering::Relaxed)
}

/// Runs the correct model: it must pass and explore more than one
/// interleaving (a model that sees no concurrency proves nothing).
pub fn check_correct(label: &str, body: fn()) {
    let t0 = std::time::Instant::now();
    let n = explore(body);
    println!(
        "{label}: explored {n} interleavings in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        n > 1,
        "{label}: loom explored a single interleaving: the model sees no concurrency"
    );
}

/// Runs `body` with the heap's broken variant `switch` on and asserts that
/// loom reports a failing interleaving (a panic: one of the model's
/// assertions, or a data race on one of the heap's loom `UnsafeCell`s).
/// Prints one line naming what went wrong.
pub fn check_caught(label: &str, switch: &'static str, body: fn()) {
    let t0 = std::time::Instant::now();
    broken::set(Some(switch));
    let result = std::panic::catch_unwind(|| explore(body));
    broken::set(None);
    let msg = match &result {
        Ok(n) => panic!("{label}: broken variant {switch} passed {n} interleavings: not caught"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(non-string panic payload)".into()),
    };
    let first = msg.lines().next().unwrap_or("");
    println!(
        "{label} caught {switch}: {first} ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

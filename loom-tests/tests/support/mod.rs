//! What the collector-level models share: a tiny heap, objects that log
//! their drops, the loom runner with its bounds, and the runner of broken
//! variants.
//!
//! Models run the real `spanheap` API (`Heap`, `Mutator`, `Gc`, cells,
//! roots, weak references) and, through it, the real collector thread:
//! under `cfg(loom)` every atomic, lock, condition variable, thread and
//! thread-local of heap, collector and runtime is loom's (the sync shim),
//! so loom explores the interleavings of the code that ships.
#![allow(dead_code)] // each test file uses part of it

use spanheap::{Heap, Rebrand, Trace, Tracer};
use spanheap_heap::sync::broken;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A heap as small and quiet as a model needs: 4 MiB arenas, one mark
/// worker, no background sweeper (one thread fewer for loom: sweeping is
/// lazy, and every cycle finishes the previous sweep itself), no stress.
pub fn tiny_heap() -> Heap {
    Heap::builder()
        .arena_size(4 << 20)
        .mark_workers(1)
        .background_sweep(false)
        .stress(None)
        .build()
        .expect("a tiny heap builds")
}

std::thread_local! {
    /// Ids of the `Leaf`s dropped in the current model execution. (A
    /// `std` thread-local: loom runs all threads of a model on the test's
    /// OS thread, so this is one log per test; it is not part of the model.)
    static DROPPED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Clears the drop log (at the start of each execution).
pub fn reset_drops() {
    DROPPED.with(|d| d.borrow_mut().clear());
}

/// The ids dropped so far in this execution.
pub fn dropped() -> Vec<u64> {
    DROPPED.with(|d| d.borrow().clone())
}

/// A GC object without GC pointers whose drop is logged; its id is
/// overwritten on drop, so a read through a dangling `Gc` shows it.
pub struct Leaf(pub u64);

/// What a dropped `Leaf` holds.
pub const DEAD: u64 = 0xdead_dead;

impl Drop for Leaf {
    fn drop(&mut self) {
        let id = self.0;
        DROPPED.with(|d| d.borrow_mut().push(id));
        self.0 = DEAD;
    }
}

// SAFETY: no GC pointer inside (NO_GC); its Drop touches no Gc.
unsafe impl Trace for Leaf {
    const NO_GC: bool = true;
    fn trace(&self, _t: &mut Tracer<'_>) {}
}

// SAFETY: no lifetime to rename.
unsafe impl Rebrand for Leaf {
    type At<'gc> = Leaf;
}

/// Runs `model` under loom with the suite's bounds: preemption bound from
/// `LOOM_MAX_PREEMPTIONS` (default 2). Returns the number of executions
/// explored; fails if there was only one (the model would see no
/// concurrency).
pub fn explore(name: &str, model: fn()) -> usize {
    explore_capped(name, model, usize::MAX)
}

/// [`explore`] with the preemption bound capped at `cap`, for models whose
/// state space at the suite's bound does not fit CI's time (their docs
/// say so).
pub fn explore_capped(name: &str, model: fn(), cap: usize) -> usize {
    explore_bounded(name, model, 0, cap)
}

/// [`explore`] with the preemption bound raised to at least `min`, for
/// models whose bug needs more preemptions to show (their docs say why).
pub fn explore_min(name: &str, model: fn(), min: usize) -> usize {
    explore_bounded(name, model, min, usize::MAX)
}

/// [`explore`] with the preemption bound clamped to `min..=cap`.
fn explore_bounded(name: &str, model: fn(), min: usize, cap: usize) -> usize {
    // Per call, not a static: tests of one file run on several threads.
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.unwrap_or(2).clamp(min, cap));
    // A heap and a collector take a few thousand loom operations to build.
    b.max_branches = 200_000;
    let start = std::time::Instant::now();
    b.check(move || {
        r.fetch_add(1, Ordering::Relaxed);
        reset_drops();
        model();
    });
    let n = runs.load(Ordering::Relaxed);
    println!(
        "model {name}: {n} executions explored in {:.1?} (preemption bound {})",
        start.elapsed(),
        b_bound(min, cap)
    );
    n
}

/// The preemption bound [`explore_bounded`] uses.
fn b_bound(min: usize, cap: usize) -> usize {
    std::env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize)
        .clamp(min, cap)
}

/// Environment variable that makes a test process run one broken
/// variant (see [`assert_caught`]).
const CHILD: &str = "SPANHEAP_LOOM_BROKEN";

/// Asserts that the broken variant `bug` of model `name` fails, and says
/// what caught it.
///
/// The broken model runs in a child process (this test binary, filtered
/// to the calling test): a failing model may leave loom unable to unwind
/// cleanly (a deadlock report followed by a panic while loom's
/// thread-locals are destroyed aborts the process), and that must not take
/// the other tests down. The child runs the model with the switch on; the
/// parent asserts that it failed and prints loom's message.
pub fn assert_caught(name: &str, bug: &'static str, model: fn()) {
    assert_caught_min(name, bug, model, 0);
}

/// [`assert_caught`] exploring with [`explore_min`]'s bound.
pub fn assert_caught_min(name: &str, bug: &'static str, model: fn(), min: usize) {
    if let Ok(b) = std::env::var(CHILD) {
        // The child: run the broken model; a failure panics (or aborts).
        assert_eq!(b, bug, "child started for another variant");
        broken::set(Some(bug));
        explore_min(name, model, min);
        broken::set(None);
        println!("NOT CAUGHT");
        return;
    }
    let test = std::thread::current()
        .name()
        .expect("libtest names test threads after their test")
        .to_string();
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, bug)
        .output()
        .expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && !text.contains("NOT CAUGHT"),
        "model {name} did not catch the broken variant {bug}:\n{text}"
    );
    // loom's report: the message after the first "panicked at" line.
    let mut lines = text.lines().skip_while(|l| !l.contains("panicked at"));
    let msg = lines.nth(1).unwrap_or("(no panic message)");
    println!("model {name} caught {bug}: {msg}");
}

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
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    // A heap and a collector take a few thousand loom operations to build.
    b.max_branches = 200_000;
    let before = RUNS.load(Ordering::Relaxed);
    let start = std::time::Instant::now();
    b.check(move || {
        RUNS.fetch_add(1, Ordering::Relaxed);
        reset_drops();
        model();
    });
    let n = RUNS.load(Ordering::Relaxed) - before;
    println!(
        "model {name}: {n} executions explored in {:.1?}",
        start.elapsed()
    );
    n
}

/// Runs `model` with the broken variant `bug` switched on and returns the
/// failure loom reported, or `None` if every execution passed.
pub fn explore_broken(name: &str, bug: &'static str, model: fn()) -> Option<String> {
    broken::set(Some(bug));
    let r = std::panic::catch_unwind(|| {
        explore(name, model);
    });
    broken::set(None);
    match r {
        Ok(()) => None,
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into()),
        ),
    }
}

/// Asserts that the broken variant `bug` of model `name` fails, and says
/// what caught it.
pub fn assert_caught(name: &str, bug: &'static str, model: fn()) {
    match explore_broken(name, bug, model) {
        Some(msg) => {
            let first = msg.lines().next().unwrap_or("");
            println!("model {name} caught {bug}: {first}");
        }
        None => panic!("model {name} did not catch the broken variant {bug}"),
    }
}

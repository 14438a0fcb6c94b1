//! Panicking user code inside the collector: what happens, checked in
//! child processes (each test re-runs this test binary with an
//! environment variable naming the scenario; the child does the
//! dangerous thing, the parent checks its exit status and its stderr).
//!
//! - A `Trace::trace` that panics cannot be tolerated: the mark would be
//!   incomplete and reachable objects would be freed. The process aborts
//!   with `spanheap: fatal: `Trace::trace` of `<type>` panicked on thread
//!   <name>; the mark cannot complete ...` — whether the panic happens on
//!   the collector thread (a mark) or on a mutator's thread (the write
//!   barrier tracing a value it shades).
//! - A `Drop` that panics while the sweep frees its object is caught: the
//!   panic hook prints the panic as usual, `GcStats::drop_panics` counts
//!   it, the slot is reclaimed, the other dead objects are still dropped
//!   and the heap keeps working. The child exits normally.

use spanheap::{GcRefCell, Heap, Rebrand, Root, Trace, Tracer};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const CHILD: &str = "SPANHEAP_PANICS_TEST_CHILD";

/// Re-runs the test `name` of this binary as a child in scenario `mode`.
fn run_child(name: &str, mode: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .output()
        .unwrap()
}

/// The child's scenario, if this process is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// When set, `Bad::trace` panics.
static ARMED: AtomicBool = AtomicBool::new(false);

/// A type whose `Trace` impl panics once armed.
struct Bad(u64);

// SAFETY: holds no Gc; its trace reports nothing (or panics).
unsafe impl Trace for Bad {
    // Not NO_GC: objects holding it must be scanned, so the collector
    // calls `trace`.
    const NO_GC: bool = false;
    fn trace(&self, _t: &mut Tracer<'_>) {
        if ARMED.load(Ordering::SeqCst) {
            panic!("Bad::trace panicked on purpose ({})", self.0);
        }
    }
}

// SAFETY: no brand.
unsafe impl Rebrand for Bad {
    type At<'gc> = Bad;
}

fn assert_aborted_with_trace_message(out: &Output, thread: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child did not fail: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc_sigabrt()),
            "the child did not abort: {:?}\n{stderr}",
            out.status
        );
    }
    assert!(
        stderr.contains("Bad::trace panicked on purpose"),
        "the panic itself is not reported:\n{stderr}"
    );
    let want =
        format!("spanheap: fatal: `Trace::trace` of `panics::Bad` panicked on thread {thread}");
    assert!(stderr.contains(&want), "no `{want}` in:\n{stderr}");
    assert!(stderr.contains("the mark cannot complete"), "{stderr}");
    assert!(
        !stderr.contains("CHILD SURVIVED"),
        "the child went on after the panic:\n{stderr}"
    );
}

/// SIGABRT (6 on every Unix this runs on).
fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn a_panicking_trace_during_a_mark_aborts_with_the_type_name() {
    if child_mode().is_some() {
        let h = Heap::builder().background_sweep(false).build().unwrap();
        let mut m = h.mutator();
        let _keep: Root<Bad> = m.scope(|cx| cx.root(cx.alloc(Bad(1)).unwrap()));
        ARMED.store(true, Ordering::SeqCst);
        h.collect(); // the collector thread scans `Bad`: abort
        eprintln!("CHILD SURVIVED");
        return;
    }
    let out = run_child(
        "a_panicking_trace_during_a_mark_aborts_with_the_type_name",
        "mark",
    );
    assert_aborted_with_trace_message(&out, "spanheap-gc");
}

#[derive(Trace)]
struct Holder<'gc> {
    cell: GcRefCell<'gc, Bad>,
}

#[test]
fn a_panicking_trace_in_the_write_barrier_aborts_with_the_type_name() {
    if child_mode().is_some() {
        // It waits inside a scope for its barrier to come on: only a
        // concurrent mark turns it on (CI's SPANHEAP_STW pass would wait
        // forever).
        let h = Heap::builder()
            .background_sweep(false)
            .stop_the_world(false)
            .build()
            .unwrap();
        let mut m = h.mutator();
        let keep: Root<Holder<'static>> = m.scope(|cx| {
            cx.root(
                cx.alloc(Holder {
                    cell: GcRefCell::new(Bad(2)),
                })
                .unwrap(),
            )
        });
        let collector = m.scope(|cx| {
            // Requested from inside this scope, the cycle cannot end
            // before this mutator has acknowledged its mark.
            let collector = {
                let h = h.clone();
                std::thread::spawn(move || h.collect())
            };
            while !cx.__barrier_on() {
                cx.safepoint();
                std::thread::yield_now();
            }
            ARMED.store(true, Ordering::SeqCst);
            // The first mutable borrow during a mark shades the whole
            // contents on this thread: `Bad::trace` runs here.
            let hd = keep.get(cx);
            let _b = hd.cell.borrow_mut(cx);
            collector
        });
        eprintln!("CHILD SURVIVED");
        let _ = collector.join();
        return;
    }
    let out = run_child(
        "a_panicking_trace_in_the_write_barrier_aborts_with_the_type_name",
        "barrier",
    );
    // The test harness names the child's test thread after the test.
    assert_aborted_with_trace_message(
        &out,
        "a_panicking_trace_in_the_write_barrier_aborts_with_the_type_name",
    );
}

/// Bumps its counter when dropped; panics first if its flag says so.
struct Bomb {
    explode: bool,
    drops: Arc<AtomicUsize>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.explode {
            panic!("Bomb::drop panicked on purpose");
        }
    }
}

#[derive(Trace)]
struct HasBomb {
    val: u64,
    #[trace(skip)]
    _b: Bomb,
}

#[test]
fn a_panicking_drop_in_the_sweep_is_reported_counted_and_survived() {
    if child_mode().is_some() {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = Heap::builder().background_sweep(false).build().unwrap();
        let mut m = h.mutator();
        let keep: Root<HasBomb> = m.scope(|cx| {
            // 10 exploding and 90 quiet dead objects, one live one.
            for i in 0..100u64 {
                cx.alloc(HasBomb {
                    val: i,
                    _b: Bomb {
                        explode: i % 10 == 0,
                        drops: drops.clone(),
                    },
                })
                .unwrap();
            }
            cx.root(
                cx.alloc(HasBomb {
                    val: 7,
                    _b: Bomb {
                        explode: false,
                        drops: drops.clone(),
                    },
                })
                .unwrap(),
            )
        });
        h.collect();
        h.collect();
        let s = h.stats();
        assert_eq!(s.drop_panics, 10);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            100,
            "every dead object dropped once"
        );
        // The freed slots are reused and the heap works.
        let again = m.scope(|cx| {
            (0..200u64)
                .map(|i| cx.alloc(i).unwrap())
                .map(|g| *g)
                .sum::<u64>()
        });
        assert_eq!(again, 199 * 200 / 2);
        m.scope(|cx| assert_eq!(keep.get(cx).val, 7));
        eprintln!("CHILD DONE drop_panics={}", s.drop_panics);
        return;
    }
    let out = run_child(
        "a_panicking_drop_in_the_sweep_is_reported_counted_and_survived",
        "drop",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert_eq!(
        stderr.matches("Bomb::drop panicked on purpose").count(),
        10,
        "each panic is reported by the panic hook:\n{stderr}"
    );
    assert!(stderr.contains("CHILD DONE drop_panics=10"), "{stderr}");
}

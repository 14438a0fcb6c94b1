//! Behaviour of the typed heap and its collector: what survives, what is
//! collected, when `Drop` runs, weak references, noscan objects, pacing,
//! threads, and misuse. Every test also runs under stress + checkmark mode
//! in CI (`SPANHEAP_GCSTRESS`, `SPANHEAP_CHECKMARK`).

use spanheap::{AllocError, Gc, GcCell, GcRefCell, Heap, Root, Trace, Tracer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
struct Node<'gc> {
    val: u64,
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
    #[trace(skip)]
    _drops: Option<Counted>,
}

fn node<'gc>(val: u64, drops: Option<&Arc<AtomicUsize>>) -> Node<'gc> {
    Node {
        val,
        next: GcCell::new(None),
        _drops: drops.map(|d| Counted(d.clone())),
    }
}

/// A heap whose sweeping happens only in allocation and at the next
/// cycle, so a test can tell exactly when `Drop` has run: after two
/// `collect()`s, everything unreachable at the first one is swept.
fn heap() -> Heap {
    Heap::builder().background_sweep(false).build().unwrap()
}

fn settle(h: &Heap) {
    h.collect();
    h.collect();
}

#[test]
fn cycles_are_collected_and_dropped_once() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    m.scope(|cx| {
        // a <-> b, and a self-loop c.
        let a = cx.alloc(node(1, Some(&drops))).unwrap();
        let b = cx.alloc(node(2, Some(&drops))).unwrap();
        let c = cx.alloc(node(3, Some(&drops))).unwrap();
        a.next.set(cx, Some(b));
        b.next.set(cx, Some(a));
        c.next.set(cx, Some(c));
    });
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 3, "Drop ran more than once");
    let s = h.stats();
    assert!(s.num_forced_gc >= 4);
    assert!(s.num_gc >= s.num_forced_gc);
}

#[test]
fn reachable_objects_survive_many_cycles_intact() {
    let h = heap();
    let mut m = h.mutator();
    const N: u64 = 5000;
    let head: Root<Node<'static>> = m.scope(|cx| {
        let mut head = cx.alloc(node(0, None)).unwrap();
        for i in 1..N {
            let n = cx.alloc(node(i, None)).unwrap();
            n.next.set(cx, Some(head));
            head = n;
        }
        cx.root(head)
    });
    for round in 0..20u64 {
        // Garbage between collections, reusing the freed slots.
        m.scope(|cx| {
            for i in 0..2000 {
                let g = cx.alloc(node(i + round, None)).unwrap();
                g.next.set(cx, Some(g));
                cx.alloc([round; 7]).unwrap();
            }
        });
        h.collect();
        m.scope(|cx| {
            let mut cur = Some(head.get(cx));
            let mut expect = N;
            while let Some(n) = cur {
                expect -= 1;
                assert_eq!(n.val, expect, "round {round}");
                cur = n.next.get();
            }
            assert_eq!(expect, 0);
        });
    }
}

#[test]
fn drop_counts_are_exact_and_teardown_drops_survivors() {
    let drops = Arc::new(AtomicUsize::new(0));
    let h = heap();
    let mut m = h.mutator();
    let kept: Vec<Root<Node<'static>>> = m.scope(|cx| {
        let mut kept = Vec::new();
        for i in 0..1000 {
            let n = cx.alloc(node(i, Some(&drops))).unwrap();
            if i % 10 == 0 {
                kept.push(cx.root(n));
            }
        }
        kept
    });
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 900);
    drop(kept);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
    // Objects alive when the heap goes are dropped with it.
    let d2 = Arc::new(AtomicUsize::new(0));
    let r = m.scope(|cx| {
        let n = cx.alloc(node(7, Some(&d2))).unwrap();
        cx.alloc(node(8, Some(&d2))).unwrap();
        cx.root(n)
    });
    drop(m);
    drop(h);
    assert_eq!(
        d2.load(Ordering::SeqCst),
        0,
        "the root keeps the heap alive"
    );
    drop(r);
    assert_eq!(d2.load(Ordering::SeqCst), 2);
}

#[test]
fn weak_refs_are_cleared_exactly_when_targets_die() {
    let h = heap();
    let mut m = h.mutator();
    let (strong, weak, weak_garbage) = m.scope(|cx| {
        let a = cx.alloc(node(1, None)).unwrap();
        let b = cx.alloc(node(2, None)).unwrap();
        (cx.root(a), cx.downgrade(a), cx.downgrade(b))
    });
    h.collect();
    assert!(!weak.is_dead());
    assert!(weak_garbage.is_dead());
    // Rooted to the end of the test (not `mem::forget`: a leaked root
    // keeps its heap alive, so the heap would never be torn down, which
    // LeakSanitizer reports in `.ci/sanitizers.sh asan`).
    let _holder = m.scope(|cx| {
        assert_eq!(weak.upgrade(cx).map(|n| n.val), Some(1));
        assert!(weak_garbage.upgrade(cx).is_none());
        // Reachable through another object only: still alive.
        let holder = cx.alloc(node(3, None)).unwrap();
        holder.next.set(cx, Some(strong.get(cx)));
        cx.root(holder)
    });
    drop(strong);
    h.collect();
    assert!(!weak.is_dead(), "reachable through the rooted holder");
    let w2 = weak.clone();
    m.scope(|cx| {
        let holder_weak = {
            let w = weak.upgrade(cx).unwrap();
            cx.downgrade(w)
        };
        assert!(!holder_weak.is_dead());
    });
    assert!(!w2.is_dead());
    assert_eq!(h.stats().weak_refs, 3);
}

/// Counts how often the marker scans it.
static SCANNED_NOSCAN: AtomicUsize = AtomicUsize::new(0);
static SCANNED_SCAN: AtomicUsize = AtomicUsize::new(0);

struct Leaf(#[allow(dead_code)] [u64; 3]);
// SAFETY: contains no Gc; NO_GC is true. `trace` only counts.
unsafe impl Trace for Leaf {
    const NO_GC: bool = true;
    fn trace(&self, _t: &mut Tracer<'_>) {
        SCANNED_NOSCAN.fetch_add(1, Ordering::SeqCst);
    }
}
// SAFETY: no brand.
unsafe impl spanheap::Rebrand for Leaf {
    type At<'gc> = Leaf;
}

struct Inner<'gc>(Option<Gc<'gc, Leaf>>);
// SAFETY: reports its one pointer.
unsafe impl Trace for Inner<'_> {
    fn trace(&self, t: &mut Tracer<'_>) {
        SCANNED_SCAN.fetch_add(1, Ordering::SeqCst);
        self.0.trace(t)
    }
}
// SAFETY: renames the brand only.
unsafe impl spanheap::Rebrand for Inner<'_> {
    type At<'gc> = Inner<'gc>;
}

#[test]
fn noscan_objects_are_never_traced() {
    // Exactly one cycle between the two readings: no stress-mode cycle
    // (CI's passes set SPANHEAP_GCSTRESS) may be queued behind it.
    let h = Heap::builder()
        .background_sweep(false)
        .stress(None)
        .build()
        .unwrap();
    let mut m = h.mutator();
    let roots: Vec<Root<Inner<'static>>> = m.scope(|cx| {
        (0..100)
            .map(|i| {
                let leaf = cx.alloc(Leaf([i; 3])).unwrap();
                cx.root(cx.alloc(Inner(Some(leaf))).unwrap())
            })
            .collect()
    });
    SCANNED_SCAN.store(0, Ordering::SeqCst);
    let before = h.stats().scanned_objects;
    h.collect();
    assert_eq!(SCANNED_NOSCAN.load(Ordering::SeqCst), 0);
    // Other tests' heaps may scan Inner objects concurrently, so only a
    // lower bound holds for the global counter; the per-heap count is exact.
    assert!(SCANNED_SCAN.load(Ordering::SeqCst) >= 100);
    assert_eq!(h.stats().scanned_objects - before, 100);
    assert_eq!(h.stats().last_marked_objects, 200);
    m.scope(|cx| {
        for (i, r) in roots.iter().enumerate() {
            assert_eq!(r.get(cx).0.unwrap().0, [i as u64; 3]);
        }
    });
}

#[test]
fn heap_stabilises_under_steady_churn() {
    let _serial = PACER_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    // This test is about the pacer, so CI's stress mode (a cycle every N
    // allocations) stays off here; checkmark still applies.
    let h = Heap::builder()
        .gc_percent(100)
        .stress(None)
        .build()
        .unwrap();
    let mut m = h.mutator();
    // ~8 MiB live: 8192 objects of 1 KiB, replaced round-robin.
    const LIVE: usize = 8192;
    let table: Root<GcRefCell<'static, Vec<Gc<'static, [u64; 128]>>>> = m.scope(|cx| {
        let v = (0..LIVE)
            .map(|i| cx.alloc([i as u64; 128]).unwrap())
            .collect::<Vec<_>>();
        cx.root(cx.alloc(GcRefCell::new(v)).unwrap())
    });
    let mut peak = 0;
    for round in 0..40usize {
        m.scope(|cx| {
            // A safepoint every 256 stores, as an interpreter would: until
            // a mutator's first safepoint in a mark, releasing a borrow of
            // the 8192-entry table rescans it (docs/concurrency.md).
            for chunk in 0..LIVE / 2 / 256 {
                let t = table.get(cx);
                for i in chunk * 256..(chunk + 1) * 256 {
                    let slot = (round * LIVE / 2 + i) % LIVE;
                    let x = cx.alloc([slot as u64; 128]).unwrap();
                    t.borrow_mut(cx)[slot] = x;
                }
                cx.safepoint();
            }
        });
        if round >= 10 {
            peak = peak.max(h.stats().mem.heap_inuse);
        }
    }
    let s = h.stats();
    assert!(s.num_gc >= 5, "{} cycles", s.num_gc);
    let live = (LIVE * 1024) as u64;
    // Pacing: a cycle starts each time 70 %-87.5 % of live (the runway to
    // a GOGC=100 goal, less the room the last mark's allocation needed)
    // has been allocated: 24 cycles here on a quiet machine, at most ~30
    // when slow marks pull the trigger down. A mutator's "over the
    // trigger" report that arrives after the cycle it started has ended
    // must not start a second one back to back (that made it 35-38).
    let allocated = (40 * LIVE / 2 * 1024) as u64 + live;
    let at_most = allocated / (live / 10 * 7) + 3;
    assert!(
        s.num_gc <= at_most,
        "{} cycles for {} MiB allocated at 8 MiB live (at most {at_most} expected)",
        s.num_gc,
        allocated >> 20
    );
    assert!(
        s.heap_marked >= live && s.heap_marked < live + live / 4,
        "marked {} vs live {live}",
        s.heap_marked
    );
    assert!(s.heap_goal <= 2 * s.heap_marked + (1 << 20));
    // Live × 2 (GOGC=100) plus a cached span per class, sweep lag, and
    // what the mutator allocates while a concurrent mark runs (on a loaded
    // 2-core machine the collector thread can be starved for a while).
    assert!(
        peak < 4 * live,
        "heap in use peaked at {peak} bytes for {live} live"
    );
    m.scope(|cx| {
        for (i, x) in table.get(cx).borrow().iter().enumerate() {
            assert_eq!(x[0], i as u64);
        }
    });
}

#[derive(Trace)]
struct Shared<'gc> {
    items: GcRefCell<'gc, Vec<Gc<'gc, Shared<'gc>>>>,
    id: u64,
}

#[test]
fn two_threads_share_objects_through_roots() {
    let h = Heap::new().unwrap();
    let mut m = h.mutator();
    let root: Root<Shared<'static>> = m.scope(|cx| {
        cx.root(
            cx.alloc(Shared {
                items: GcRefCell::new(Vec::new()),
                id: 0,
            })
            .unwrap(),
        )
    });
    let threads: Vec<_> = (1..=2u64)
        .map(|t| {
            let h = h.clone();
            let root = root.clone();
            std::thread::spawn(move || {
                let mut m = h.mutator();
                for i in 0..200u64 {
                    m.scope(|cx| {
                        let me = cx
                            .alloc(Shared {
                                items: GcRefCell::new(Vec::new()),
                                id: t * 1000 + i,
                            })
                            .unwrap();
                        // Garbage, to make cycles happen.
                        for _ in 0..50 {
                            cx.alloc([i; 16]).unwrap();
                        }
                        let r = root.get(cx);
                        loop {
                            if let Ok(mut v) = r.items.try_borrow_mut(cx) {
                                v.push(me);
                                break;
                            }
                            std::thread::yield_now();
                        }
                    });
                    if i % 50 == 0 {
                        m.collect();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    h.collect();
    m.scope(|cx| {
        let r = root.get(cx);
        let v = r.items.borrow();
        assert_eq!(v.len(), 400);
        let mut ids: Vec<u64> = v.iter().map(|s| s.id).collect();
        ids.sort();
        let mut expect: Vec<u64> = (1..=2u64)
            .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
            .collect();
        expect.sort();
        assert_eq!(ids, expect);
    });
    // 9 collect() calls; two threads calling at the same moment may share
    // one cycle (each waits for a full cycle that starts after its call).
    assert!(h.stats().num_gc >= 5);
}

#[test]
fn safepoint_lets_a_collection_run_inside_a_scope() {
    let h = Heap::builder().gc_percent(100).build().unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let keep = cx.root(cx.alloc(node(42, None)).unwrap());
        let before = h.stats().num_gc;
        for _ in 0..200 {
            for i in 0..1000u64 {
                cx.alloc([i; 32]).unwrap();
            }
            cx.safepoint();
        }
        assert!(h.stats().num_gc > before, "no cycle ran at the safepoints");
        assert_eq!(keep.get(cx).val, 42);
    });
}

#[test]
fn allocation_errors_are_results() {
    let h = Heap::builder()
        .heap_limit(64 << 20)
        .max_object_size(32 << 20)
        .build()
        .unwrap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let big = cx.alloc([0u8; 256 << 10]);
        assert!(big.is_ok());
        let too_big = cx.alloc(vec![0u8; 1]).map(|_| ());
        assert!(too_big.is_ok());
        #[repr(align(16384))]
        struct Over(#[allow(dead_code)] u8);
        // SAFETY: no Gc inside.
        unsafe impl Trace for Over {
            const NO_GC: bool = true;
            fn trace(&self, _t: &mut Tracer<'_>) {}
        }
        // SAFETY: no brand.
        unsafe impl spanheap::Rebrand for Over {
            type At<'gc> = Over;
        }
        assert!(matches!(
            cx.alloc(Over(1)),
            Err(AllocError::BadAlignment { .. })
        ));
        // Zero-sized values are fine.
        assert_eq!(*cx.alloc(()).unwrap(), ());
    });
    // The hard heap limit is an error, not an abort.
    let r: Result<Vec<Root<[u8; 1 << 20]>>, AllocError> = m.scope(|cx| {
        let mut v = Vec::new();
        for _ in 0..100 {
            v.push(cx.root(cx.alloc([1u8; 1 << 20])?));
        }
        Ok(v)
    });
    assert!(matches!(r, Err(AllocError::HeapLimit { .. })), "{r:?}");
    // Above max_object_size (a small maximum, so that the value fits on
    // the test thread's stack).
    let small = Heap::builder().max_object_size(64 << 10).build().unwrap();
    small.mutator().scope(|cx| {
        assert!(matches!(
            cx.alloc([0u8; 128 << 10]),
            Err(AllocError::TooLarge { .. })
        ));
    });
}

#[test]
fn large_objects_are_collected_and_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    #[derive(Trace)]
    struct Big {
        #[trace(skip)]
        _c: Counted,
        data: [u64; 8192],
    }
    let h = heap();
    let mut m = h.mutator();
    let kept = m.scope(|cx| {
        let mut kept = None;
        for i in 0..20u64 {
            let b = cx
                .alloc(Big {
                    _c: Counted(drops.clone()),
                    data: [i; 8192],
                })
                .unwrap();
            if i == 7 {
                kept = Some(cx.root(b));
            }
        }
        kept.unwrap()
    });
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 19);
    m.scope(|cx| assert!(kept.get(cx).data.iter().all(|&x| x == 7)));
}

#[test]
fn a_panicking_drop_is_caught_and_counted() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom (expected by the test)");
        }
    }
    #[derive(Trace)]
    struct HasBomb {
        #[trace(skip)]
        _b: Bomb,
    }
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        cx.alloc(HasBomb { _b: Bomb }).unwrap();
    });
    settle(&h);
    assert_eq!(h.stats().drop_panics, 1);
    // The heap still works.
    m.scope(|cx| assert_eq!(cx.alloc(node(5, None)).unwrap().val, 5));
}

#[test]
#[should_panic(expected = "different heap")]
fn a_root_of_another_heap_panics() {
    let h1 = heap();
    let h2 = heap();
    let r = h1.mutator().scope(|cx| cx.root(cx.alloc(1u64).unwrap()));
    h2.mutator().scope(|cx| {
        let _ = r.get(cx);
    });
}

#[test]
#[should_panic(expected = "scope of another heap")]
fn nested_scopes_of_two_heaps_panic() {
    let h1 = heap();
    let h2 = heap();
    let mut m1 = h1.mutator();
    let mut m2 = h2.mutator();
    m1.scope(|_| m2.scope(|_| ()));
}

#[test]
#[should_panic(expected = "inside a scope")]
fn collect_inside_a_scope_panics() {
    let h = heap();
    let mut m = h.mutator();
    m.scope(|_| h.collect());
}

#[test]
fn nested_scopes_of_one_heap_share_the_safepoint() {
    let h = heap();
    let mut m1 = h.mutator();
    let mut m2 = h.mutator();
    let r = m1.scope(|cx1| {
        let a = cx1.alloc(node(1, None)).unwrap();
        let r = m2.scope(|cx2| {
            let b = cx2.alloc(node(2, None)).unwrap();
            cx2.root(b)
        });
        // m2's scope ended, but this thread is still in m1's scope: no
        // cycle may have run, `a` is intact.
        assert_eq!(a.val, 1);
        r
    });
    h.collect();
    m2.scope(|cx| assert_eq!(r.get(cx).val, 2));
}

#[test]
fn gc_pointers_compare_and_hash_by_value() {
    use std::collections::HashSet;
    let h = heap();
    h.mutator().scope(|cx| {
        let a = cx.alloc(String::from("x")).unwrap();
        let b = cx.alloc(String::from("x")).unwrap();
        assert_eq!(a, b);
        assert!(!Gc::ptr_eq(a, b));
        assert!(Gc::ptr_eq(a, a));
        let set: HashSet<Gc<'_, String>> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(format!("{a} {a:?}"), "x \"x\"");
        assert!(cx.alloc(1u32).unwrap() < cx.alloc(2u32).unwrap());
    });
}

#[test]
fn stats_record_every_cycle() {
    let h = heap();
    for _ in 0..5 {
        h.collect();
    }
    let s = h.stats();
    assert_eq!(s.num_gc, 5);
    assert_eq!(s.num_forced_gc, 5);
    // Two pauses per cycle: mark start and mark termination (Go records
    // its two stop-the-world phases the same way).
    assert_eq!(s.pauses.len(), 10);
    assert!(s.pause_total >= s.pause_max);
    assert!(s.last_gc.is_some());
}

#[test]
fn drops_may_create_and_drop_mutators() {
    // A Drop run by the collector's sweep may touch the heap's mutator
    // registry (here: create and drop a mutator of the same heap) without
    // deadlocking the cycle.
    struct MakesMutator(Heap);
    impl Drop for MakesMutator {
        fn drop(&mut self) {
            let m = self.0.mutator();
            drop(m);
        }
    }
    #[derive(Trace)]
    struct Holder {
        #[trace(skip)]
        _h: Option<MakesMutator>,
    }
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        for _ in 0..10 {
            cx.alloc(Holder {
                _h: Some(MakesMutator(h.clone())),
            })
            .unwrap();
        }
    });
    settle(&h);
    assert_eq!(h.stats().drop_panics, 0);
}

/// The pacer tests measure heap sizes: run them one at a time, so that
/// they do not also measure how the test harness's threads starve each
/// other's collector threads on a 2-core machine.
static PACER_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn churn(h: &Heap, live: usize, rounds: usize) -> u64 {
    let mut m = h.mutator();
    let table: Root<GcRefCell<'static, Vec<Gc<'static, [u64; 128]>>>> = m.scope(|cx| {
        let v = (0..live)
            .map(|i| cx.alloc([i as u64; 128]).unwrap())
            .collect::<Vec<_>>();
        cx.root(cx.alloc(GcRefCell::new(v)).unwrap())
    });
    let mut peak = 0;
    for round in 0..rounds {
        for chunk in 0..4 {
            m.scope(|cx| {
                // A safepoint every 256 stores, as an interpreter would
                // (see heap_stabilises_under_steady_churn).
                for part in (0..live / 4).collect::<Vec<_>>().chunks(256) {
                    let t = table.get(cx);
                    for &i in part {
                        let slot = (chunk * live / 4 + i) % live;
                        let x = cx.alloc([(round + slot) as u64; 128]).unwrap();
                        t.borrow_mut(cx)[slot] = x;
                    }
                    cx.safepoint();
                }
            });
            peak = peak.max(h.stats().mem.heap_inuse);
        }
    }
    peak
}

// These two measure the pacer itself, so they turn off stress mode (CI's
// second pass sets it through the environment).
#[test]
fn the_memory_limit_tightens_the_goal() {
    let _serial = PACER_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    // 8 MiB live. GOGC=400 alone would let the heap reach ~40 MiB; a
    // 24 MiB limit must hold it well below that.
    let live = 8192;
    let loose = Heap::builder()
        .gc_percent(400)
        .stress(None)
        .build()
        .unwrap();
    let loose_peak = churn(&loose, live, 12);
    let tight = Heap::builder()
        .stress(None)
        .gc_percent(400)
        .memory_limit(24 << 20)
        .build()
        .unwrap();
    let tight_peak = churn(&tight, live, 12);
    assert!(loose_peak > 28 << 20, "GOGC=400 peak only {loose_peak}");
    // The limit is soft and marking is concurrent: the mutator keeps
    // allocating while a mark runs, so the peak overshoots the 24 MiB
    // limit somewhat (Go's does too; here up to ~30 MiB with a CPU hog
    // competing for the 2 cores); it must stay well below GOGC=400's.
    assert!(
        tight_peak < 32 << 20 && tight_peak + (4 << 20) < loose_peak,
        "limited peak {tight_peak} (unlimited {loose_peak})"
    );
    assert!(tight.stats().heap_goal <= 24 << 20);
    assert!(tight.stats().num_gc > loose.stats().num_gc);
}

/// A collector thread stalled at the start of every mark (as a starved
/// one is, on a busy machine) must not let a mutator run away with the
/// heap: until T no mutator can assist, nor wait after its clean point,
/// so one over the goal waits for T instead. Without that wait the soak
/// reached 26 -> 175 MB against a 27 MB goal with the collector thread at
/// SCHED_IDLE, and this test's peak went far past its bound.
#[test]
fn a_collector_stalled_before_assists_can_start_still_holds_the_heap() {
    let _serial = PACER_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let h = Heap::builder()
        .gc_percent(100)
        .stress(None)
        .__fault_stall_before_t(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    let mut m = h.mutator();
    // 2 MiB live, never written again; 64 MiB of 1 KiB garbage.
    let _live: Root<Vec<Gc<'static, [u64; 128]>>> = m.scope(|cx| {
        let v: Vec<_> = (0..2048u64).map(|i| cx.alloc([i; 128]).unwrap()).collect();
        cx.root(cx.alloc(v).unwrap())
    });
    let mut peak = 0;
    m.scope(|cx| {
        for chunk in 0..256u64 {
            for i in 0..256 {
                let g = cx.alloc([chunk ^ i; 128]).unwrap();
                assert_eq!(g[0], chunk ^ i);
            }
            cx.safepoint();
            peak = peak.max(h.stats().mem.heap_inuse);
        }
    });
    let s = h.stats();
    // The goal is 4 MiB (the minimum heap) to 8 MiB; past it a mutator
    // gets a few refills per wait, plus the sweep lag.
    assert!(
        peak < 16 << 20,
        "heap in use peaked at {peak} bytes against a goal of {} ({} cycles)",
        s.heap_goal,
        s.num_gc
    );
    assert!(s.num_gc >= 5, "{} cycles", s.num_gc);
}

#[test]
fn gc_off_collects_only_at_the_memory_limit() {
    let _serial = PACER_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let h = Heap::builder()
        .stress(None)
        .gc_off()
        .memory_limit(32 << 20)
        .build()
        .unwrap();
    let peak = churn(&h, 4096, 16);
    let s = h.stats();
    assert!(s.num_gc > 0, "the limit never triggered a cycle");
    assert!(peak < 34 << 20, "peak {peak}");
    let off = Heap::builder().gc_off().stress(None).build().unwrap();
    churn(&off, 1024, 4);
    assert_eq!(off.stats().num_gc, 0, "GOGC=off without a limit collected");
}

#[derive(Trace)]
struct HoldsHeap {
    #[trace(skip)]
    _h: Option<Heap>,
    #[trace(skip)]
    _c: Counted,
}

fn wait_for(n: &AtomicUsize, want: usize) -> usize {
    for _ in 0..500 {
        if n.load(Ordering::SeqCst) >= want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    n.load(Ordering::SeqCst)
}

#[test]
fn the_last_heap_handle_may_die_in_its_own_sweepers_drop() {
    // An object holds a handle to its own heap. Once it is garbage and the
    // other handles are gone, the background sweeper's Drop of it may drop
    // the last handle: teardown then runs from inside that sweeper's sweep
    // (it must move to another thread: the sweeper can neither join
    // itself nor wait for its own sweep). Which thread drops the last
    // handle is a race; either way every object is dropped once.
    let drops = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let h = Heap::builder().background_sweep(true).build().unwrap();
        let mut m = h.mutator();
        m.scope(|cx| {
            cx.alloc(HoldsHeap {
                _h: Some(h.clone()),
                _c: Counted(drops.clone()),
            })
            .unwrap();
            cx.alloc(HoldsHeap {
                _h: None,
                _c: Counted(drops.clone()),
            })
            .unwrap();
        });
        h.collect();
        drop(m);
        drop(h);
        assert_eq!(wait_for(&drops, 2 * (i + 1)), 2 * (i + 1), "round {i}");
    }
}

#[test]
fn a_heap_torn_down_from_another_heaps_sweep_drops_its_objects() {
    // Heap B's object holds the last handle of heap A; B's sweep (inside
    // B's cycle) drops it, tearing A down from inside a Drop.
    let drops = Arc::new(AtomicUsize::new(0));
    let a = Heap::builder().background_sweep(false).build().unwrap();
    let keep_in_a = a.mutator().scope(|cx| {
        let x = cx
            .alloc(HoldsHeap {
                _h: None,
                _c: Counted(drops.clone()),
            })
            .unwrap();
        cx.root(x)
    });
    let b = heap();
    b.mutator().scope(|cx| {
        cx.alloc(HoldsHeap {
            _h: Some(a),
            _c: Counted(drops.clone()),
        })
        .unwrap();
    });
    drop(keep_in_a); // A's object is now only kept by A itself
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    settle(&b); // B's sweep drops the holder, and with it heap A
    assert_eq!(wait_for(&drops, 2), 2);
}

#[test]
fn collect_from_a_collected_objects_drop_is_refused_not_deadlocked() {
    // The Drop runs inside a sweep, possibly inside the cycle runner's
    // finish_sweep: collect() there would wait for itself. It panics; the
    // sweep catches the panic and counts it.
    struct Collects(Heap);
    impl Drop for Collects {
        fn drop(&mut self) {
            self.0.collect();
        }
    }
    #[derive(Trace)]
    struct Holder {
        #[trace(skip)]
        _c: Option<Collects>,
    }
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        cx.alloc(Holder {
            _c: Some(Collects(h.clone())),
        })
        .unwrap();
    });
    settle(&h);
    assert_eq!(h.stats().drop_panics, 1);
}

#[test]
fn parallel_marking_marks_everything_and_only_that() {
    // A heap large enough for parallel marking (>= 8 MiB), a wide and deep
    // graph (so workers must steal), checkmark on: every cycle is
    // re-verified by a single-threaded mark from scratch.
    let drops = Arc::new(AtomicUsize::new(0));
    let h = Heap::builder()
        .mark_workers(4)
        .checkmark(true)
        .background_sweep(false)
        .build()
        .unwrap();
    let mut m = h.mutator();
    const CHAINS: u64 = 64;
    const LEN: u64 = 4000;
    let roots: Vec<Root<Node<'static>>> = m.scope(|cx| {
        (0..CHAINS)
            .map(|c| {
                let mut head = cx.alloc(node(c * LEN, None)).unwrap();
                for i in 1..LEN {
                    let n = cx.alloc(node(c * LEN + i, Some(&drops))).unwrap();
                    n.next.set(cx, Some(head));
                    head = n;
                }
                cx.root(head)
            })
            .collect()
    });
    for round in 0..4 {
        m.scope(|cx| {
            for i in 0..20_000 {
                cx.alloc(node(i, Some(&drops))).unwrap();
            }
        });
        h.collect();
        assert_eq!(h.stats().last_marked_objects, CHAINS * LEN, "round {round}");
    }
    h.collect();
    // Garbage from every round dropped, nothing reachable dropped.
    assert_eq!(drops.load(Ordering::SeqCst), 4 * 20_000);
    m.scope(|cx| {
        for (c, r) in roots.iter().enumerate() {
            let mut cur = Some(r.get(cx));
            let mut expect = (c as u64 + 1) * LEN;
            while let Some(n) = cur {
                expect -= 1;
                assert_eq!(n.val, expect);
                cur = n.next.get();
            }
            assert_eq!(expect, c as u64 * LEN);
        }
    });
}

/// `Scope::collect` runs a full cycle without closing the scope (an
/// interpreter whose dispatch loop never leaves its scope can still
/// collect): garbage is found, rooted objects survive intact, and the
/// scope keeps working afterwards.
#[test]
fn scope_collect_runs_a_cycle_without_closing_the_scope() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    m.scope(|cx| {
        let keep = cx.root(cx.alloc(node(7, None)).unwrap());
        let gone = {
            let g = cx.alloc(node(8, Some(&drops))).unwrap();
            cx.downgrade(g)
        };
        let before = cx.heap().stats().num_gc;
        cx.collect();
        assert!(cx.heap().stats().num_gc > before, "no cycle ran");
        assert!(gone.upgrade(cx).is_none(), "garbage survived the cycle");
        assert_eq!(keep.get(cx).val, 7);
        // A second cycle sweeps the first one's garbage: its Drop ran once.
        cx.collect();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // The scope still allocates and roots.
        let n = cx.alloc(node(9, None)).unwrap();
        n.next.set(cx, Some(keep.get(cx)));
        assert_eq!(n.next.get().unwrap().val, 7);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// With two mutators of one heap nested on one thread, `Scope::collect`
/// in the inner scope would wait for the outer one: it panics before
/// touching anything, and the heap keeps working after the unwind.
#[test]
fn scope_collect_inside_another_scope_of_the_same_heap_panics_cleanly() {
    let h = heap();
    let mut outer = h.mutator();
    let mut inner = h.mutator();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        outer.scope(|_| inner.scope(|cx| cx.collect()));
    }));
    let msg = r.expect_err("collect inside a nested scope returned");
    let msg = msg
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| msg.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("it would wait for itself"), "{msg}");
    let keep = outer.scope(|cx| cx.root(cx.alloc(node(1, None)).unwrap()));
    h.collect();
    inner.scope(|cx| cx.collect());
    outer.scope(|cx| assert_eq!(keep.get(cx).val, 1));
}

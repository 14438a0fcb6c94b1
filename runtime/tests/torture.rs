//! Concurrent torture (modelled on the test that found Go's #71228, a
//! write barrier the compiler dropped): two mutators make random pointer
//! stores into a shared *old* graph — replacing, deleting and swapping
//! edges, hanging young objects off old ones — while a third thread runs
//! collections back to back. Every verifier is on: the sweep's zombie
//! check (a mark bit on a free slot aborts), checkmark, the snapshot
//! verifier, the heap verifier and poisoning of freed slots. At the end
//! everything reachable is intact and everything else was dropped exactly
//! once.
//!
//! The mutators store until the collecting thread has run
//! `SPANHEAP_STRESS_ROUNDS` cycles (default 40) and each has done at least
//! 400 rounds; a larger value runs longer.

use spanheap::{Gc, GcRefCell, Heap, Root, Trace};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[path = "support/graph.rs"]
#[allow(dead_code)] // VERIFIED is the stress tests' counter
mod graph;
use graph::{LIVE, Rng, Vertex, verify, vertex};

/// The shared old graph: every vertex is reachable from here.
#[derive(Trace)]
struct Old<'gc> {
    v: GcRefCell<'gc, Vec<Gc<'gc, Vertex<'gc>>>>,
}

const OLD: u64 = 2000;

#[test]
fn two_mutators_store_randomly_into_a_shared_old_graph_during_back_to_back_cycles() {
    let cycles: u64 = std::env::var("SPANHEAP_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let h = Heap::builder()
        .checkmark(true)
        .verify_snapshot(true)
        .verify_heap(true)
        .poison_freed(true)
        .gc_percent(100)
        .build()
        .unwrap();
    let old: Root<Old<'static>> = h.mutator().scope(|cx| {
        let o = cx
            .alloc(Old {
                v: GcRefCell::new(Vec::new()),
            })
            .unwrap();
        for id in 0..OLD {
            let v = cx.alloc(vertex(id)).unwrap();
            o.v.borrow_mut(cx).push(v);
        }
        cx.root(o)
    });
    // Make the graph old: survivors of a few cycles.
    for _ in 0..3 {
        h.collect();
    }
    let done = Arc::new(AtomicBool::new(false));
    let collector = {
        let (h, done) = (h.clone(), done.clone());
        std::thread::spawn(move || {
            for _ in 0..cycles {
                h.collect();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mutators: Vec<_> = (1..=2u64)
        .map(|t| {
            let (h, old, done) = (h.clone(), old.clone(), done.clone());
            std::thread::spawn(move || {
                let mut m = h.mutator();
                let mut rng = Rng(0xC0FFEE ^ (t << 20));
                let mut next = t << 40;
                let mut rounds = 0u64;
                while rounds < 400 || !done.load(Ordering::SeqCst) {
                    rounds += 1;
                    m.scope(|cx| {
                        let o = old.get(cx);
                        for _ in 0..25 {
                            let (a, b) = {
                                let v = o.v.borrow();
                                let n = v.len() as u64;
                                (v[(rng.next() % n) as usize], v[(rng.next() % n) as usize])
                            };
                            verify(&a);
                            match rng.next() % 8 {
                                // Old -> old edge in the barriered cell.
                                0 | 1 => a.link.set(cx, Some(b)),
                                // Old -> young.
                                // (The other mutator may hold a cell: a
                                // conflicting borrow skips the store.)
                                2 => {
                                    let y = cx.alloc(vertex(next)).unwrap();
                                    next += 1;
                                    y.link.set(cx, Some(b));
                                    if let Ok(mut e) = a.edges.try_borrow_mut(cx) {
                                        e.push(y);
                                    }
                                }
                                // Delete an edge (the deletion barrier's case).
                                3 => {
                                    if let Ok(mut e) = a.edges.try_borrow_mut(cx)
                                        && !e.is_empty()
                                    {
                                        let k = (rng.next() as usize) % e.len();
                                        e.swap_remove(k);
                                    }
                                }
                                // Move a's link to b and clear it: the
                                // target is only on this stack in between.
                                4 => {
                                    let l = a.link.replace(cx, None);
                                    b.link.set(cx, l);
                                }
                                // Swap the edge lists of two old vertices.
                                5 if !Gc::ptr_eq(a, b) => {
                                    if let (Ok(mut ea), Ok(mut eb)) =
                                        (a.edges.try_borrow_mut(cx), b.edges.try_borrow_mut(cx))
                                    {
                                        std::mem::swap(&mut *ea, &mut *eb);
                                    }
                                }
                                // Keep edge lists bounded.
                                6 => {
                                    if let Ok(mut e) = a.edges.try_borrow_mut(cx) {
                                        e.truncate(4);
                                    }
                                }
                                // Garbage.
                                _ => {
                                    let g = cx.alloc(vertex(next)).unwrap();
                                    next += 1;
                                    verify(&g);
                                }
                            }
                        }
                        cx.safepoint();
                    });
                }
                rounds
            })
        })
        .collect();
    let rounds: Vec<u64> = mutators.into_iter().map(|t| t.join().unwrap()).collect();
    collector.join().unwrap();
    eprintln!("{cycles} back-to-back cycles during {rounds:?} rounds of 25 stores");
    assert!(h.stats().num_gc >= cycles + 3);
    h.collect();
    h.collect();
    // Everything reachable intact; exactly the reachable vertices alive.
    let reachable = h.mutator().scope(|cx| {
        let o = old.get(cx);
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<_> = o.v.borrow().clone();
        while let Some(v) = stack.pop() {
            if !seen.insert(v.id) {
                continue;
            }
            verify(&v);
            stack.extend(v.edges.borrow().iter().copied());
            stack.extend(v.link.get());
        }
        seen.len()
    });
    assert!(reachable >= OLD as usize);
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        reachable,
        "live vertices == reachable vertices"
    );
    assert_eq!(h.verify(), Ok(()));
    drop(old);
    h.collect();
    h.collect();
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        0,
        "everything dropped once unrooted"
    );
}

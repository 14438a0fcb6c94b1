//! Concurrent marking under load: mutator threads that never leave their
//! scope (they only call `Scope::safepoint`) mutate a shared cyclic graph
//! — through `GcRefCell` vectors that grow and shrink and `GcCell`
//! pointers — while another thread forces collections back to back. Every
//! collection must finish although the scopes stay open; everything
//! reachable keeps its exact contents; everything unreachable is dropped
//! exactly once. Run it with `SPANHEAP_CHECKMARK=1` to have every mark
//! verified against a stop-the-world re-mark (CI's second pass does).

use spanheap::{Gc, Heap, Root};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "support/graph.rs"]
mod graph;
use graph::{LIVE, Rng, VERIFIED, Vertex, verify, vertex};

#[test]
fn mutators_in_open_scopes_while_marks_run() {
    let ops: u64 = std::env::var("SPANHEAP_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
        * 40;
    let h = Heap::builder().gc_percent(50).build().unwrap();
    let hub: Root<Vertex<'static>> = h
        .mutator()
        .scope(|cx| cx.root(cx.alloc(vertex(0)).unwrap()));
    let done = Arc::new(AtomicBool::new(false));
    // Forced collections completed so far: the mutators keep their scopes
    // open until at least FORCED of them have finished (a collection that
    // needed a scope to close would make them spin until the deadline).
    const FORCED: usize = 5;
    let finished = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(120);
    let threads: Vec<_> = (1..=2u64)
        .map(|t| {
            let h = h.clone();
            let hub = hub.clone();
            let finished = finished.clone();
            std::thread::spawn(move || {
                let mut m = h.mutator();
                let mut rng = Rng(0x9876_5432 ^ t);
                let mut next_id = t << 40;
                // One scope for the whole run.
                m.scope(|cx| {
                    let mut op_no = 0;
                    while op_no < ops || finished.load(Ordering::SeqCst) < FORCED {
                        op_no += 1;
                        assert!(
                            Instant::now() < deadline,
                            "collections did not finish while the scopes stayed open"
                        );
                        if op_no % 64 == 0 {
                            cx.safepoint();
                        }
                        let hub = hub.get(cx);
                        let mut v = hub;
                        for _ in 0..(rng.next() % 7) {
                            let next = if rng.next().is_multiple_of(3) {
                                v.link.get()
                            } else {
                                let Ok(e) = v.edges.try_borrow() else { break };
                                if e.is_empty() {
                                    None
                                } else {
                                    Some(e[(rng.next() as usize) % e.len()])
                                }
                            };
                            match next {
                                Some(n) => v = n,
                                None => break,
                            }
                        }
                        verify(&v);
                        VERIFIED.fetch_add(1, Ordering::SeqCst);
                        match rng.next() % 8 {
                            0..=2 => {
                                next_id += 1;
                                let n = cx.alloc(vertex(next_id)).unwrap();
                                if let Ok(mut e) = v.edges.try_borrow_mut(cx) {
                                    e.push(n);
                                }
                            }
                            3 => {
                                if let Ok(mut e) = v.edges.try_borrow_mut(cx)
                                    && !e.is_empty()
                                {
                                    let i = (rng.next() as usize) % e.len();
                                    let x = e.swap_remove(i);
                                    // Move the removed vertex elsewhere:
                                    // it is only on this stack now.
                                    hub.link.set(cx, Some(x));
                                }
                            }
                            4 => v.link.set(cx, Some(hub)),
                            5 => v.link.set(cx, None),
                            6 => {
                                if let Ok(mut e) = v.edges.try_borrow_mut(cx) {
                                    if e.len() > 12 {
                                        e.truncate(6);
                                    }
                                    // Grow the vector so it reallocates.
                                    let l = e.len();
                                    e.reserve(l + 1);
                                }
                            }
                            _ => {
                                for i in 0..20 {
                                    cx.alloc(vertex(i)).unwrap();
                                }
                            }
                        }
                    }
                    op_no
                })
            })
        })
        .collect();
    let collector = {
        let h = h.clone();
        let done = done.clone();
        let finished = finished.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                h.collect(); // must finish while both scopes stay open
                finished.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let ops_run: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    collector.join().unwrap();
    assert!(finished.load(Ordering::SeqCst) >= FORCED);
    h.collect();
    let mut m = h.mutator();
    let reachable = m.scope(|cx| {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![hub.get(cx)];
        while let Some(v) = stack.pop() {
            if !seen.insert(Gc::as_ptr(v) as usize) {
                continue;
            }
            verify(&v);
            stack.extend(v.edges.borrow().iter().copied());
            stack.extend(v.link.get());
        }
        seen.len()
    });
    // Every operation ran and verified a vertex.
    assert_eq!(VERIFIED.load(Ordering::SeqCst), ops_run as usize);
    assert!(ops_run >= 2 * ops);
    h.collect();
    h.collect();
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        reachable,
        "dropped exactly the unreachable"
    );
    let s = h.stats();
    assert!(
        s.mem.heap_inuse < 96 << 20,
        "heap in use {} bytes",
        s.mem.heap_inuse
    );
    drop((m, hub, h));
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        0,
        "teardown dropped everything"
    );
}

static ITEM_DROPPED: AtomicBool = AtomicBool::new(false);

/// Sets `ITEM_DROPPED` when the object holding it is collected.
struct DropFlag;
impl Drop for DropFlag {
    fn drop(&mut self) {
        ITEM_DROPPED.store(true, Ordering::SeqCst);
    }
}

#[derive(spanheap::Trace)]
struct Item {
    value: u64,
    #[trace(skip)]
    _flag: DropFlag,
}

#[derive(spanheap::Trace)]
struct Holder<'gc> {
    items: spanheap::GcRefCell<'gc, Vec<Gc<'gc, Item>>>,
}

/// A regression test with a forced interleaving (found by the stress +
/// checkmark loop): a mark has started; mutator B has turned its barrier on
/// and its first `borrow_mut` settles a cell's scan claim for this mark;
/// mutator A, whose barrier is still off, then pushes a white object into
/// the same cell. Markers start only after A acknowledges the mark, and
/// must still read the cell: the object must survive.
#[test]
fn a_write_before_the_barrier_is_not_hidden_by_a_settled_cell() {
    use std::sync::Barrier;
    // Mutator A waits inside its scope, without a safepoint, for B, which
    // waits for the mark: a world stopped before the mark (the heap
    // verifier at sweep termination, stop-the-world mode) would wait for
    // A forever. The forced interleaving needs the concurrent mark alone.
    let h = Heap::builder()
        .stress(None)
        .verify_heap(false)
        .stop_the_world(false)
        .build()
        .unwrap();
    let holder: Root<Holder<'static>> = h.mutator().scope(|cx| {
        cx.root(
            cx.alloc(Holder {
                items: spanheap::GcRefCell::new(Vec::new()),
            })
            .unwrap(),
        )
    });
    let ready = Arc::new(Barrier::new(3)); // A allocated, B in scope, collector about to start
    let settled = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let a = {
        let (h, holder, ready, settled, done) = (
            h.clone(),
            holder.clone(),
            ready.clone(),
            settled.clone(),
            done.clone(),
        );
        std::thread::spawn(move || {
            let mut m = h.mutator();
            m.scope(|cx| {
                {
                    // Allocated before the mark: white, on this stack only.
                    let item = cx
                        .alloc(Item {
                            value: 42,
                            _flag: DropFlag,
                        })
                        .unwrap();
                    ready.wait();
                    // No allocation or safepoint here: the barrier stays off.
                    while !settled.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                    assert!(!cx.__barrier_on());
                    holder.get(cx).items.borrow_mut(cx).push(item);
                }
                while !done.load(Ordering::SeqCst) {
                    cx.safepoint();
                    std::thread::yield_now();
                }
            });
        })
    };
    let b = {
        let (h, holder, ready, settled, done) = (
            h.clone(),
            holder.clone(),
            ready.clone(),
            settled.clone(),
            done.clone(),
        );
        std::thread::spawn(move || {
            let mut m = h.mutator();
            m.scope(|cx| {
                ready.wait();
                // Wait for the mark to start, acknowledging it.
                while !cx.__barrier_on() {
                    cx.safepoint();
                    std::thread::yield_now();
                }
                // Scan before first write: settles the (empty) list.
                drop(holder.get(cx).items.borrow_mut(cx));
                settled.store(true, Ordering::SeqCst);
                while !done.load(Ordering::SeqCst) {
                    cx.safepoint();
                    std::thread::yield_now();
                }
            });
        })
    };
    ready.wait();
    h.collect(); // the mark B acknowledges; finishes once A pushed and reached a safepoint
    assert!(settled.load(Ordering::SeqCst));
    h.collect(); // sweeps what the first one left white
    done.store(true, Ordering::SeqCst);
    a.join().unwrap();
    b.join().unwrap();
    h.collect();
    assert!(
        !ITEM_DROPPED.load(Ordering::SeqCst),
        "a reachable object was collected"
    );
    let mut m = h.mutator();
    m.scope(|cx| {
        let hd = holder.get(cx);
        let items = hd.items.borrow();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].value, 42);
    });
}

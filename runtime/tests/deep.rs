//! Deep and wide object graphs: marking, sweeping and dropping never
//! recurse on the native stack once per object or per link.
//!
//! - a singly linked list of `Gc` objects (10 million by default): marked
//!   several times while rooted, then freed in full once unrooted — the
//!   mark's grey stack is an explicit `Vec`, not recursion;
//! - one object holding a `Vec` of a million `Gc`s: every element is
//!   marked, survives, and is freed (and dropped exactly once) after;
//! - one object holding a chain of `Box` nodes (10 million deep by
//!   default), each holding a `Gc`, traced through the library's
//!   `Trace for Box<T>` and the derived impl of the node: the collector
//!   (collector thread, mark workers, write barrier and checkmark walk)
//!   must get through it without overflowing its stack. The chain's own
//!   `Drop` is iterative (see [`BoxChain`]); Rust's drop glue for a
//!   `Box` list is recursive, which no collector can change.
//!
//! Each test runs its body on a thread with an explicit 2 MiB stack (the
//! default of a spawned Rust thread), so a recursion per link would
//! overflow it long before the end: the point of the test. The collector's
//! own threads (`spanheap-gc`, `spanheap-mark-*`, `spanheap-sweep`) have
//! default stacks too.
//!
//! Sizes: `SPANHEAP_DEEP_N` overrides the list and chain length (e.g. `1000000`
//! for a quicker run); `SPANHEAP_DEEP_WIDE` the `Vec` length.

use spanheap::{Gc, GcRefCell, Heap, Rebrand, Root, Trace, Tracer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The stack every test body runs on.
const TEST_STACK: usize = 2 << 20;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` on a thread with a [`TEST_STACK`] stack and waits for it.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name("deep-test".into())
        .stack_size(TEST_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// Two full cycles: the second one's sweep termination finishes the
/// first one's sweep, so every object the first left unmarked is freed.
fn settle(h: &Heap) {
    h.collect();
    h.collect();
}

/// Bumps its counter when dropped.
struct Tally(Arc<AtomicUsize>);
impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------
// (a) a long linked list of GC objects

#[derive(Trace)]
struct Link<'gc> {
    val: u64,
    next: Option<Gc<'gc, Link<'gc>>>,
}

#[test]
fn a_long_linked_list_is_marked_and_freed_without_recursion() {
    let n = size("SPANHEAP_DEEP_N", 10_000_000) as u64;
    on_small_stack(move || {
        let h = Heap::builder().mark_workers(2).build().unwrap();
        let mut m = h.mutator();
        // Built tail first in chunks: each chunk is one scope, and the head
        // so far is carried from scope to scope in a Root, so collections
        // can run between chunks (and do, with the default pacer).
        const CHUNK: u64 = 1 << 20;
        let mut head: Option<Root<Link<'static>>> = None;
        let mut built = 0;
        while built < n {
            let k = CHUNK.min(n - built);
            head = Some(m.scope(|cx| {
                let mut cur = head.as_ref().map(|r| r.get(cx));
                for _ in 0..k {
                    built += 1;
                    cur = Some(
                        cx.alloc(Link {
                            val: built,
                            next: cur,
                        })
                        .unwrap(),
                    );
                }
                cx.root(cur.unwrap())
            }));
        }
        let head = head.unwrap();
        let base_objects = h.stats().mem.heap_objects;
        for _ in 0..3 {
            h.collect();
            let s = h.stats();
            assert!(
                s.last_marked_objects >= n,
                "a cycle marked {} objects of a {n}-long list",
                s.last_marked_objects
            );
        }
        // The whole list is intact: walk it (iteratively) and check every
        // value, n down to 1.
        m.scope(|cx| {
            let mut cur = Some(head.get(cx));
            let mut expect = n;
            while let Some(l) = cur {
                assert_eq!(l.val, expect);
                expect -= 1;
                cur = l.next;
            }
            assert_eq!(expect, 0);
        });
        drop(head);
        settle(&h);
        let s = h.stats();
        assert!(
            s.last_marked_objects < 16,
            "the last cycle still marked {} objects",
            s.last_marked_objects
        );
        // (`heap_objects` lags by what mcaches hold uncounted: a loose
        // lower bound before, a tight upper bound after.)
        assert!(base_objects >= n / 2, "{base_objects} objects allocated");
        assert!(
            s.mem.heap_objects <= 64,
            "{} objects still allocated of {base_objects} (list of {n})",
            s.mem.heap_objects
        );
    });
}

// ---------------------------------------------------------------------
// (b) one object holding a Vec of a million Gcs

#[derive(Trace)]
struct Leaf {
    val: u64,
    #[trace(skip)]
    _t: Tally,
}

#[derive(Trace)]
struct Wide<'gc> {
    items: Vec<Gc<'gc, Leaf>>,
}

#[test]
fn a_million_element_vec_of_gc_is_marked_and_freed() {
    let n = size("SPANHEAP_DEEP_WIDE", 1_000_000);
    on_small_stack(move || {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = Heap::builder().mark_workers(2).build().unwrap();
        let mut m = h.mutator();
        let wide: Root<Wide<'static>> = m.scope(|cx| {
            let mut items = Vec::with_capacity(n);
            for i in 0..n {
                items.push(
                    cx.alloc(Leaf {
                        val: i as u64,
                        _t: Tally(drops.clone()),
                    })
                    .unwrap(),
                );
            }
            cx.root(cx.alloc(Wide { items }).unwrap())
        });
        for _ in 0..2 {
            settle(&h);
            assert_eq!(
                drops.load(Ordering::Relaxed),
                0,
                "a reachable leaf was dropped"
            );
            assert!(h.stats().last_marked_objects > n as u64);
        }
        // Reuse any freed memory, then check every leaf is still intact.
        m.scope(|cx| {
            for i in 0..n as u64 {
                cx.alloc(i).unwrap();
            }
        });
        m.scope(|cx| {
            let w = wide.get(cx);
            assert_eq!(w.items.len(), n);
            for (i, l) in w.items.iter().enumerate() {
                assert_eq!(l.val, i as u64);
            }
        });
        drop(wide);
        settle(&h);
        assert_eq!(drops.load(Ordering::Relaxed), n, "every leaf dropped once");
    });
}

// ---------------------------------------------------------------------
// (c) a deep chain of Box nodes inside one GC object

/// One node of a `Box` chain. Its trace is derived: the derived impl
/// traces `next` through `Trace for Option<Box<_>>`, i.e. recursively, one
/// call per link — the library's `Box` impl must not let that overflow.
/// (`#[trace(gc)]`: a recursive type's `NO_GC` would be a constant cycle.)
#[derive(Trace)]
#[trace(gc)]
struct BoxLink<'gc> {
    // `next` first: the derived trace then has work left after the
    // recursive call (the leaf), so the optimiser cannot turn the
    // recursion into a loop (a tail call) and hide the problem.
    next: Option<Box<BoxLink<'gc>>>,
    leaf: Option<Gc<'gc, Leaf>>,
}

/// A `Box` chain with an iterative `Drop` (as any long `Box` list needs:
/// Rust's drop glue would recurse once per link). `#[derive(Trace)]`
/// refuses types with a `Drop` impl, so this field type implements
/// `Trace` by hand — delegating to the library's impls, which recurse
/// through every link — and its `Drop` only moves the links' `Gc`s,
/// never dereferences one (rule 4 of `Trace`).
struct BoxChain<'gc>(Option<Box<BoxLink<'gc>>>);

// SAFETY: reports the whole chain (through `Option<Box<BoxLink>>`'s
// impl); `NO_GC` is false (links hold `Gc`s); the `Drop` below
// dereferences no `Gc`.
unsafe impl Trace for BoxChain<'_> {
    const NO_GC: bool = false;
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t)
    }
}

// SAFETY: renames the brand only.
unsafe impl Rebrand for BoxChain<'_> {
    type At<'gc> = BoxChain<'gc>;
}

impl Drop for BoxChain<'_> {
    fn drop(&mut self) {
        let mut cur = self.0.take();
        while let Some(mut link) = cur {
            cur = link.next.take();
        }
    }
}

#[derive(Trace)]
struct Holder<'gc> {
    chain: GcRefCell<'gc, BoxChain<'gc>>,
    #[trace(skip)]
    _t: Tally,
}

/// A chain of `n` links; every `every`-th link holds a new leaf (its value
/// is the link's depth).
fn chain<'gc>(
    cx: &'gc spanheap::Scope<'_>,
    n: usize,
    every: usize,
    drops: &Arc<AtomicUsize>,
) -> BoxChain<'gc> {
    let mut next = None;
    for depth in (0..n).rev() {
        let leaf = (depth % every == 0).then(|| {
            cx.alloc(Leaf {
                val: depth as u64,
                _t: Tally(drops.clone()),
            })
            .unwrap()
        });
        next = Some(Box::new(BoxLink { next, leaf }));
    }
    BoxChain(next)
}

fn check_chain(c: &BoxChain<'_>, n: usize, every: usize) {
    let mut cur = c.0.as_deref();
    let mut depth = 0;
    while let Some(l) = cur {
        if depth % every == 0 {
            assert_eq!(l.leaf.map(|g| g.val), Some(depth as u64));
        }
        depth += 1;
        cur = l.next.as_deref();
    }
    assert_eq!(depth, n);
}

#[test]
fn a_deep_box_chain_inside_an_object_is_traced_without_overflow() {
    let n = size("SPANHEAP_DEEP_N", 10_000_000);
    const EVERY: usize = 1000;
    on_small_stack(move || {
        let leaves = n.div_ceil(EVERY);
        let drops = Arc::new(AtomicUsize::new(0));
        let h = Heap::builder().mark_workers(2).build().unwrap();
        let mut m = h.mutator();
        let holder: Root<Holder<'static>> = m.scope(|cx| {
            let c = chain(cx, n, EVERY, &drops);
            cx.root(
                cx.alloc(Holder {
                    chain: GcRefCell::new(c),
                    _t: Tally(drops.clone()),
                })
                .unwrap(),
            )
        });
        // Ballast past the parallel-mark threshold (8 MiB of live heap),
        // so that a mark worker of the pool may be the one that traces
        // the chain.
        let ballast: Vec<Root<[u64; 1024]>> = m.scope(|cx| {
            (0..2048)
                .map(|_| cx.root(cx.alloc([7u64; 1024]).unwrap()))
                .collect()
        });
        settle(&h);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            0,
            "a reachable leaf was dropped"
        );
        // The write barrier traces on the mutator's own thread: the first
        // mutable borrow of a `GcRefCell` during a mark shades the whole
        // contents into this thread's barrier buffer.
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
            let hd = holder.get(cx);
            let c = hd.chain.borrow_mut(cx);
            check_chain(&c, n, EVERY);
            drop(c);
            collector
        });
        collector.join().unwrap();
        h.collect(); // sweeps what the barrier's cycle left unmarked
        assert_eq!(
            drops.load(Ordering::Relaxed),
            0,
            "a reachable leaf was dropped"
        );
        m.scope(|cx| check_chain(&holder.get(cx).chain.borrow(), n, EVERY));
        drop(ballast);
        drop(holder);
        settle(&h);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            leaves + 1,
            "leaves and holder dropped once"
        );
    });
}

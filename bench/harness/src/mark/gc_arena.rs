//! The `mark` workload on gc-arena (rules in [`super`]), written as the
//! crate's README and examples write it.
//!
//! - A node is a `#[derive(Collect)] #[collect(no_drop)]` struct with its
//!   children in `Lock` cells and two `u64` words; the children are stored
//!   after allocation through `Gc::write(mc, node)` (the write barrier)
//!   and `unlock!(…).set(…)`.
//! - The arena's root (`Rootable![MarkRoot<'_>]`) holds the temporary
//!   array (a `Vec<Option<Gc<Node>>>` indexed by node number) and, once
//!   built, the tree. The allocation and linking loops run as one
//!   `mutate_root` / `mutate` call per [`CHUNK`] nodes; after each, the
//!   arena pays its allocation debt with `collect_debt()` once the debt
//!   exceeds 1,024 (as `crate::peers::gc_arena` and piccolo do). Default
//!   pacing. Then `mutate_root` moves node 0 into the root's `tree` and
//!   empties the array.
//! - A full collection, from the collector's sleep phase, is
//!   `finish_marking()` (the whole mark, returning once the arena is fully
//!   marked) followed by `finish_cycle()` (the sweep); `mark_ms` is the
//!   first call, `collect_ms` both. The preliminary collection (the same
//!   two calls) first completes whatever cycle the build left in progress
//!   — `finish_marking` does nothing while sweeping — so the measured one
//!   starts asleep and marks the whole tree.
//! - One thread: gc-arena has no parallel marking (`--threads 1` only).

use super::{Collected, MarkPeer, children};
use ::gc_arena::barrier::unlock;
use ::gc_arena::{Arena, Collect, Gc, Lock, Rootable};
use std::time::{Duration, Instant};

/// Nodes per `mutate` call of the build.
const CHUNK: usize = 1024;

/// Allocation debt above which the arena collects (piccolo's
/// `COLLECTOR_GRANULARITY`).
const COLLECTOR_GRANULARITY: f64 = 1024.0;

#[derive(Collect)]
#[collect(no_drop)]
struct Node<'gc> {
    left: Lock<Option<Gc<'gc, Node<'gc>>>>,
    right: Lock<Option<Gc<'gc, Node<'gc>>>>,
    value: u64,
    /// Part of the 32-byte payload; never read.
    #[allow(dead_code)]
    pad: u64,
}

/// The arena's root.
#[derive(Collect)]
#[collect(no_drop)]
struct MarkRoot<'gc> {
    /// The temporary array, by node number.
    handles: Vec<Option<Gc<'gc, Node<'gc>>>>,
    /// Node 0, once built.
    tree: Option<Gc<'gc, Node<'gc>>>,
}

/// A gc-arena arena holding the tree.
pub struct Tree {
    arena: Arena<Rootable![MarkRoot<'_>]>,
    last_mark: Duration,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            arena: Arena::new(|_| MarkRoot {
                handles: Vec::new(),
                tree: None,
            }),
            last_mark: Duration::ZERO,
        }
    }
}

impl Tree {
    /// Pays the allocation debt, if it is worth it.
    fn pay_debt(&mut self) {
        if self.arena.metrics().allocation_debt() > COLLECTOR_GRANULARITY {
            self.arena.collect_debt();
        }
    }
}

/// The sum of `value` over the subtree of `node`.
fn sum(node: &Node<'_>) -> u64 {
    let mut s = node.value;
    for c in [node.left.get(), node.right.get()].into_iter().flatten() {
        s += sum(&c);
    }
    s
}

impl MarkPeer for Tree {
    fn build(&mut self, order: &[u32]) {
        let n = order.len();
        self.arena
            .mutate_root(|_, root| root.handles = vec![None; n]);
        for chunk in order.chunks(CHUNK) {
            self.arena.mutate_root(|mc, root| {
                for &k in chunk {
                    let node = Node {
                        left: Lock::new(None),
                        right: Lock::new(None),
                        value: u64::from(k),
                        pad: 0,
                    };
                    root.handles[k as usize] = Some(Gc::new(mc, node));
                }
            });
            self.pay_debt();
        }
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            self.arena.mutate(|mc, root| {
                for k in start..end {
                    let Some(node) = root.handles[k] else {
                        continue;
                    };
                    let (l, r) = children(k, n);
                    let node = Gc::write(mc, node);
                    unlock!(node, Node, left).set(l.and_then(|l| root.handles[l]));
                    unlock!(node, Node, right).set(r.and_then(|r| root.handles[r]));
                }
            });
            self.pay_debt();
            start = end;
        }
        self.arena.mutate_root(|_, root| {
            root.tree = root.handles.first().copied().flatten();
            root.handles = Vec::new();
        });
    }

    fn collect(&mut self) {
        let t0 = Instant::now();
        // The arena is fully marked afterwards unless it was sweeping;
        // `finish_cycle` ends the cycle either way.
        let _ = self.arena.finish_marking();
        self.last_mark = t0.elapsed();
        self.arena.finish_cycle();
    }

    fn collected(&mut self) -> Collected {
        Collected {
            mark: Some(self.last_mark),
            heap_bytes: None,
            gc_cycles: None,
        }
    }

    fn sum(&mut self) -> u64 {
        self.arena
            .mutate(|_, root| root.tree.map_or(0, |t| sum(&t)))
    }
}

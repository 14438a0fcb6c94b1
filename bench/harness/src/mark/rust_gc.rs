//! The `mark` workload on rust-gc (crate `gc`; rules in [`super`]),
//! written as its README writes it.
//!
//! - A node is `#[derive(Trace, Finalize)]` with its children in
//!   `GcCell`s and two `u64` words; the children are stored after
//!   allocation with `*node.left.borrow_mut() = …`.
//! - The temporary array is a `Vec<Option<Gc<Node>>>` on the Rust side:
//!   a `Gc` held outside the GC heap is a root (rust-gc counts roots), so
//!   the array keeps every node alive until it is dropped; the tree is
//!   then held by one `Gc` to node 0.
//! - Collections during the build are the crate's default (inside
//!   `Gc::new`, past a byte threshold that grows with the heap). A full
//!   collection is `gc::force_collect()`: mark from the rooted boxes, then
//!   sweep, in one call — there is no separate mark time. `heap_bytes` is
//!   `gc::stats().bytes_allocated` and `gc_cycles` its
//!   `collections_performed` (the `unstable-stats` feature; the collector
//!   is thread-local, so both add up over the runs of one thread).
//! - One thread: the collector is thread-local (`--threads 1` only).

// gc_derive 0.5.0 (the latest) emits its impls inside a `const _` block,
// which today's rustc flags; the impls are correct.
#![allow(non_local_definitions)]

use super::{Collected, MarkPeer, children};
use ::gc::{Finalize, Gc, GcCell, Trace};

#[derive(Trace, Finalize)]
struct Node {
    left: GcCell<Option<Gc<Node>>>,
    right: GcCell<Option<Gc<Node>>>,
    value: u64,
    /// Part of the 32-byte payload; never read.
    #[allow(dead_code)]
    pad: u64,
}

/// The tree, once built.
#[derive(Default)]
pub struct Tree {
    root: Option<Gc<Node>>,
}

/// The sum of `value` over the subtree of `node`.
fn sum(node: &Node) -> u64 {
    let mut s = node.value;
    for c in [&*node.left.borrow(), &*node.right.borrow()]
        .into_iter()
        .flatten()
    {
        s += sum(c);
    }
    s
}

impl MarkPeer for Tree {
    fn build(&mut self, order: &[u32]) {
        let n = order.len();
        let mut handles: Vec<Option<Gc<Node>>> = vec![None; n];
        for &k in order {
            handles[k as usize] = Some(Gc::new(Node {
                left: GcCell::new(None),
                right: GcCell::new(None),
                value: u64::from(k),
                pad: 0,
            }));
        }
        for (k, node) in handles.iter().enumerate() {
            let Some(node) = node else { continue };
            let (l, r) = children(k, n);
            *node.left.borrow_mut() = l.and_then(|l| handles[l].clone());
            *node.right.borrow_mut() = r.and_then(|r| handles[r].clone());
        }
        self.root = handles.first().cloned().flatten();
        drop(handles);
    }

    fn collect(&mut self) {
        ::gc::force_collect();
    }

    fn collected(&mut self) -> Collected {
        let st = ::gc::stats();
        Collected {
            mark: None,
            heap_bytes: Some(st.bytes_allocated as u64),
            gc_cycles: Some(st.collections_performed as u64),
        }
    }

    fn sum(&mut self) -> u64 {
        self.root.as_ref().map_or(0, |r| sum(r))
    }
}

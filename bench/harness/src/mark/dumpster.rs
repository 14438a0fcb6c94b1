//! The `mark` workload on dumpster (rules in [`super`]), written as its
//! docs write it.
//!
//! - `unsync::Gc` (the thread-local collector, which the docs recommend
//!   when nothing crosses threads) of a `#[derive(Trace)]` node with its
//!   children in `RefCell`s and two `u64` words; the children are stored
//!   after allocation with `*node.left.borrow_mut() = Some(child.clone())`.
//! - The temporary array is a `Vec<Option<Gc<Node>>>`; the tree is then
//!   held by one `Gc` to node 0. Default collect condition.
//! - dumpster counts references and collects cycles: `unsync::collect()`
//!   examines the allocations whose count dropped since the last
//!   collection (each is traced to decide whether something outside the
//!   heap still reaches it). Dropping the array decrements every node's
//!   count once — making all `N` nodes candidates — and the collection
//!   right after it is the one that traces the whole tree, so it is the
//!   measured one and no preliminary collection runs. (With the default
//!   condition — more drops since the last collection than `Gc`s alive —
//!   dropping the array's `N` handles out of the `2N` alive does not
//!   trigger one by itself.) There is no separate mark time, no heap size
//!   and no collection count in the API.
//! - One thread (`--threads 1` only): dumpster collects on the thread
//!   that asks.

use super::{Collected, MarkPeer, children};
use ::dumpster::Trace;
use ::dumpster::unsync::{Gc, collect};
use std::cell::RefCell;

#[derive(Trace)]
struct Node {
    left: RefCell<Option<Gc<Node>>>,
    right: RefCell<Option<Gc<Node>>>,
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
                left: RefCell::new(None),
                right: RefCell::new(None),
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

    fn preliminary(&self) -> bool {
        false
    }

    fn collect(&mut self) {
        collect();
    }

    fn collected(&mut self) -> Collected {
        Collected::default()
    }

    fn sum(&mut self) -> u64 {
        self.root.as_ref().map_or(0, |r| sum(r))
    }
}

//! The three tree implementations of binary-trees — spanheap `Gc`,
//! `Box`, `Rc` — shared by the example (`binary_trees.rs`) and the
//! criterion bench (`runtime/benches/binary_trees.rs`, through `#[path]`),
//! so both measure the same code.

use spanheap::{Gc, Scope, Trace};
use std::rc::Rc;

#[derive(Trace)]
pub struct Node<'gc> {
    left: Option<Gc<'gc, Node<'gc>>>,
    right: Option<Gc<'gc, Node<'gc>>>,
}

pub fn gc_tree<'gc>(cx: &'gc Scope<'_>, depth: u32) -> Gc<'gc, Node<'gc>> {
    let node = if depth == 0 {
        Node {
            left: None,
            right: None,
        }
    } else {
        Node {
            left: Some(gc_tree(cx, depth - 1)),
            right: Some(gc_tree(cx, depth - 1)),
        }
    };
    cx.alloc(node).expect("spanheap allocation failed")
}

pub fn gc_check(n: &Node<'_>) -> u64 {
    1 + match (n.left, n.right) {
        (Some(l), Some(r)) => gc_check(&l) + gc_check(&r),
        _ => 0,
    }
}

pub struct BoxNode {
    left: Option<Box<BoxNode>>,
    right: Option<Box<BoxNode>>,
}

pub fn box_tree(depth: u32) -> Box<BoxNode> {
    if depth == 0 {
        Box::new(BoxNode {
            left: None,
            right: None,
        })
    } else {
        Box::new(BoxNode {
            left: Some(box_tree(depth - 1)),
            right: Some(box_tree(depth - 1)),
        })
    }
}

pub fn box_check(n: &BoxNode) -> u64 {
    1 + match (&n.left, &n.right) {
        (Some(l), Some(r)) => box_check(l) + box_check(r),
        _ => 0,
    }
}

pub struct RcNode {
    left: Option<Rc<RcNode>>,
    right: Option<Rc<RcNode>>,
}

pub fn rc_tree(depth: u32) -> Rc<RcNode> {
    if depth == 0 {
        Rc::new(RcNode {
            left: None,
            right: None,
        })
    } else {
        Rc::new(RcNode {
            left: Some(rc_tree(depth - 1)),
            right: Some(rc_tree(depth - 1)),
        })
    }
}

pub fn rc_check(n: &RcNode) -> u64 {
    1 + match (&n.left, &n.right) {
        (Some(l), Some(r)) => rc_check(l) + rc_check(r),
        _ => 0,
    }
}

/// One way of building trees.
pub trait Trees {
    /// A tree that outlives the iteration loop.
    type LongLived;
    /// Builds a tree of `depth`, checks it, drops it; returns the check.
    fn build_check(&mut self, depth: u32) -> u64;
    /// Builds the long-lived tree.
    fn build_long(&mut self, depth: u32) -> Self::LongLived;
    /// Checks the long-lived tree.
    fn check_long(&mut self, t: &Self::LongLived) -> u64;
}

/// `Box` on the system allocator.
pub struct Boxed;

impl Trees for Boxed {
    type LongLived = Box<BoxNode>;
    fn build_check(&mut self, depth: u32) -> u64 {
        box_check(&box_tree(depth))
    }
    fn build_long(&mut self, depth: u32) -> Box<BoxNode> {
        box_tree(depth)
    }
    fn check_long(&mut self, t: &Box<BoxNode>) -> u64 {
        box_check(t)
    }
}

/// `Rc`.
pub struct Counted;

impl Trees for Counted {
    type LongLived = Rc<RcNode>;
    fn build_check(&mut self, depth: u32) -> u64 {
        rc_check(&rc_tree(depth))
    }
    fn build_long(&mut self, depth: u32) -> Rc<RcNode> {
        rc_tree(depth)
    }
    fn check_long(&mut self, t: &Rc<RcNode>) -> u64 {
        rc_check(t)
    }
}

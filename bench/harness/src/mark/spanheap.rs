//! The `mark` workload on spanheap (rules in [`super`]).
//!
//! - One [`Heap`] built with `Heap::builder().mark_workers(W)`, otherwise
//!   the defaults (GOGC=100, background sweeping), and one [`Mutator`].
//! - A node is `{left, right: GcCell<Option<Gc<Node>>>, value, pad: u64}`:
//!   32 bytes of payload; it holds pointers, so it gets spanheap's 8-byte
//!   header (a 40-byte object in the 48-byte size class).
//! - The temporary array is a GC object holding a `Vec` of `GcCell` slots
//!   (as the alloc ring of `crate::peers::spanheap`), held by a [`Root`].
//!   The allocation and linking loops run inside one scope each, with a
//!   `Scope::safepoint()` every [`SAFEPOINT_EVERY`] nodes so that the
//!   collections the build triggers can finish. The children are stored
//!   with `GcCell::set`, the write barrier. Then the root node gets a
//!   `Root` of its own and the array's `Root` is dropped.
//! - Collections: `Heap::collect()` (Go's `runtime.GC()`: a full cycle,
//!   waited for), outside any scope. `mark_ms` is `GcStats::last_mark`,
//!   the wall time of the cycle's (concurrent) mark phase; `heap_bytes`
//!   is `GcStats::heap_marked`, the bytes it marked, headers included;
//!   `gc_cycles` is `GcStats::num_gc`.

use super::{Collected, MarkPeer, children};
use ::spanheap::{Gc, GcCell, Heap, Mutator, Rebrand, Root, Scope, Trace};

/// Nodes between two safepoints of the build loops.
const SAFEPOINT_EVERY: usize = 1024;

type Link<'gc> = GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>;

#[derive(Trace)]
struct Node<'gc> {
    left: Link<'gc>,
    right: Link<'gc>,
    value: u64,
    /// Part of the 32-byte payload; never read.
    #[allow(dead_code)]
    pad: u64,
}

/// The temporary array of node handles, indexed by node number.
#[derive(Trace)]
struct Handles<'gc> {
    slots: Vec<Link<'gc>>,
}

/// Allocates `value`; an allocation failure (out of memory) ends the run.
#[inline(always)]
fn new<'gc, T>(cx: &'gc Scope<'_>, value: T) -> Gc<'gc, T>
where
    T: Trace + Send + Rebrand<At<'gc> = T> + 'gc,
{
    cx.alloc(value).expect("spanheap allocation failed")
}

/// A spanheap heap holding the tree.
pub struct Tree {
    heap: Heap,
    m: Mutator,
    root: Option<Root<Node<'static>>>,
}

impl Tree {
    /// A heap marked by `workers` workers.
    pub fn new(workers: usize) -> Self {
        let heap = Heap::builder()
            .mark_workers(workers)
            .build()
            .expect("spanheap: cannot build a heap");
        let m = heap.mutator();
        Tree {
            heap,
            m,
            root: None,
        }
    }
}

/// The sum of `value` over the subtree of `node`.
fn sum(node: Gc<'_, Node<'_>>) -> u64 {
    let mut s = node.value;
    for c in [node.left.get(), node.right.get()].into_iter().flatten() {
        s += sum(c);
    }
    s
}

impl MarkPeer for Tree {
    fn build(&mut self, order: &[u32]) {
        let n = order.len();
        let handles: Root<Handles<'static>> = self.m.scope(|cx| {
            let slots = (0..n).map(|_| GcCell::new(None)).collect();
            cx.root(new(cx, Handles { slots }))
        });
        // Step 2: allocate in `order`.
        self.m.scope(|cx| {
            for chunk in order.chunks(SAFEPOINT_EVERY) {
                let h = Gc::get_ref(handles.get(cx));
                for &k in chunk {
                    let node = new(
                        cx,
                        Node {
                            left: GcCell::new(None),
                            right: GcCell::new(None),
                            value: u64::from(k),
                            pad: 0,
                        },
                    );
                    h.slots[k as usize].set(cx, Some(node));
                }
                cx.safepoint();
            }
        });
        // Step 3: link.
        self.m.scope(|cx| {
            let mut start = 0;
            while start < n {
                let end = (start + SAFEPOINT_EVERY).min(n);
                let h = Gc::get_ref(handles.get(cx));
                for k in start..end {
                    let Some(node) = h.slots[k].get() else {
                        continue;
                    };
                    let (l, r) = children(k, n);
                    node.left.set(cx, l.and_then(|l| h.slots[l].get()));
                    node.right.set(cx, r.and_then(|r| h.slots[r].get()));
                }
                cx.safepoint();
                start = end;
            }
        });
        // Step 4: only the root stays rooted.
        self.root = self.m.scope(|cx| {
            let h = Gc::get_ref(handles.get(cx));
            h.slots.first().and_then(|s| s.get()).map(|r| cx.root(r))
        });
        drop(handles);
    }

    fn collect(&mut self) {
        self.heap.collect();
    }

    fn collected(&mut self) -> Collected {
        let st = self.heap.stats();
        Collected {
            mark: Some(st.last_mark),
            heap_bytes: Some(st.heap_marked),
            gc_cycles: Some(st.num_gc),
        }
    }

    fn sum(&mut self) -> u64 {
        let Some(root) = &self.root else { return 0 };
        self.m.scope(|cx| sum(root.get(cx)))
    }
}

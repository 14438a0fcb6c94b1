// Property: storing into a `GcCell` needs the scope (to run the write
// barrier); there is no `set` without it.
use spanheap::{Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let a = cx
            .alloc(Node {
                next: GcCell::new(None),
            })
            .unwrap();
        let b = cx
            .alloc(Node {
                next: GcCell::new(None),
            })
            .unwrap();
        a.next.set(Some(b));
    });
}

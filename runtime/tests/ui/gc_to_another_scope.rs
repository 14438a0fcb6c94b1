// Property: a `Gc` branded by one scope cannot be stored into an object of
// another scope (here of another heap), in either direction: the `'gc`
// brand is invariant and the inner scope's borrow is higher-ranked, so
// the two brands can never be unified.
use spanheap::{Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let h1 = Heap::new().unwrap();
    let h2 = Heap::new().unwrap();
    let mut m1 = h1.mutator();
    let mut m2 = h2.mutator();

    // Outer pointer into an inner object, with the inner scope.
    m1.scope(|cx1| {
        let a = cx1
            .alloc(Node {
                next: GcCell::new(None),
            })
            .unwrap();
        m2.scope(|cx2| {
            let b = cx2
                .alloc(Node {
                    next: GcCell::new(None),
                })
                .unwrap();
            b.next.set(cx2, Some(a));
        });
    });

    // Inner pointer into an outer object, with the inner scope.
    m1.scope(|cx1| {
        let a = cx1
            .alloc(Node {
                next: GcCell::new(None),
            })
            .unwrap();
        m2.scope(|cx2| {
            let b = cx2
                .alloc(Node {
                    next: GcCell::new(None),
                })
                .unwrap();
            a.next.set(cx2, Some(b));
        });
    });

    // Inner pointer into an outer object, with the outer scope.
    m1.scope(|cx1| {
        let a = cx1
            .alloc(Node {
                next: GcCell::new(None),
            })
            .unwrap();
        m2.scope(|cx2| {
            let b = cx2
                .alloc(Node {
                    next: GcCell::new(None),
                })
                .unwrap();
            a.next.set(cx1, Some(b));
        });
    });
}

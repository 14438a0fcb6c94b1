// A pointer of one heap's scope, carried by a scoped thread into a scope of
// another heap, cannot be stored in an object of that heap: `Scope::alloc`
// requires the value's brand to be the allocating scope's own borrow
// (`T: Rebrand<At<'gc> = T>`). (Found by review: before that bound, this
// compiled and read freed memory.)
use spanheap::{Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    val: u64,
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let h1 = Heap::new().unwrap();
    let h2 = Heap::new().unwrap();
    let mut m1 = h1.mutator();
    m1.scope(|cx1| {
        let a = cx1.alloc(Node { val: 42, next: GcCell::new(None) }).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut m2 = h2.mutator();
                m2.scope(|cx2| {
                    let b = cx2
                        .alloc(Node { val: 1, next: GcCell::new(Some(a)) })
                        .unwrap();
                    let _ = cx2.root(b);
                })
            });
        });
    });
}

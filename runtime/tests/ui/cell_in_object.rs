// Property: a `std::cell::Cell` holding a `Gc` cannot be part of a traced
// object (it would allow stores without the write barrier): `Trace` is
// implemented only for `Cell<T: 'static>`.
use spanheap::{Gc, Heap, Trace};

#[derive(Trace)]
struct S<'gc> {
    c: std::cell::Cell<Option<Gc<'gc, u32>>>,
}

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let x = cx.alloc(1u32).unwrap();
        let _s = cx
            .alloc(S {
                c: std::cell::Cell::new(Some(x)),
            })
            .unwrap();
    });
}

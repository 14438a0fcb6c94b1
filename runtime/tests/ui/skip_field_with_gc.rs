// Property: a `#[trace(skip)]` field must be `'static`, so it cannot hold
// a `Gc` that the collector would then not see.
use spanheap::{Gc, Heap, Trace};

#[derive(Trace)]
struct S<'gc> {
    #[trace(skip)]
    p: Option<Gc<'gc, u32>>,
}

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let x = cx.alloc(1u32).unwrap();
        let _s = cx.alloc(S { p: Some(x) }).unwrap();
    });
}

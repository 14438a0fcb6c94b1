// Property: a `Root` can move to another thread only if its object's type
// is `Send + Sync` (the other thread could read the object through it);
// here the object holds a `Cell`, which is not `Sync`.
use spanheap::{Heap, Trace};

#[derive(Trace)]
struct S {
    c: std::cell::Cell<u32>,
}

fn drop_on_another_thread<T: Send + 'static>(v: T) {
    std::thread::spawn(move || drop(v)).join().unwrap();
}

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    let root = m.scope(|cx| {
        let s = cx
            .alloc(S {
                c: std::cell::Cell::new(1),
            })
            .unwrap();
        cx.root(s)
    });
    drop_on_another_thread(root);
}

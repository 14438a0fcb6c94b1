// Property: a `Gc` cannot leave its scope by being stored in a variable
// declared outside the scope closure.
use spanheap::{Gc, Heap};

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    let mut outside: Option<Gc<'_, u64>> = None;
    m.scope(|cx| {
        outside = Some(cx.alloc(1u64).unwrap());
    });
    println!("{}", *outside.unwrap());
}

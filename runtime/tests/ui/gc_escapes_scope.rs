// Property: a `Gc` cannot be returned out of `Mutator::scope` (its brand
// is a borrow of the scope, which ends when the closure returns).
use spanheap::{Gc, Heap};

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    let escaped: Gc<'_, u64> = m.scope(|cx| cx.alloc(1u64).unwrap());
    println!("{}", *escaped);
}

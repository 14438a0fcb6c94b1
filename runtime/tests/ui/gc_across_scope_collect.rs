// Property: an unrooted `Gc` cannot be used after `Scope::collect` (a full
// collection runs there; `collect` takes the scope by `&mut`, which
// conflicts with the shared borrow the `Gc` holds).
use spanheap::Heap;

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let a = cx.alloc(1u64).unwrap();
        cx.collect();
        assert_eq!(*a, 1);
    });
}

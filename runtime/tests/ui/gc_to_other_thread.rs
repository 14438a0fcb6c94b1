// Property: a `Gc` cannot be moved to a spawned thread (`thread::spawn`
// needs `'static`, and a `Gc` borrows its scope).
use spanheap::Heap;

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let g = cx.alloc(1u64).unwrap();
        std::thread::spawn(move || {
            let _ = *g;
        });
    });
}

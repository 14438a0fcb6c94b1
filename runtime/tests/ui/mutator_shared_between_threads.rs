// Property: a `Mutator` is one thread's allocation context: it may move
// to another thread (`Send`) but not be shared by two at once (`!Sync`).
use spanheap::Heap;

fn main() {
    let heap = Heap::new().unwrap();
    let m = heap.mutator();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = m.heap();
        });
        let _ = m.heap();
    });
}

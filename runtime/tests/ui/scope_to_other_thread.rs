// Property: a `Scope` belongs to the thread that entered it (the
// collector tracks scopes per thread): it cannot be used from another
// thread, not even a scoped one that the scope outlives (`Scope` is
// neither `Send` nor `Sync`).
use spanheap::Heap;

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = cx.alloc(1u64);
            });
        });
    });
}

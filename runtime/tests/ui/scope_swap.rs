// Property: the scopes of two nested mutators cannot be swapped (each
// scope's lifetime is higher-ranked in its closure, so the two `Scope`
// types never unify); otherwise each `Gc` brand would name the wrong scope.
use spanheap::Heap;

fn main() {
    let heap = Heap::new().unwrap();
    let mut m1 = heap.mutator();
    let mut m2 = heap.mutator();
    m1.scope(|cx1| {
        m2.scope(|cx2| {
            std::mem::swap(cx1, cx2);
        });
    });
}

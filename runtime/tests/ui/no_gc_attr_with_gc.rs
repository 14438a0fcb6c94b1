// Since Scope::alloc requires Rebrand, a no_rebrand type is refused there first;
// the skipped field's `'static bound (see skip_field_with_gc.rs) is the second line of defence.
// Property: `#[trace(no_gc)]` (nothing traced, objects never scanned)
// requires the type to be `'static`, so it cannot be used on a type that
// holds a scope's `Gc`.
use spanheap::{Gc, Heap, Trace};

#[derive(Trace)]
#[trace(no_gc, no_rebrand)]
struct S<'gc> {
    p: Gc<'gc, u32>,
}

fn main() {
    let heap = Heap::new().unwrap();
    let mut m = heap.mutator();
    m.scope(|cx| {
        let x = cx.alloc(1u32).unwrap();
        let _s = cx.alloc(S { p: x }).unwrap();
    });
}

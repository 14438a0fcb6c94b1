// Since Scope::alloc requires Rebrand, a no_rebrand type is refused there first;
// the skipped field's `'static bound (see skip_field_with_gc.rs) is the second line of defence.
// Property: a `#[trace(skip)]` field must be `'static` even when no
// `Rebrand` impl is derived: the `Trace` impl exists only for `S<'static>`,
// so an `S` holding a scope's `Gc` cannot be allocated.
use spanheap::{Gc, Heap, Trace};

#[derive(Trace)]
#[trace(no_rebrand)]
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

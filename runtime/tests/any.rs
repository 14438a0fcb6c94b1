//! `GcAny`: heterogeneous values kept alive through collections, checked
//! downcasts, branded types.

use spanheap::{Gc, GcAny, GcCell, GcRefCell, Heap, Root, Trace};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Trace)]
struct Pair<'gc> {
    left: GcCell<'gc, Option<Gc<'gc, Pair<'gc>>>>,
    tag: u32,
}

#[derive(Trace)]
struct Bag<'gc> {
    items: GcRefCell<'gc, Vec<GcAny<'gc>>>,
}

/// Counts drops.
struct Tally(Arc<AtomicUsize>);
impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
// SAFETY: no GC pointer inside.
unsafe impl Trace for Tally {
    const NO_GC: bool = true;
    fn trace(&self, _t: &mut spanheap::Tracer<'_>) {}
}
// SAFETY: no lifetime.
unsafe impl spanheap::Rebrand for Tally {
    type At<'gc> = Tally;
}

#[test]
fn mixed_values_survive_and_downcast() {
    let heap = Heap::builder().background_sweep(false).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = heap.mutator();
    let bag: Root<Bag<'static>> = m.scope(|cx| {
        let inner = cx
            .alloc(Pair {
                left: GcCell::new(None),
                tag: 1,
            })
            .unwrap();
        let outer = cx
            .alloc(Pair {
                left: GcCell::new(Some(inner)),
                tag: 2,
            })
            .unwrap();
        let items = vec![
            GcAny::from(cx.alloc(7u64).unwrap()),
            cx.alloc(String::from("seven")).unwrap().into(),
            outer.into(),
            cx.alloc(Tally(drops.clone())).unwrap().into(),
        ];
        cx.root(
            cx.alloc(Bag {
                items: GcRefCell::new(items),
            })
            .unwrap(),
        )
    });
    // Garbage of every kind in between.
    m.scope(|cx| {
        for i in 0..10_000u64 {
            let _ = cx.alloc(i).unwrap();
            let _ = cx.alloc(Tally(drops.clone())).unwrap();
        }
    });
    heap.collect();
    heap.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 10_000, "the garbage tallies");
    m.scope(|cx| {
        let bag = bag.get(cx);
        let items = bag.items.borrow();
        assert_eq!(*items[0].downcast::<u64>().unwrap(), 7);
        assert!(items[0].downcast::<u32>().is_none());
        assert!(items[0].downcast::<String>().is_none());
        assert_eq!(items[1].downcast::<String>().unwrap().as_str(), "seven");
        assert!(items[2].is::<Pair<'_>>());
        let outer = items[2].downcast::<Pair<'_>>().unwrap();
        assert_eq!(outer.tag, 2);
        assert_eq!(
            outer.left.get().map(|p| p.tag),
            Some(1),
            "reachable through a GcAny"
        );
        assert!(items[3].is::<Tally>());
        assert!(
            items[2].type_name().ends_with("Pair<'_>"),
            "{}",
            items[2].type_name()
        );
        assert!(GcAny::ptr_eq(items[0], items[0]));
        assert!(!GcAny::ptr_eq(items[0], items[1]));
    });
    // Dropping the bag frees everything in it, once.
    drop(bag);
    heap.collect();
    heap.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 10_001);
}

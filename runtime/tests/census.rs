//! `Heap::census`: reachable objects counted by type, garbage and
//! stack-only objects left out, while another thread keeps mutating in a
//! scope.

use spanheap::{CENSUS_PLAIN_DATA, Gc, GcCell, GcRefCell, Heap, Root, Trace};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Trace)]
struct Link<'gc> {
    val: u64,
    next: GcCell<'gc, Option<Gc<'gc, Link<'gc>>>>,
}

#[derive(Trace)]
struct Bag<'gc> {
    items: GcRefCell<'gc, Vec<Gc<'gc, u64>>>,
}

const LINK: &str = "census::Link<'_>";
const BAG: &str = "census::Bag<'_>";

/// A rooted chain of `n` links.
fn chain(heap: &Heap, n: u64) -> Root<Link<'static>> {
    let mut m = heap.mutator();
    m.scope(|cx| {
        let mut head: Option<Gc<'_, Link<'_>>> = None;
        for val in 0..n {
            head = Some(
                cx.alloc(Link {
                    val,
                    next: GcCell::new(head),
                })
                .unwrap(),
            );
        }
        cx.root(head.unwrap())
    })
}

#[test]
fn counts_reachable_objects_by_type() {
    let heap = Heap::builder().build().unwrap();
    let keep = chain(&heap, 100);
    let garbage = chain(&heap, 50);
    drop(garbage);
    let mut m = heap.mutator();
    let bag = m.scope(|cx| {
        let items = (0..7u64).map(|i| cx.alloc(i).unwrap()).collect();
        let b = cx
            .alloc(Bag {
                items: GcRefCell::new(items),
            })
            .unwrap();
        cx.root(b)
    });
    let c = heap.census();
    let link = c.get(LINK).expect("links are live");
    assert_eq!(link.objects, 100, "{c}");
    assert!(link.bytes >= 100 * 24, "{c}");
    assert_eq!(c.get(BAG).map(|e| e.objects), Some(1), "{c}");
    // The seven u64s have no header; they may share tiny blocks.
    let plain = c.get(CENSUS_PLAIN_DATA).expect("plain data is counted");
    assert!((1..=7).contains(&plain.objects), "{c}");
    assert_eq!(
        c.objects(),
        c.entries.iter().map(|e| e.objects).sum::<u64>()
    );
    // Largest first.
    assert!(
        c.entries.windows(2).all(|w| w[0].bytes >= w[1].bytes),
        "{c}"
    );

    // Unrooting the chain empties its entry at the next census.
    drop(keep);
    let c2 = heap.census();
    assert!(c2.get(LINK).is_none(), "{c2}");
    assert!(c2.cycle > c.cycle);
    m.scope(|cx| assert_eq!(bag.get(cx).items.borrow().len(), 7));
}

#[test]
fn census_while_another_thread_mutates() {
    let heap = Heap::builder().build().unwrap();
    let keep = chain(&heap, 10);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = heap.clone();
        let stop = &stop;
        s.spawn(move || {
            let mut m = h.mutator();
            m.scope(|cx| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Temporaries: reachable only from this stack.
                    let _ = cx.alloc(Link {
                        val: n,
                        next: GcCell::new(None),
                    });
                    n += 1;
                    if n.is_multiple_of(64) {
                        cx.safepoint();
                    }
                }
            });
        });
        // Stops the other thread also when an assertion fails.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(stop);
        for _ in 0..5 {
            let c = heap.census();
            // The ten rooted links are always counted; the other thread's
            // temporaries are not reachable from a root.
            assert_eq!(c.get(LINK).map(|e| e.objects), Some(10), "{c}");
        }
    });
    drop(keep);
}

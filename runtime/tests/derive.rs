//! Behaviour of `#[derive(Trace)]`: the `NO_GC` it computes, which fields
//! its `trace` reports (observed directly with a recording `Tracer`, and
//! end to end through collections and `Weak`s), its `Rebrand` impl (a
//! rooted value read back in another scope), and the container and field
//! attributes (`skip`, `gc`, `no_gc`, `no_rebrand`).

// Several fields exist only to be skipped, dropped or left untraced.
#![allow(dead_code)]

use spanheap::{Gc, GcCell, GcRefCell, Heap, Rebrand, Root, Scope, Trace, Tracer, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------
// Helpers.

/// A heap whose sweeping happens only in allocation and at the next
/// cycle, so a test knows when `Drop` has run: after two `collect()`s,
/// everything unreachable at the first one has been swept.
fn heap() -> Heap {
    Heap::builder().background_sweep(false).build().unwrap()
}

/// Two collections: the second finishes the first one's sweep.
fn settle(h: &Heap) {
    h.collect();
    h.collect();
}

/// A noscan object big enough (32 bytes) to get a slot of its own (tiny
/// objects, under 16 bytes, share blocks, so one could be kept alive by a
/// neighbour and a `Weak` to it would not show that it is garbage).
#[derive(Trace, Debug, PartialEq)]
struct Leaf {
    val: u64,
    pad: [u64; 3],
}

fn leaf(val: u64) -> Leaf {
    Leaf { val, pad: [0; 3] }
}

/// The addresses `v.trace` reports, sorted.
fn traced<T: Trace>(cx: &Scope<'_>, v: &T) -> Vec<usize> {
    let heap = cx.heap();
    let mut r = Vec::new();
    let mut t = Tracer::recorder_into(heap.collector().heap(), &mut r);
    v.trace(&mut t);
    drop(t);
    r.sort_unstable();
    r
}

/// The addresses of `gcs`, sorted.
fn addrs<T>(gcs: &[Gc<'_, T>]) -> Vec<usize> {
    let mut r: Vec<usize> = gcs.iter().map(|g| Gc::as_ptr(*g) as usize).collect();
    r.sort_unstable();
    r
}

/// Not `Trace`, and counts its drops: only usable in a skipped field or
/// a `#[trace(no_gc)]` type.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Not `Trace`, no drop glue.
struct Opaque(u64);

// ---------------------------------------------------------------------
// Types under test.

#[derive(Trace)]
struct Plain {
    a: u32,
    b: String,
    c: Vec<(u8, Option<i64>)>,
}

#[derive(Trace)]
struct WithGc<'gc> {
    a: u32,
    g: Gc<'gc, Leaf>,
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct TuplePlain(u8, Vec<i64>);

#[derive(Trace)]
struct TupleGc<'gc>(u8, Option<Gc<'gc, Leaf>>, u16, Gc<'gc, Leaf>);

#[derive(Trace)]
enum EnumPlain {
    A,
    B(u32, String),
    C { x: Vec<u8> },
}

#[derive(Trace)]
enum Shape<'gc> {
    Unit,
    Tuple(u32, Gc<'gc, Leaf>, #[trace(skip)] Opaque),
    Named {
        a: Gc<'gc, Leaf>,
        n: u64,
        b: Option<Gc<'gc, Leaf>>,
        #[trace(skip)]
        opaque: Opaque,
    },
}

#[derive(Trace)]
enum Never {}

#[derive(Trace)]
struct Wrap<T> {
    x: T,
}

#[derive(Trace)]
struct Pair<'gc, T> {
    a: T,
    b: Gc<'gc, T>,
}

/// Bounds on the parameters: the derived `Rebrand` cannot restate them
/// for `T::At<'gc>`, so such a type needs `no_rebrand`.
#[derive(Trace)]
#[trace(no_rebrand)]
struct Bounded<T>
where
    T: Clone,
{
    x: Option<T>,
}

#[derive(Trace)]
struct Arr<'gc, const N: usize> {
    xs: [Option<Gc<'gc, Leaf>>; N],
}

/// Only skipped fields hold non-`Trace` values.
#[derive(Trace)]
struct Skipping<'gc> {
    leaf: Gc<'gc, Leaf>,
    #[trace(skip)]
    guard: DropCounter,
    #[trace(skip)]
    opaque: Opaque,
}

#[derive(Trace)]
struct SkipOnly {
    n: u32,
    #[trace(skip)]
    opaque: Opaque,
}

/// Recursive: `NO_GC` would be a cycle without `#[trace(gc)]`.
#[derive(Trace)]
#[trace(gc)]
struct Tree {
    kids: Vec<Tree>,
}

#[derive(Trace)]
#[trace(gc)]
struct BrandedTree<'gc> {
    leaf: Option<Gc<'gc, Leaf>>,
    kids: Vec<BrandedTree<'gc>>,
}

/// `#[trace(gc)]` on a type that has no pointer: forced scan.
#[derive(Trace)]
#[trace(gc)]
struct ForcedGc {
    n: u64,
}

#[derive(Trace)]
#[trace(no_gc)]
struct NoGc {
    guard: DropCounter,
    opaque: Opaque,
    n: u64,
}

/// Generic skipped field: needs `no_rebrand` (documented). The derive
/// bounds every type parameter by `Trace`, so `T` must be `Trace` (and
/// `'static`) even though the field is skipped.
#[derive(Trace)]
#[trace(no_rebrand)]
struct SkipGeneric<T> {
    #[trace(skip)]
    x: T,
    n: u32,
}

/// Two brands: needs `no_rebrand` (documented).
#[derive(Trace)]
#[trace(no_rebrand)]
struct TwoBrands<'a, 'b> {
    x: Gc<'a, Leaf>,
    y: GcCell<'b, Option<Gc<'b, Leaf>>>,
}

#[derive(Trace)]
struct Node<'gc> {
    val: u64,
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
    list: GcRefCell<'gc, Vec<Gc<'gc, Leaf>>>,
}

// ---------------------------------------------------------------------
// NO_GC.

#[test]
fn no_gc_is_the_and_of_the_traced_fields() {
    const {
        // Structs, unit and tuple structs.
        assert!(<Plain as Trace>::NO_GC);
        assert!(!<WithGc<'static> as Trace>::NO_GC);
        assert!(<Unit as Trace>::NO_GC);
        assert!(<TuplePlain as Trace>::NO_GC);
        assert!(!<TupleGc<'static> as Trace>::NO_GC);
        assert!(<Leaf as Trace>::NO_GC);
        // Enums: over every variant; no variant at all is no pointer.
        assert!(<EnumPlain as Trace>::NO_GC);
        assert!(!<Shape<'static> as Trace>::NO_GC);
        assert!(<Never as Trace>::NO_GC);
        // Generics follow their arguments.
        assert!(<Wrap<u32> as Trace>::NO_GC);
        assert!(<Wrap<Wrap<String>> as Trace>::NO_GC);
        assert!(!<Wrap<Gc<'static, u32>> as Trace>::NO_GC);
        assert!(!<Wrap<Vec<Option<Gc<'static, u32>>>> as Trace>::NO_GC);
        assert!(!<Pair<'static, u64> as Trace>::NO_GC);
        assert!(<Bounded<u8> as Trace>::NO_GC);
        assert!(!<Bounded<Gc<'static, u8>> as Trace>::NO_GC);
        assert!(!<Arr<'static, 3> as Trace>::NO_GC);
        // Skipped fields do not count (they are 'static).
        assert!(<SkipOnly as Trace>::NO_GC);
        assert!(!<Skipping<'static> as Trace>::NO_GC);
        assert!(<SkipGeneric<Vec<u8>> as Trace>::NO_GC);
        // Container attributes.
        assert!(!<Tree as Trace>::NO_GC);
        assert!(!<BrandedTree<'static> as Trace>::NO_GC);
        assert!(!<ForcedGc as Trace>::NO_GC);
        assert!(<NoGc as Trace>::NO_GC);
        assert!(!<TwoBrands<'static, 'static> as Trace>::NO_GC);
        assert!(!<Node<'static> as Trace>::NO_GC);
    }
}

#[test]
fn rebrand_renames_the_brand_only() {
    fn same<A: 'static, B: 'static>() -> bool {
        std::any::TypeId::of::<A>() == std::any::TypeId::of::<B>()
    }
    assert!(same::<<Plain as Rebrand>::At<'static>, Plain>());
    assert!(same::<
        <Shape<'static> as Rebrand>::At<'static>,
        Shape<'static>,
    >());
    assert!(same::<
        <Pair<'static, Gc<'static, Leaf>> as Rebrand>::At<'static>,
        Pair<'static, Gc<'static, Leaf>>,
    >());
    assert!(same::<
        <Arr<'static, 4> as Rebrand>::At<'static>,
        Arr<'static, 4>,
    >());
    assert!(same::<<Wrap<Vec<u8>> as Rebrand>::At<'static>, Wrap<Vec<u8>>>());
}

// ---------------------------------------------------------------------
// Which fields are traced (recording tracer).

#[test]
fn structs_trace_exactly_their_pointer_fields() {
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let l1 = cx.alloc(leaf(1)).unwrap();
        let l2 = cx.alloc(leaf(2)).unwrap();

        let w = WithGc { a: 7, g: l1 };
        assert_eq!(traced(cx, &w), addrs(&[l1]));

        let t = TupleGc(1, Some(l1), 2, l2);
        assert_eq!(traced(cx, &t), addrs(&[l1, l2]));
        let t = TupleGc(1, None, 2, l2);
        assert_eq!(traced(cx, &t), addrs(&[l2]));

        assert!(traced(cx, &Unit).is_empty());
        assert!(traced(cx, &TuplePlain(3, vec![1, 2])).is_empty());
        let p = Plain {
            a: 1,
            b: "x".into(),
            c: vec![(1, Some(2))],
        };
        assert!(traced(cx, &p).is_empty());

        let arr = Arr {
            xs: [Some(l1), None, Some(l2), Some(l1)],
        };
        let mut both = addrs(&[l1, l2, l1]);
        both.sort_unstable();
        assert_eq!(traced(cx, &arr), both);

        // Generic fields are traced through their own impl.
        assert_eq!(traced(cx, &Wrap { x: vec![l2, l1] }), addrs(&[l1, l2]));
        assert_eq!(
            traced(cx, &Bounded { x: Some(l2) }),
            addrs(&[l2]),
            "where clauses of the input are kept"
        );
    });
}

#[test]
fn enums_trace_the_fields_of_the_present_variant() {
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let l1 = cx.alloc(leaf(1)).unwrap();
        let l2 = cx.alloc(leaf(2)).unwrap();

        assert!(traced(cx, &Shape::Unit).is_empty());
        assert_eq!(traced(cx, &Shape::Tuple(5, l2, Opaque(0))), addrs(&[l2]));
        let named = Shape::Named {
            a: l1,
            n: 9,
            b: Some(l2),
            opaque: Opaque(0),
        };
        assert_eq!(traced(cx, &named), addrs(&[l1, l2]));
        let named = Shape::Named {
            a: l2,
            n: 9,
            b: None,
            opaque: Opaque(0),
        };
        assert_eq!(traced(cx, &named), addrs(&[l2]));

        assert!(traced(cx, &EnumPlain::A).is_empty());
        assert!(traced(cx, &EnumPlain::B(1, "s".into())).is_empty());
        assert!(traced(cx, &EnumPlain::C { x: vec![1] }).is_empty());
    });
}

#[test]
fn skipped_fields_and_no_gc_types_are_not_traced() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    m.scope(|cx| {
        let l1 = cx.alloc(leaf(1)).unwrap();
        let s = Skipping {
            leaf: l1,
            guard: DropCounter(drops.clone()),
            opaque: Opaque(3),
        };
        assert_eq!(traced(cx, &s), addrs(&[l1]));
        let n = NoGc {
            guard: DropCounter(drops.clone()),
            opaque: Opaque(1),
            n: 2,
        };
        assert!(traced(cx, &n).is_empty());
        let g = SkipGeneric { x: vec![1u8], n: 3 };
        assert!(traced(cx, &g).is_empty());
        assert!(traced(cx, &ForcedGc { n: 1 }).is_empty());
    });
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn recursive_types_with_trace_gc_trace_every_level() {
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let ls: Vec<_> = (0..4).map(|i| cx.alloc(leaf(i)).unwrap()).collect();
        let t = BrandedTree {
            leaf: Some(ls[0]),
            kids: vec![
                BrandedTree {
                    leaf: Some(ls[1]),
                    kids: vec![BrandedTree {
                        leaf: Some(ls[2]),
                        kids: vec![],
                    }],
                },
                BrandedTree {
                    leaf: None,
                    kids: vec![BrandedTree {
                        leaf: Some(ls[3]),
                        kids: vec![],
                    }],
                },
            ],
        };
        assert_eq!(traced(cx, &t), addrs(&ls));
        let plain = Tree {
            kids: vec![Tree { kids: vec![] }, Tree { kids: vec![] }],
        };
        assert!(traced(cx, &plain).is_empty());
    });
}

#[test]
fn two_brand_types_with_no_rebrand_are_traced() {
    // Without Rebrand such a type cannot be allocated on its own
    // (`Scope::alloc` pins the value's brand with `Rebrand<At<'gc> = T>`),
    // but it can be a field, or a value traced in place.
    let h = heap();
    let mut m = h.mutator();
    m.scope(|cx| {
        let l1 = cx.alloc(leaf(1)).unwrap();
        let l2 = cx.alloc(leaf(2)).unwrap();
        let t = TwoBrands {
            x: l1,
            y: GcCell::new(Some(l2)),
        };
        assert_eq!(traced(cx, &t), addrs(&[l1, l2]));
        t.y.set(cx, None);
        assert_eq!(traced(cx, &t), addrs(&[l1]));
    });
}

// ---------------------------------------------------------------------
// End to end: what the collector keeps through derived traces.

#[test]
fn objects_reachable_only_through_derived_fields_survive() {
    let h = heap();
    let mut m = h.mutator();
    type Handles = (
        Root<Shape<'static>>,
        Root<Shape<'static>>,
        Root<TupleGc<'static>>,
        Vec<Weak<Leaf>>,
        Weak<Leaf>,
    );
    let (r_named, r_tuple, r_tgc, weak, garbage): Handles = m.scope(|cx| {
        let ls: Vec<_> = (0..5).map(|i| cx.alloc(leaf(i)).unwrap()).collect();
        let named = cx
            .alloc(Shape::Named {
                a: ls[0],
                n: 1,
                b: Some(ls[1]),
                opaque: Opaque(0),
            })
            .unwrap();
        let tuple = cx.alloc(Shape::Tuple(2, ls[2], Opaque(0))).unwrap();
        let tgc = cx.alloc(TupleGc(0, Some(ls[3]), 0, ls[4])).unwrap();
        let g = cx.alloc(leaf(99)).unwrap();
        (
            cx.root(named),
            cx.root(tuple),
            cx.root(tgc),
            ls.iter().map(|l| cx.downgrade(*l)).collect(),
            cx.downgrade(g),
        )
    });
    settle(&h);
    // Churn so that freed slots would be reused.
    m.scope(|cx| {
        for i in 0..10_000 {
            cx.alloc(leaf(1000 + i)).unwrap();
        }
    });
    settle(&h);
    m.scope(|cx| {
        assert!(
            garbage.upgrade(cx).is_none(),
            "control leaf was not collected"
        );
        for (i, w) in weak.iter().enumerate() {
            let l = w
                .upgrade(cx)
                .unwrap_or_else(|| panic!("leaf {i} reachable through a traced field was freed"));
            assert_eq!(l.val, i as u64);
        }
        match &*r_named.get(cx) {
            Shape::Named { a, n, b, .. } => {
                assert_eq!((a.val, *n, b.unwrap().val), (0, 1, 1));
            }
            _ => panic!("wrong variant"),
        }
        match &*r_tuple.get(cx) {
            Shape::Tuple(n, l, _) => assert_eq!((*n, l.val), (2, 2)),
            _ => panic!("wrong variant"),
        }
        let t = r_tgc.get(cx);
        assert_eq!((t.1.unwrap().val, t.3.val), (3, 4));
    });
    drop((r_named, r_tuple, r_tgc));
    settle(&h);
    m.scope(|cx| {
        for w in &weak {
            assert!(w.upgrade(cx).is_none(), "leaf outlived its only referrer");
        }
    });
}

#[test]
fn cells_in_derived_types_are_traced() {
    let h = heap();
    let mut m = h.mutator();
    let (root, w_next, w_list, w_old) = m.scope(|cx| {
        let next = cx
            .alloc(Node {
                val: 2,
                next: GcCell::new(None),
                list: GcRefCell::new(vec![]),
            })
            .unwrap();
        let old = cx.alloc(leaf(7)).unwrap();
        let kept = cx.alloc(leaf(8)).unwrap();
        let n = cx
            .alloc(Node {
                val: 1,
                next: GcCell::new(None),
                list: GcRefCell::new(vec![old]),
            })
            .unwrap();
        n.next.set(cx, Some(next));
        *n.list.borrow_mut(cx) = vec![kept];
        (
            cx.root(n),
            cx.downgrade(next),
            cx.downgrade(kept),
            cx.downgrade(old),
        )
    });
    settle(&h);
    m.scope(|cx| {
        let n = root.get(cx);
        assert_eq!(n.next.get().unwrap().val, 2);
        assert_eq!(n.list.borrow()[0].val, 8);
        assert!(w_next.upgrade(cx).is_some());
        assert!(w_list.upgrade(cx).is_some());
        assert!(w_old.upgrade(cx).is_none(), "overwritten element survived");
    });
}

// ---------------------------------------------------------------------
// Rebrand: a rooted generic value read back in another scope.

#[test]
fn generic_pair_roots_and_rebrands() {
    let h = heap();
    let mut m = h.mutator();
    type Handles = (
        Root<Pair<'static, u64>>,
        Root<Pair<'static, Gc<'static, Leaf>>>,
        Weak<Leaf>,
        Weak<Gc<'static, Leaf>>,
    );
    let (r_num, r_ptr, w_a, w_b): Handles = m.scope(|cx| {
        let b = cx.alloc(6u64).unwrap();
        let num = cx.alloc(Pair { a: 5u64, b }).unwrap();
        let la = cx.alloc(leaf(10)).unwrap();
        let lb = cx.alloc(leaf(11)).unwrap();
        let bb = cx.alloc(lb).unwrap(); // a Gc<Gc<Leaf>>
        let ptr = cx.alloc(Pair { a: la, b: bb }).unwrap();
        let mut want = vec![Gc::as_ptr(la) as usize, Gc::as_ptr(bb) as usize];
        want.sort_unstable();
        assert_eq!(traced(cx, &*ptr), want);
        (
            cx.root(num),
            cx.root(ptr),
            cx.downgrade(la),
            cx.downgrade(bb),
        )
    });
    settle(&h);
    m.scope(|cx| {
        for i in 0..10_000u64 {
            cx.alloc(leaf(i)).unwrap();
            cx.alloc(i).unwrap();
        }
    });
    settle(&h);
    // A second mutator: a scope unrelated to the one that made the roots.
    let mut m2 = h.mutator();
    m2.scope(|cx| {
        let num: Gc<'_, Pair<'_, u64>> = r_num.get(cx);
        assert_eq!((num.a, *num.b), (5, 6));
        let ptr = r_ptr.get(cx);
        assert_eq!(ptr.a.val, 10);
        assert_eq!(ptr.b.val, 11);
        assert!(w_a.upgrade(cx).is_some());
        assert!(w_b.upgrade(cx).is_some());
        // Branded with this scope: can be stored into a new object here.
        let again = cx.alloc(Pair { a: ptr.a, b: ptr.b }).unwrap();
        assert_eq!(again.b.val, 11);
    });
    drop(r_ptr);
    settle(&h);
    m2.scope(|cx| {
        assert!(w_a.upgrade(cx).is_none());
        assert!(w_b.upgrade(cx).is_none());
        assert_eq!(*r_num.get(cx).b, 6);
    });
}

#[test]
fn const_generic_and_recursive_types_root_and_rebrand() {
    let h = heap();
    let mut m = h.mutator();
    let (r_arr, r_tree, r_plain, weak) = m.scope(|cx| {
        let ls: Vec<_> = (0..3).map(|i| cx.alloc(leaf(i)).unwrap()).collect();
        let arr = cx
            .alloc(Arr {
                xs: [Some(ls[0]), None, Some(ls[1])],
            })
            .unwrap();
        let tree = cx
            .alloc(BrandedTree {
                leaf: None,
                kids: vec![BrandedTree {
                    leaf: None,
                    kids: vec![BrandedTree {
                        leaf: Some(ls[2]),
                        kids: vec![],
                    }],
                }],
            })
            .unwrap();
        let plain = cx
            .alloc(Tree {
                kids: vec![Tree {
                    kids: vec![Tree { kids: vec![] }],
                }],
            })
            .unwrap();
        let weak: Vec<Weak<Leaf>> = ls.iter().map(|l| cx.downgrade(*l)).collect();
        (cx.root(arr), cx.root(tree), cx.root(plain), weak)
    });
    settle(&h);
    m.scope(|cx| {
        let arr: Gc<'_, Arr<'_, 3>> = r_arr.get(cx);
        assert_eq!(arr.xs[0].unwrap().val, 0);
        assert!(arr.xs[1].is_none());
        assert_eq!(arr.xs[2].unwrap().val, 1);
        let tree = r_tree.get(cx);
        assert_eq!(tree.kids[0].kids[0].leaf.unwrap().val, 2);
        assert_eq!(r_plain.get(cx).kids[0].kids.len(), 1);
        assert!(weak.iter().all(|w| w.upgrade(cx).is_some()));
    });
    drop((r_arr, r_tree));
    settle(&h);
    m.scope(|cx| assert!(weak.iter().all(|w| w.upgrade(cx).is_none())));
}

// ---------------------------------------------------------------------
// Drop of skipped fields and no_gc types.

#[test]
fn skipped_drop_field_drops_once_when_unreachable() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let (w_obj, w_leaf) = m.scope(|cx| {
        let l = cx.alloc(leaf(1)).unwrap();
        let s = cx
            .alloc(Skipping {
                leaf: l,
                guard: DropCounter(drops.clone()),
                opaque: Opaque(0),
            })
            .unwrap();
        (cx.downgrade(s), cx.downgrade(l))
    });
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    m.scope(|cx| {
        assert!(w_obj.upgrade(cx).is_none());
        assert!(w_leaf.upgrade(cx).is_none());
        for i in 0..1000 {
            cx.alloc(leaf(i)).unwrap();
        }
    });
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "Drop ran more than once");
}

#[test]
fn skipped_drop_field_does_not_drop_while_rooted() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let (root, w_leaf) = m.scope(|cx| {
        let l = cx.alloc(leaf(5)).unwrap();
        let s = cx
            .alloc(Skipping {
                leaf: l,
                guard: DropCounter(drops.clone()),
                opaque: Opaque(0),
            })
            .unwrap();
        (cx.root(s), cx.downgrade(l))
    });
    settle(&h);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    m.scope(|cx| {
        assert_eq!(root.get(cx).leaf.val, 5);
        assert!(
            w_leaf.upgrade(cx).is_some(),
            "traced field beside skipped ones"
        );
    });
    drop(root);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    m.scope(|cx| assert!(w_leaf.upgrade(cx).is_none()));
}

#[test]
fn no_gc_type_with_drop_field_drops_once() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let root = m.scope(|cx| {
        for i in 0..3 {
            cx.alloc(NoGc {
                guard: DropCounter(drops.clone()),
                opaque: Opaque(i),
                n: i,
            })
            .unwrap();
        }
        let kept = cx
            .alloc(NoGc {
                guard: DropCounter(drops.clone()),
                opaque: Opaque(9),
                n: 9,
            })
            .unwrap();
        cx.root(kept)
    });
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    m.scope(|cx| assert_eq!(root.get(cx).n, 9));
    drop(root);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    settle(&h);
    assert_eq!(drops.load(Ordering::SeqCst), 4, "Drop ran more than once");
}

#[test]
fn teardown_drops_skipped_fields_of_live_objects() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let h = heap();
        let mut m = h.mutator();
        let _root = m.scope(|cx| {
            let l = cx.alloc(leaf(1)).unwrap();
            let s = cx
                .alloc(Skipping {
                    leaf: l,
                    guard: DropCounter(drops.clone()),
                    opaque: Opaque(0),
                })
                .unwrap();
            cx.root(s)
        });
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

// Review follow-ups: a parameter used only in skipped fields needs neither
// Trace nor Rebrand (so the type can be allocated with a non-Trace T).
#[derive(Trace)]
struct SkipsGeneric<T> {
    #[trace(skip)]
    _x: T,
    n: u32,
}

struct NotTrace;

#[derive(Trace)]
struct Unbounded<'gc, T> {
    v: T,
    p: Option<Gc<'gc, u64>>,
}

#[test]
fn generic_parameters_are_bounded_only_as_needed() {
    const {
        assert!(<SkipsGeneric<NotTrace> as Trace>::NO_GC);
    }
    let h = heap();
    let mut m = h.mutator();
    let r = m.scope(|cx| {
        let x = cx.alloc(5u64).unwrap();
        let b = cx
            .alloc(Unbounded {
                v: String::from("s"),
                p: Some(x),
            })
            .unwrap();
        cx.alloc(SkipsGeneric { _x: NotTrace, n: 3 }).unwrap();
        cx.root(b)
    });
    h.collect();
    m.scope(|cx| {
        let b = r.get(cx);
        assert_eq!(b.v, "s");
        assert_eq!(*b.p.unwrap(), 5);
    });
}

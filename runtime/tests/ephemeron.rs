//! `EphemeronMap`: values live exactly as long as their keys are reachable
//! from elsewhere — through chains of entries, not through cycles via the
//! value — and entries vanish with their keys; also while another thread
//! mutates and collections run concurrently.

use spanheap::{EphemeronMap, Gc, Heap, Root};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "support/counted.rs"]
mod counted;
use counted::{Obj, obj};

type Map<'gc> = EphemeronMap<'gc, Obj<'gc>, Gc<'gc, Obj<'gc>>>;

/// Sweeping only in allocation and at the next cycle: after two
/// `collect()`s everything unreachable at the first has been dropped.
fn heap() -> Heap {
    Heap::builder().background_sweep(false).build().unwrap()
}

#[test]
fn values_live_while_keys_do() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let (map, k1): (Root<Map<'static>>, Root<Obj<'static>>) = m.scope(|cx| {
        let map = Map::new(cx).unwrap();
        let k1 = cx.alloc(obj(1, None, &drops)).unwrap();
        let k2 = cx.alloc(obj(2, None, &drops)).unwrap();
        // Values reachable only through the map.
        map.insert(cx, k1, cx.alloc(obj(10, None, &drops)).unwrap());
        map.insert(cx, k2, cx.alloc(obj(20, None, &drops)).unwrap());
        (cx.root(map), cx.root(k1))
    });
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2, "key 2 and its value");
    m.scope(|cx| {
        let map = map.get(cx);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(k1.get(cx)).map(|v| v.id), Some(10));
    });
    drop(k1);
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    m.scope(|cx| assert!(map.get(cx).is_empty()));
}

#[test]
fn a_value_pointing_at_its_key_does_not_keep_it() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let map: Root<Map<'static>> = m.scope(|cx| {
        let map = Map::new(cx).unwrap();
        let k = cx.alloc(obj(1, None, &drops)).unwrap();
        let v = cx.alloc(obj(10, Some(k), &drops)).unwrap();
        map.insert(cx, k, v);
        cx.root(map)
    });
    h.collect();
    h.collect();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "key and value, a cycle through the value"
    );
    m.scope(|cx| assert!(map.get(cx).is_empty()));
}

#[test]
fn chains_of_entries_reach_a_fixpoint() {
    // k1 -> v1 = k2, k2 -> v2 = k3, k3 -> v3: only k1 is rooted; the
    // entries must be followed in order (the map's own order is
    // arbitrary), over several passes.
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let (map, k1) = m.scope(|cx| {
        let map = Map::new(cx).unwrap();
        let mut keys = Vec::new();
        for i in 0..6 {
            keys.push(cx.alloc(obj(i, None, &drops)).unwrap());
        }
        for i in 0..5 {
            map.insert(cx, keys[i], keys[i + 1]);
        }
        let last = cx.alloc(obj(100, None, &drops)).unwrap();
        map.insert(cx, keys[5], last);
        (cx.root(map), cx.root(keys[0]))
    });
    for _ in 0..3 {
        h.collect();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    m.scope(|cx| {
        let map = map.get(cx);
        let mut k = k1.get(cx);
        let mut seen = vec![k.id];
        while let Some(v) = map.get(k) {
            seen.push(v.id);
            k = v;
        }
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 100]);
    });
    drop(k1);
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 7);
    m.scope(|cx| assert!(map.get(cx).is_empty()));
}

#[test]
fn remove_and_replace() {
    let h = heap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    m.scope(|cx| {
        let map = Map::new(cx).unwrap();
        let k = cx.alloc(obj(1, None, &drops)).unwrap();
        let a = cx.alloc(obj(2, None, &drops)).unwrap();
        let b = cx.alloc(obj(3, None, &drops)).unwrap();
        assert!(map.insert(cx, k, a).is_none());
        assert_eq!(map.insert(cx, k, b).map(|v| v.id), Some(2));
        assert!(map.contains_key(k));
        assert_eq!(map.remove(cx, k).map(|v| v.id), Some(3));
        assert!(!map.contains_key(k));
        assert!(map.remove(cx, k).is_none());
    });
    let s = h.stats();
    assert_eq!(s.weak_refs, 0, "key slots are released");
}

/// A map must not keep its own heap alive: once every handle is gone the
/// heap is torn down and the objects still in it are dropped, whether the
/// map is still reachable from a root or garbage not yet swept.
/// (Regression: the map held an `Arc` of its collector, so a heap that
/// held a map was never torn down — its objects never dropped, its arenas
/// never unmapped. Found by LeakSanitizer, `.ci/sanitizers.sh asan`.)
#[test]
fn a_heap_holding_a_map_is_torn_down_with_its_last_handle() {
    for keep_map_rooted_until_the_end in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = heap();
        let mut m = h.mutator();
        let (map, key) = m.scope(|cx| {
            let map = Map::new(cx).unwrap();
            let k = cx.alloc(obj(1, None, &drops)).unwrap();
            map.insert(cx, k, cx.alloc(obj(2, None, &drops)).unwrap());
            (cx.root(map), cx.root(k))
        });
        if !keep_map_rooted_until_the_end {
            drop(map);
            drop(key);
            h.collect();
            // The map is garbage now; the key and value went with it or
            // go at teardown.
            drop(h);
            drop(m);
        } else {
            drop(h);
            drop(m);
            drop(key);
            // The last handle of the heap: a root of the map itself.
            drop(map);
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "teardown dropped the key and value (map rooted to the end: {keep_map_rooted_until_the_end})"
        );
    }
}

/// One thread keeps keys rooted in a ring and inserts entries (values
/// reachable only through the map) while paced collections run; the
/// main thread checks that every rooted key's value is intact, and in
/// the end that everything is freed.
#[test]
fn concurrent_inserts_during_marks() {
    const N: u64 = 20_000;
    let h = Heap::builder().gc_percent(10).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = h.mutator();
    let map: Root<Map<'static>> = m.scope(|cx| cx.root(Map::new(cx).unwrap()));
    let keep: Vec<Root<Obj<'static>>> = std::thread::scope(|s| {
        let (h2, map2, drops2) = (h.clone(), &map, drops.clone());
        let t = s.spawn(move || {
            let mut m = h2.mutator();
            let mut keep = Vec::new();
            m.scope(|cx| {
                for i in 0..N {
                    let map = map2.get(cx);
                    let k = cx.alloc(obj(i, None, &drops2)).unwrap();
                    let v = cx.alloc(obj(i + 1_000_000, None, &drops2)).unwrap();
                    map.insert(cx, k, v);
                    if i % 8 == 0 {
                        keep.push(cx.root(k));
                    }
                    let _ = cx.alloc([0u64; 16]);
                    if i % 64 == 0 {
                        cx.safepoint();
                    }
                }
            });
            keep
        });
        t.join().unwrap()
    });
    h.collect();
    h.collect();
    m.scope(|cx| {
        let map = map.get(cx);
        for k in &keep {
            let k = k.get(cx);
            assert_eq!(
                map.get(k).map(|v| v.id),
                Some(k.id + 1_000_000),
                "key {}",
                k.id
            );
        }
        assert_eq!(map.len(), keep.len());
    });
    let kept = keep.len();
    // Everything not kept was freed (keys and values, 2 each).
    assert_eq!(drops.load(Ordering::SeqCst), 2 * (N as usize - kept));
    drop(keep);
    h.collect();
    h.collect();
    assert_eq!(drops.load(Ordering::SeqCst), 2 * N as usize);
    m.scope(|cx| assert!(map.get(cx).is_empty()));
}

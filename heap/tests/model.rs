//! Property test: random allocate / drop / collect sequences against a
//! shadow model of which objects are live.
//!
//! After every step: no two live objects overlap, every interior address
//! maps back to its object, live objects keep their contents, and the
//! heap's verifier (bitmaps vs allocCount, allocCache vs allocBits, span
//! lists vs sweepgen, page map, page accounting) passes.

mod common;

use common::{check, collect, fill};
use proptest::prelude::*;
use spanheap_heap::sync::Arc;
use spanheap_heap::{AllocRequest, HeapConfig, MCache, MHeap};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        size: usize,
        noscan: bool,
        align_shift: u8,
    },
    Drop(usize),
    Collect,
    SweepSome(u8),
    ReleaseCache,
    Scavenge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (1usize..64, any::<bool>(), 0u8..2).prop_map(|(size, noscan, a)| Op::Alloc { size, noscan, align_shift: a }),
        15 => (64usize..4096, any::<bool>(), 0u8..4).prop_map(|(size, noscan, a)| Op::Alloc { size, noscan, align_shift: a }),
        4 => (4096usize..40_000, any::<bool>(), 0u8..2).prop_map(|(size, noscan, a)| Op::Alloc { size, noscan, align_shift: a }),
        1 => (40_000usize..300_000, any::<bool>()).prop_map(|(size, noscan)| Op::Alloc { size, noscan, align_shift: 0 }),
        25 => any::<usize>().prop_map(Op::Drop),
        4 => Just(Op::Collect),
        3 => any::<u8>().prop_map(Op::SweepSome),
        2 => Just(Op::ReleaseCache),
        1 => Just(Op::Scavenge),
    ]
}

/// A live object in the shadow model: address -> (size, seed).
type Live = BTreeMap<usize, (usize, u64)>;

fn check_invariants(h: &MHeap, c: &MCache, live: &Live) -> Result<(), TestCaseError> {
    let mut end = 0usize;
    for (&a, &(n, seed)) in live {
        prop_assert!(a >= end, "live objects overlap at {:#x}", a);
        end = a + n;
        prop_assert!(check(a as *const u8, n, seed), "object {:#x} corrupted", a);
        for off in [0, n / 2, n - 1] {
            let o = h.find_object(a + off);
            prop_assert!(o.is_some(), "interior address of {:#x} not found", a);
            let o = o.unwrap();
            prop_assert!(o.base <= a && a + n <= o.base + o.span.elemsize());
        }
    }
    h.verify().map_err(TestCaseError::fail)?;
    c.verify().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn heap_matches_shadow_model(ops in proptest::collection::vec(op(), 1..300)) {
        let h = Arc::new(MHeap::new(HeapConfig { arena_size: 4 << 20, ..HeapConfig::default() }).unwrap());
        let mut c = MCache::new(h.clone());
        let mut live: Live = BTreeMap::new();
        let mut seed = 0u64;
        for op in ops {
            match op {
                Op::Alloc { size, noscan, align_shift } => {
                    let align = 8usize << align_shift;
                    let req = AllocRequest {
                        size,
                        align,
                        noscan,
                        free_hook: !noscan,
                    };
                    let p = c.alloc(req).unwrap().as_ptr();
                    prop_assert_eq!(p as usize % align.min(8), 0);
                    seed += 1;
                    fill(p, size, seed);
                    live.insert(p as usize, (size, seed));
                }
                Op::Drop(i) => {
                    if !live.is_empty() {
                        let k = *live.keys().nth(i % live.len()).unwrap();
                        live.remove(&k);
                    }
                }
                Op::Collect => {
                    let addrs: Vec<usize> = live.keys().copied().collect();
                    collect(&h, &mut [&mut c], addrs);
                }
                Op::SweepSome(n) => {
                    for _ in 0..n % 16 {
                        if h.sweep_one().is_none() { break; }
                    }
                }
                Op::ReleaseCache => c.release_all(),
                Op::Scavenge => { h.release_free_memory(); }
            }
            check_invariants(&h, &c, &live)?;
        }
        // A final full collection frees exactly what was dropped: the
        // surviving objects are the distinct blocks of the live objects
        // plus the cache's tiny block (which the collector greys).
        let addrs: Vec<usize> = live.keys().copied().collect();
        let mut survivors: std::collections::BTreeSet<usize> =
            addrs.iter().map(|&a| h.find_object(a).unwrap().base).collect();
        survivors.extend(c.tiny_block());
        collect(&h, &mut [&mut c], addrs);
        h.finish_sweep().unwrap();
        c.release_all();
        let st = h.stats();
        prop_assert_eq!(st.heap_objects, survivors.len() as u64);
        check_invariants(&h, &c, &live)?;
    }
}

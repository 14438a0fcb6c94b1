//! Two mutator threads with their own mcaches share one heap's mcentrals
//! and page heap, while a third thread sweeps in the background (racing
//! the mutators' lazy sweeping in `cache_span` / `uncache_span` for the
//! same spans). Collections happen with the world stopped at a barrier, as
//! the collector will do it.

mod common;

use common::{check, fill};
use spanheap_heap::{AllocRequest, HeapConfig, MCache, MHeap};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

const MUTATORS: usize = 2;
const CYCLES: usize = 8;
const PER_CYCLE: usize = 40_000;
const WINDOW: usize = 15_000;

/// A mutator's live objects as (addr, checked bytes, seed), plus its tiny
/// block, published before each stop.
type Published = (Vec<(usize, usize, u64)>, Option<usize>);

struct Shared {
    live: Vec<Mutex<Published>>,
    done: AtomicUsize,
    stop: AtomicBool,
}

fn size_for(i: u64) -> AllocRequest {
    let r = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
    let size = match r % 100 {
        0..=39 => 1 + (r >> 8) as usize % 15,
        40..=89 => 16 + (r >> 8) as usize % 500,
        90..=98 => 512 + (r >> 8) as usize % 8000,
        _ => 33_000 + (r >> 8) as usize % 70_000,
    };
    if r & 1 == 0 {
        AllocRequest::noscan(size)
    } else {
        AllocRequest::scan(size)
    }
}

#[test]
fn two_mutators_and_a_background_sweeper() {
    let heap = spanheap_heap::sync::Arc::new(
        MHeap::new(HeapConfig {
            arena_size: 4 << 20,
            ..HeapConfig::default()
        })
        .unwrap(),
    );
    let shared = Shared {
        live: (0..MUTATORS)
            .map(|_| Mutex::new((Vec::new(), None)))
            .collect(),
        done: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    // Mutators + sweeper + coordinator.
    let barrier = Barrier::new(MUTATORS + 2);
    std::thread::scope(|s| {
        for t in 0..MUTATORS {
            let (heap, shared, barrier) = (heap.clone(), &shared, &barrier);
            s.spawn(move || {
                let mut c = MCache::new(heap.clone());
                let mut mine: VecDeque<(usize, usize, u64)> = VecDeque::new();
                let mut seed = (t as u64) << 40;
                for _ in 0..CYCLES {
                    for _ in 0..PER_CYCLE {
                        seed += 1;
                        let req = size_for(seed);
                        let p = c.alloc(req).unwrap().as_ptr();
                        fill(p, req.size.min(64), seed);
                        mine.push_back((p as usize, req.size.min(64), seed));
                        if mine.len() > WINDOW {
                            mine.pop_front();
                        }
                    }
                    *shared.live[t].lock().unwrap() =
                        (mine.iter().copied().collect(), c.tiny_block());
                    shared.done.fetch_add(1, Ordering::AcqRel);
                    barrier.wait(); // world stopped
                    barrier.wait(); // collection done
                    // Go's prepareForSweep: flush before allocating again.
                    c.release_all();
                    for &(a, n, sd) in &mine {
                        assert!(check(a as *const u8, n, sd), "survivor {a:#x} corrupted");
                    }
                    c.verify().unwrap();
                }
            });
        }
        // Background sweeper: sweeps while mutators run, stops at each STW.
        {
            let (heap, shared, barrier) = (&heap, &shared, &barrier);
            s.spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    while shared.done.load(Ordering::Acquire) < MUTATORS {
                        if heap.sweep_one().is_none() {
                            std::thread::yield_now();
                        }
                    }
                    barrier.wait();
                    barrier.wait();
                }
            });
        }
        // Coordinator: the stand-in collector.
        for cycle in 0..CYCLES {
            barrier.wait();
            // Everyone is parked: mark, then start the sweep.
            let mut all: BTreeMap<usize, usize> = BTreeMap::new();
            heap.finish_sweep().unwrap();
            for slot in &shared.live {
                let (objs, tiny) = &*slot.lock().unwrap();
                for &(a, n, _) in objs {
                    heap.mark_object(a).unwrap();
                    all.insert(a, n);
                }
                if let Some(t) = tiny {
                    heap.mark_object(*t);
                }
            }
            // Objects of the two mutators never overlap.
            let mut end = 0;
            for (&a, &n) in &all {
                assert!(a >= end, "objects of different mutators overlap");
                end = a + n;
            }
            // SAFETY: every other thread is parked at the barrier; no mark
            // bit is set until the next finish_sweep.
            unsafe { heap.begin_sweep() }.unwrap();
            shared.done.store(0, Ordering::Release);
            if cycle + 1 == CYCLES {
                shared.stop.store(true, Ordering::Release);
            }
            barrier.wait();
        }
    });
    heap.finish_sweep().unwrap();
    heap.verify().unwrap();
    let st = heap.stats();
    // Every allocation is either a malloc (a tiny block counts once) or a
    // tiny allocation combined into an existing block (Go's identity).
    assert_eq!(
        st.mallocs + st.tiny_allocs,
        (MUTATORS * CYCLES * PER_CYCLE) as u64
    );
    assert_eq!(st.heap_objects, st.mallocs - st.frees);
}

//! The background scavenger thread releases free memory down to its goal
//! (in-use x 1.1 by default) without touching live objects.

mod common;

use common::{collect, touch};
use spanheap_heap::sync::Arc;
use spanheap_heap::{AllocRequest, BackgroundScavenger, HeapConfig, MCache, MHeap, os};
use std::time::{Duration, Instant};

const OBJ: usize = 4 << 20;

#[test]
fn background_scavenger_releases_down_to_its_goal() {
    let h = Arc::new(MHeap::new(HeapConfig::default()).unwrap());
    let mut c = MCache::new(h.clone());
    let mut objs = Vec::new();
    for _ in 0..16 {
        let p = c.alloc(AllocRequest::noscan(OBJ)).unwrap().as_ptr();
        touch(p, OBJ);
        objs.push(p as usize);
    }
    // Keep one object live; free the rest.
    collect(&h, &mut [&mut c], [objs[0]]);
    h.finish_sweep().unwrap();
    let _bg = BackgroundScavenger::start(h.clone()).unwrap();
    // The goal is in-use x 1.1, so nearly all free memory must go. Poll
    // (bounded) rather than assume how fast the thread runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = h.stats();
        let retained = st.heap_sys - st.heap_released;
        if retained as usize <= h.scavenge_goal() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scavenger made no progress: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        os::resident_pages(objs[0], OBJ),
        Some(OBJ / 4096),
        "live object untouched"
    );
    assert_eq!(os::resident_pages(objs[5], OBJ), Some(0));
}

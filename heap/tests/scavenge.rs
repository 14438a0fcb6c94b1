//! The scavenger returns free pages to the OS: the pages stop being
//! resident (checked page by page with `mincore`, independent of anything
//! else in the process) and the process RSS drops. The RSS check is
//! process-wide, so this binary holds this one test only.

mod common;

use common::{collect, touch};
use spanheap_heap::sync::Arc;
use spanheap_heap::{AllocRequest, HeapConfig, MCache, MHeap, os};

const OBJ: usize = 4 << 20;
const N: usize = 64; // 256 MiB

#[test]
fn freed_heap_is_released_and_rss_drops() {
    let h = Arc::new(MHeap::new(HeapConfig::default()).unwrap());
    let mut c = MCache::new(h.clone());
    let mut objs = Vec::new();
    for _ in 0..N {
        let p = c.alloc(AllocRequest::noscan(OBJ)).unwrap().as_ptr();
        touch(p, OBJ);
        objs.push(p as usize);
    }
    for _ in 0..100_000 {
        let p = c.alloc(AllocRequest::scan(200)).unwrap().as_ptr();
        touch(p, 200);
    }
    let os_page = 4096;
    for &a in &objs {
        assert_eq!(
            os::resident_pages(a, OBJ),
            Some(OBJ / os_page),
            "touched pages resident"
        );
    }
    let rss_full = os::process_rss().unwrap();

    collect(&h, &mut [&mut c], []);
    h.finish_sweep().unwrap();
    let st = h.stats();
    assert_eq!(st.heap_inuse, 0);
    assert!(st.heap_idle >= (N * OBJ) as u64);

    let released = h.release_free_memory();
    assert!(released >= N * OBJ, "released only {released} bytes");
    for &a in &objs {
        assert_eq!(
            os::resident_pages(a, OBJ),
            Some(0),
            "released pages still resident"
        );
    }
    let st = h.stats();
    assert_eq!(
        st.heap_released, st.heap_idle,
        "every free page is released"
    );
    let rss_released = os::process_rss().unwrap();
    assert!(
        rss_released + (200 << 20) < rss_full,
        "RSS did not drop: {rss_full} -> {rss_released}"
    );

    // Released pages come back zeroed, and only as they are touched.
    let p = c.alloc(AllocRequest::noscan(OBJ)).unwrap().as_ptr();
    // SAFETY: fresh object of OBJ bytes.
    assert!((0..OBJ).step_by(512).all(|i| unsafe { *p.add(i) } == 0));
    h.verify().unwrap();
}

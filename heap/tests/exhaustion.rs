//! Address-space exhaustion is an `AllocError`, not an abort. The scenario
//! runs in a child process (this same test binary, re-executed) whose
//! address space is capped with `RLIMIT_AS`, so the cap cannot disturb other
//! tests.

use spanheap_heap::sync::Arc;
use spanheap_heap::{AllocError, AllocRequest, HeapConfig, MCache, MHeap};

const CHILD_ENV: &str = "SPANHEAP_EXHAUSTION_CHILD";

fn child() {
    // Cap the address space at what the process uses now plus 1 GiB.
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let vm_pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    let cap = vm_pages * 4096 + (1 << 30);
    let lim = libc::rlimit {
        rlim_cur: cap,
        rlim_max: cap,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let h = Arc::new(MHeap::new(HeapConfig::default()).unwrap());
    let mut c = MCache::new(h.clone());
    // A span with free slots, cached before the address space runs out.
    c.alloc(AllocRequest::scan(64)).unwrap();
    let mut n = 0;
    let err = loop {
        match c.alloc(AllocRequest::noscan(64 << 20)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 64, "the address-space cap was not hit");
    };
    assert!(
        matches!(err, AllocError::OutOfMemory { errno, .. } if errno == libc::ENOMEM),
        "unexpected error: {err:?}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    // The heap is still consistent and still serves small requests from
    // the memory it already has.
    h.verify().unwrap();
    c.alloc(AllocRequest::scan(64)).unwrap();
    // A request that needs new address space fails the same clean way.
    assert!(matches!(
        c.alloc(AllocRequest::noscan(512 << 20)),
        Err(AllocError::OutOfMemory { .. })
    ));
    println!("child: {n} x 64 MiB allocated before a clean {err}");
}

#[test]
fn address_space_exhaustion_is_an_error() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "address_space_exhaustion_is_an_error",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("child:"),
        "child did not run the scenario:\n{stdout}"
    );
}

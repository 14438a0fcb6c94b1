//! Checkmark mode catches a lost object. The collector is broken on
//! purpose (marking loses every 3rd object it finds) in a child process,
//! which must then abort with the checkmark message; with checkmark off
//! the same broken collector goes unnoticed by the collector itself, which
//! is why the mode exists.

use spanheap::{Gc, GcCell, Heap, Root, Trace};
use std::process::Command;

#[derive(Trace)]
struct Node<'gc> {
    val: u64,
    next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
}

const CHILD: &str = "SPANHEAP_CHECKMARK_TEST_CHILD";

fn run_broken_heap(checkmark: bool) {
    let h = Heap::builder()
        .checkmark(checkmark)
        .background_sweep(false)
        .__fault_lose_every(3)
        .build()
        .unwrap();
    let mut m = h.mutator();
    let head: Root<Node<'static>> = m.scope(|cx| {
        let mut head = cx
            .alloc(Node {
                val: 0,
                next: GcCell::new(None),
            })
            .unwrap();
        for i in 1..100 {
            let n = cx
                .alloc(Node {
                    val: i,
                    next: GcCell::new(Some(head)),
                })
                .unwrap();
            head = n;
        }
        cx.root(head)
    });
    h.collect();
    drop(head);
}

#[test]
fn checkmark_catches_a_lost_object() {
    if let Ok(mode) = std::env::var(CHILD) {
        run_broken_heap(mode == "on");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let run = |mode: &str| {
        Command::new(&exe)
            .args(["--exact", "checkmark_catches_a_lost_object", "--nocapture"])
            .env(CHILD, mode)
            // The other verifiers would catch the broken mark first.
            .env_remove("SPANHEAP_SATB")
            .env_remove("SPANHEAP_VERIFY")
            .output()
            .unwrap()
    };
    let on = run("on");
    let stderr = String::from_utf8_lossy(&on.stderr);
    assert!(!on.status.success(), "checkmark did not stop a broken mark");
    assert!(
        stderr.contains("checkmark:") && stderr.contains("reachable objects were not marked"),
        "unexpected failure: {stderr}"
    );
    // The same broken mark without checkmark: the cycle completes (the
    // lost objects would be freed while reachable; the test ends before
    // anything reads them).
    let off = run("off");
    assert!(
        off.status.success(),
        "{}",
        String::from_utf8_lossy(&off.stderr)
    );
}

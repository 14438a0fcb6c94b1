//! The background scavenger: gives free pages back to the OS when the heap
//! retains more memory than it needs.
//!
//! Mirrors Go's `mgcscavenge.go` in outline. The mechanism — find free,
//! not-yet-released pages from the top of the address space down, release
//! them in small batches without the heap lock, mark them scavenged — lives
//! in [`MHeap::scavenge`] and the page allocator's scavenged bitmap. This
//! module is the policy thread:
//!
//! - **Goal.** Retained memory (mapped minus released) should not exceed the
//!   goal set with [`MHeap::set_scavenge_goal`] (the collector sets it each
//!   cycle from the heap goal, like Go's `retainExtraPercent` rule), or, if
//!   none was set, `in-use × (1 + retain_extra_percent/100)`.
//! - **Pacing.** Go's scavenger targets 1% of one CPU. After each batch we
//!   sleep for 99× the time the batch took, so the thread's CPU share stays
//!   near 1% however slow `madvise` is.
//! - **Waking.** Freeing a span wakes the thread when retained memory is over
//!   the goal; otherwise it re-checks once a second.
//!
//! Memory released this way reads as zero when reused, so spans made only
//! of released pages skip zeroing (`needzero`).

use crate::mheap::MHeap;
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, Mutex, thread};
use std::time::{Duration, Instant};

/// Bytes released per batch before re-checking the goal and pacing.
const BATCH_BYTES: usize = 64 << 10;

/// Target CPU share of the scavenger thread, as a divisor (1%).
const CPU_DIVISOR: u32 = 100;

/// Handle to a running background scavenger; dropping it stops and joins the
/// thread.
pub struct BackgroundScavenger {
    /// `true` once the thread should exit. The thread waits on the heap's
    /// scavenger condvar with this lock held, so a stop cannot be missed.
    stop: Arc<Mutex<bool>>,
    heap: Arc<MHeap>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BackgroundScavenger {
    /// Starts the scavenger thread for `heap`.
    pub fn start(heap: Arc<MHeap>) -> std::io::Result<BackgroundScavenger> {
        let stop = Arc::new(Mutex::new(false));
        let (h, st) = (heap.clone(), stop.clone());
        let thread = thread::Builder::new()
            .name("spanheap-scavenger".into())
            .spawn(move || run(&h, &st))?;
        Ok(BackgroundScavenger {
            stop,
            heap,
            thread: Some(thread),
        })
    }
}

impl Drop for BackgroundScavenger {
    fn drop(&mut self) {
        *self.stop.lock() = true;
        self.heap.scav_cv.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread only returns; a panic inside it would already have
            // been reported on stderr.
            let _ = t.join();
        }
    }
}

/// The effective retained-memory goal.
fn goal(heap: &MHeap) -> usize {
    match heap.scav_goal.load(Ordering::Relaxed) {
        u64::MAX => heap.scavenge_goal(),
        g => g as usize,
    }
}

fn run(heap: &MHeap, stop: &Mutex<bool>) {
    loop {
        let start = Instant::now();
        let released = heap.scavenge(goal(heap), BATCH_BYTES);
        if released > 0 {
            if *stop.lock() {
                return;
            }
            let spent = start.elapsed();
            thread::sleep(spent * (CPU_DIVISOR - 1));
            continue;
        }
        let mut g = stop.lock();
        if *g {
            return;
        }
        heap.scav_cv.wait_for(&mut g, Duration::from_secs(1));
        if *g {
            return;
        }
    }
}

//! The pacer: when the next cycle starts (Go's `mgcpacer.go`, reduced: a
//! fixed trigger ratio instead of Go's feedback controller; the assist
//! ratio is computed by the collector from the goal set here).
//!
//! - **Trigger**: a cycle starts early enough that the mutators' allocation
//!   during the concurrent mark ends near the goal: the last cycle's
//!   overshoot past its trigger (allocation from the trigger to the end of
//!   the mark), with a quarter of margin, is kept free below the goal,
//!   within 70 %–87.5 % of the runway from `marked` to the goal (Go's
//!   trigger bounds are 70 %–95 %; its feedback controller estimates the
//!   same quantity from the cons/mark ratio).
//! - **GOGC**: `goal = marked × (1 + gc_percent/100)`, at least
//!   `min_heap × gc_percent/100` (Go's `heapMinimum`, 4 MiB at GOGC=100),
//!   so tiny heaps are not collected constantly.
//! - **Soft memory limit** (Go's `GOMEMLIMIT`, `memoryLimitHeapGoal`): the
//!   goal is lowered so that heap objects plus the memory the heap keeps
//!   for other purposes (free-but-resident pages, span and bitmap
//!   metadata) stay under the limit. A limit below the live heap cannot be
//!   met; the goal then stays `marked + max(marked/16, 1 MiB)` above the
//!   live heap, so the collector runs often but never back to back on every
//!   allocation (Go bounds this case with its 50 % GC CPU limiter).
//! - `gc_percent = None` (GOGC=off) disables the proportional goal; with a
//!   memory limit, the limit alone triggers collections.
//!
//! Invariant: the goal is always above `marked`.

/// The pacer's inputs that the user sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacerConfig {
    /// GOGC: percent of the marked heap that may be allocated before the
    /// next cycle. `None` = off.
    pub gc_percent: Option<u32>,
    /// Soft limit on the memory the heap uses, in bytes (GOMEMLIMIT).
    pub memory_limit: Option<u64>,
    /// Go's `heapMinimum` at GOGC=100.
    pub min_heap: u64,
    /// The heap's hard limit on pages in use ([`HeapConfig::heap_limit`];
    /// `Collector::new` sets it from the heap's configuration). Whenever collections run (a goal
    /// exists), the goal stays an eighth below it, so that the
    /// concurrent mark ends and the sweep returns pages before the
    /// allocator must refuse: the limit is an error only for a live set
    /// that does not fit, not for garbage the pacer let pile up.
    ///
    /// [`HeapConfig::heap_limit`]: spanheap_heap::HeapConfig::heap_limit
    pub hard_limit: Option<u64>,
}

impl Default for PacerConfig {
    fn default() -> Self {
        PacerConfig {
            gc_percent: Some(100),
            memory_limit: None,
            min_heap: 4 << 20,
            hard_limit: None,
        }
    }
}

/// The memory the heap holds besides live objects, as the limit sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overhead {
    /// Free pages still resident (`heap_idle - heap_released`).
    pub idle_resident: u64,
    /// Span structures and mark/alloc bitmaps.
    pub metadata: u64,
}

/// Where the next cycle starts: `overshoot` (how far past its trigger the
/// heap grew by the end of the last mark) plus a quarter below `goal`, so
/// that the concurrent mark, during which mutators keep allocating,
/// finishes near the goal; at least 70 % and at most 7/8 of the way from
/// `marked` to `goal`. `u64::MAX` when there is no goal.
pub fn trigger(marked: u64, goal: u64, overshoot: u64) -> u64 {
    if goal == u64::MAX {
        return goal;
    }
    let runway = goal.saturating_sub(marked);
    let lo = marked + runway / 10 * 7;
    let hi = marked + runway / 8 * 7;
    goal.saturating_sub(overshoot.saturating_add(overshoot / 4))
        .clamp(lo, hi)
}

/// The heap goal after a cycle that marked `marked` bytes.
pub fn heap_goal(cfg: &PacerConfig, marked: u64, overhead: Overhead) -> u64 {
    let floor = marked + (marked / 16).max(1 << 20);
    let gogc = match cfg.gc_percent {
        Some(p) => {
            let p = p as u64;
            let g = marked.saturating_add(marked.saturating_mul(p) / 100);
            g.max(cfg.min_heap.saturating_mul(p) / 100).max(floor)
        }
        None => u64::MAX,
    };
    let goal = match cfg.memory_limit {
        Some(limit) => {
            let room = limit.saturating_sub(overhead.metadata + overhead.idle_resident);
            gogc.min(room).max(floor)
        }
        None => gogc,
    };
    match cfg.hard_limit {
        // GOGC=off without a soft limit stays off: only the user collects.
        Some(hard) if goal != u64::MAX => goal.min(hard - hard / 8).max(floor),
        _ => goal,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn trigger_is_ahead_of_the_goal() {
        // No overshoot: 7/8 of the runway.
        assert_eq!(trigger(8 << 20, 16 << 20, 0), 15 << 20);
        assert_eq!(trigger(0, 8 << 20, 0), 7 << 20);
        assert_eq!(trigger(1 << 20, u64::MAX, 0), u64::MAX);
        // A goal at the floor still leaves a trigger above `marked`.
        assert!(trigger(100, 100 + (1 << 20), 0) > 100);
    }

    #[test]
    fn trigger_leaves_room_for_the_last_overshoot() {
        let (marked, goal) = (100u64 << 20, 200u64 << 20);
        // 16 MiB past the trigger last time: start 20 MiB below the goal.
        assert_eq!(trigger(marked, goal, 16 << 20), 180 << 20);
        // Never later than 7/8 of the runway, never earlier than 70 %.
        assert_eq!(trigger(marked, goal, 1 << 20), marked + (100 << 20) / 8 * 7);
        assert_eq!(
            trigger(marked, goal, 90 << 20),
            marked + (100 << 20) / 10 * 7
        );
        assert_eq!(
            trigger(marked, goal, u64::MAX),
            marked + (100 << 20) / 10 * 7
        );
    }

    #[test]
    fn gogc_goal() {
        let c = PacerConfig::default();
        let o = Overhead::default();
        assert_eq!(heap_goal(&c, 100 << 20, o), 200 << 20);
        // heapMinimum.
        assert_eq!(heap_goal(&c, 1 << 20, o), 4 << 20);
        let c50 = PacerConfig {
            gc_percent: Some(50),
            ..c
        };
        assert_eq!(heap_goal(&c50, 100 << 20, o), 150 << 20);
        assert_eq!(heap_goal(&c50, 0, o), 2 << 20);
    }

    #[test]
    fn off_and_limit() {
        let off = PacerConfig {
            gc_percent: None,
            ..PacerConfig::default()
        };
        assert_eq!(heap_goal(&off, 10 << 20, Overhead::default()), u64::MAX);
        let lim = PacerConfig {
            memory_limit: Some(64 << 20),
            ..off
        };
        let o = Overhead {
            idle_resident: 4 << 20,
            metadata: 1 << 20,
        };
        assert_eq!(heap_goal(&lim, 10 << 20, o), 59 << 20);
        // The limit tightens GOGC's goal...
        let both = PacerConfig {
            gc_percent: Some(100),
            ..lim
        };
        assert_eq!(heap_goal(&both, 40 << 20, o), 59 << 20);
        assert_eq!(heap_goal(&both, 20 << 20, o), 40 << 20);
        // ...but never below the live heap plus headroom.
        assert_eq!(heap_goal(&both, 80 << 20, o), 85 << 20);
    }

    #[test]
    fn the_goal_stays_below_the_hard_limit() {
        let o = Overhead::default();
        let hard = PacerConfig {
            hard_limit: Some(64 << 20),
            ..PacerConfig::default()
        };
        // GOGC's 80 MiB would pass the limit: an eighth below it instead.
        assert_eq!(heap_goal(&hard, 40 << 20, o), 56 << 20);
        // Below the cap GOGC decides.
        assert_eq!(heap_goal(&hard, 20 << 20, o), 40 << 20);
        // A live set near the limit still gets its headroom (the limit
        // then refuses what does not fit).
        assert_eq!(heap_goal(&hard, 60 << 20, o), (60 << 20) + (60 << 20) / 16);
        // GOGC=off stays off; with a soft limit, the hard cap applies.
        let off = PacerConfig {
            gc_percent: None,
            ..hard
        };
        assert_eq!(heap_goal(&off, 10 << 20, o), u64::MAX);
        let soft = PacerConfig {
            memory_limit: Some(1 << 30),
            ..off
        };
        assert_eq!(heap_goal(&soft, 10 << 20, o), 56 << 20);
    }
}

//! Storage for spans' `allocBits` and `gcmarkBits`, recycled by GC epoch.
//!
//! Mirrors the `gcBits` arenas of Go's `mheap.go` (`newMarkBits`,
//! `newAllocBits`, `nextMarkBitArenaEpoch`). Every span owns two bitmaps of
//! `nelems` bits. Sweeping a span makes its mark bitmap the new alloc bitmap
//! and gives it a fresh, zeroed mark bitmap: a pointer swap plus one bump
//! allocation, instead of clearing bits in place. The old alloc bitmap is
//! simply abandoned; whole arenas of abandoned bitmaps are recycled once no
//! span can still refer to them.
//!
//! ## Epochs
//!
//! Arenas live on four lists: `free`, `next` (bitmaps handed out since the
//! last rotation), `current` and `previous`. [`GcBitsArenas::next_epoch`]
//! rotates `previous → free`, `current → previous`, `next → current`, and
//! must be called only when **every in-use span has been swept since the
//! previous rotation**, with the world stopped (the heap calls it from
//! `begin_sweep`, after `finish_sweep` has swept everything). Argument:
//! after a complete sweep, each span's alloc bitmap is the mark bitmap it was
//! given during the *previous* complete sweep (or at span creation), which
//! lives in an arena of the `current` list; its mark bitmap lives in `next`.
//! So nothing points into `previous`, which can be zeroed and reused.
//!
//! ## Why not `bitvec` here
//! Mark bits are set by several mark workers at once, so each word is an
//! atomic and a mark is a `fetch_or` (Go's `atomic.Or8`). bitvec's atomic
//! storage is tied to `core::sync::atomic`, which loom cannot observe; going
//! through the `sync` shim's `AtomicU64` keeps marking model-checkable. The
//! non-concurrent bitmaps of the page allocator do use bitvec.
//!
//! Concurrency: bitmaps are bump-allocated from the newest arena without a
//! lock (`fetch_add` on its `used` counter); the lock (`gcBitsArenas.lock`
//! in Go) is taken only to install a new arena or rotate. Words are atomics:
//! read with `Relaxed`, mark bits set with `fetch_or`.

use crate::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{LOOM, Mutex};
use std::ptr::NonNull;

/// Words per bitmap arena: 64 KiB like Go's, or a handful under loom.
pub const GC_BITS_ARENA_WORDS: usize = if LOOM { 32 } else { 8192 };

/// A pointer to the first word of a span's bitmap, inside a gcBits arena.
/// The arena outlives every span that points into it (epoch rule above).
pub(crate) type BitsPtr = NonNull<AtomicU64>;

struct Arena {
    /// The words; boxed so their address is stable while the arena moves
    /// between lists.
    words: Box<[AtomicU64]>,
    /// Words handed out from this arena. Bumped with `fetch_add` without
    /// the lock; may overshoot the arena's size (the overshooting caller
    /// takes the slow path), so read it as `min(used, WORDS)`.
    used: AtomicUsize,
}

impl Arena {
    fn new() -> Box<Self> {
        Box::new(Arena {
            words: (0..GC_BITS_ARENA_WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `words` words, if they fit.
    #[inline]
    fn bump(&self, words: usize) -> Option<BitsPtr> {
        let off = self.used.fetch_add(words, Ordering::Relaxed);
        (off + words <= GC_BITS_ARENA_WORDS).then(|| NonNull::from(&self.words[off]))
    }
}

// The arenas are boxed on purpose: `head` points at an `Arena` (its `used`
// counter lives inline), which must not move when these vectors grow.
#[allow(clippy::vec_box)]
#[derive(Default)]
struct Lists {
    free: Vec<Box<Arena>>,
    next: Vec<Box<Arena>>,
    current: Vec<Box<Arena>>,
    previous: Vec<Box<Arena>>,
}

/// The bitmap arenas of one heap.
pub(crate) struct GcBitsArenas {
    lists: Mutex<Lists>,
    /// The arena bitmaps are bump-allocated from without the lock: the
    /// newest arena of `next`, or null. Changed only under `lists`; the
    /// arena it points to stays in `next` until `next_epoch`, which runs
    /// with the world stopped, so no thread can be bumping into it then.
    head: AtomicPtr<Arena>,
}

impl GcBitsArenas {
    pub(crate) fn new() -> Self {
        GcBitsArenas {
            lists: Mutex::new(Lists::default()),
            head: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    #[inline]
    fn try_head(&self, words: usize) -> Option<BitsPtr> {
        let head = self.head.load(Ordering::Acquire);
        if head.is_null() {
            return None;
        }
        // A non-null head points to a boxed arena in `next` (published with
        // Release under the lock), moved out of `next` only by `next_epoch`.
        // SAFETY: so it is live: `next_epoch` requires that no other heap
        // method runs concurrently with it.
        unsafe { &*head }.bump(words)
    }

    /// A zeroed bitmap of `nbits` bits (Go's `newMarkBits`). Alloc bitmaps of
    /// fresh spans come from here too (`newAllocBits`). Lock-free unless
    /// the current arena is full (Go's fast path in `newMarkBits`).
    pub(crate) fn alloc(&self, nbits: usize) -> BitsPtr {
        let words = nbits.div_ceil(64).max(1);
        debug_assert!(words <= GC_BITS_ARENA_WORDS);
        if let Some(p) = self.try_head(words) {
            return p;
        }
        self.alloc_slow(words)
    }

    #[cold]
    fn alloc_slow(&self, words: usize) -> BitsPtr {
        let mut l = self.lists.lock();
        // Another thread may have installed a fresh arena meanwhile.
        if let Some(p) = self.try_head(words) {
            return p;
        }
        let arena = match l.free.pop() {
            Some(a) => {
                // Nobody refers to a free arena (epoch rule), so relaxed
                // stores suffice; the Release store of `head` below and
                // the lock publish them.
                for w in a.words.iter() {
                    w.store(0, Ordering::Relaxed);
                }
                a.used.store(0, Ordering::Relaxed);
                a
            }
            None => Arena::new(),
        };
        let Some(p) = arena.bump(words) else {
            unreachable!("a fresh arena holds any span's bitmap")
        };
        let raw: *const Arena = &*arena;
        l.next.push(arena);
        self.head.store(raw.cast_mut(), Ordering::Release);
        p
    }

    /// Rotates the epochs; see the module docs for the precondition. Also
    /// requires that no other thread is inside `alloc` (the world is
    /// stopped): a thread bumping into the old head would otherwise place a
    /// new bitmap in an arena one epoch older than the rule assumes.
    pub(crate) fn next_epoch(&self) {
        let mut l = self.lists.lock();
        self.head.store(std::ptr::null_mut(), Ordering::Release);
        let prev = std::mem::take(&mut l.previous);
        l.free.extend(prev);
        l.previous = std::mem::take(&mut l.current);
        l.current = std::mem::take(&mut l.next);
    }

    /// Bytes of bitmap arenas allocated (for `MemStats::gc_sys`).
    pub(crate) fn sys_bytes(&self) -> usize {
        let l = self.lists.lock();
        (l.free.len() + l.next.len() + l.current.len() + l.previous.len()) * GC_BITS_ARENA_WORDS * 8
    }
}

/// Bit operations on a bitmap given by its first word.
///
/// # Safety (for every function here)
/// 1. `bits` points to a bitmap from [`GcBitsArenas::alloc`] of at least
///    `i / 64 + 1` words whose arena is still live (the epoch rule).
#[inline(always)]
pub(crate) unsafe fn word<'a>(bits: BitsPtr, w: usize) -> &'a AtomicU64 {
    // SAFETY: obligation 1: word `w` lies inside the bitmap, and the arena
    // it lives in is alive.
    unsafe { bits.add(w).as_ref() }
}

/// Whether bit `i` is set.
///
/// # Safety
/// See [`word`].
#[inline(always)]
pub(crate) unsafe fn is_set(bits: BitsPtr, i: usize) -> bool {
    // SAFETY: forwarded to the caller.
    unsafe { word(bits, i / 64) }.load(Ordering::Relaxed) & (1 << (i % 64)) != 0
}

/// Sets bit `i` atomically; returns whether it was already set.
///
/// # Safety
/// See [`word`].
#[inline(always)]
pub(crate) unsafe fn set(bits: BitsPtr, i: usize) -> bool {
    let m = 1u64 << (i % 64);
    // SAFETY: forwarded to the caller.
    let w = unsafe { word(bits, i / 64) };
    // A plain load first: in the common already-marked case this avoids a
    // locked RMW (Go's `isMarked` check before `setMarked`).
    if w.load(Ordering::Relaxed) & m != 0 {
        return true;
    }
    if crate::sync::broken::is("mark_bit_store") {
        // loom-tests broken variant: load then store instead of the RMW
        // (loom-tests/tests/heap_markbits.rs).
        let old = w.load(Ordering::Relaxed);
        w.store(old | m, Ordering::Relaxed);
        return old & m != 0;
    }
    w.fetch_or(m, Ordering::Relaxed) & m != 0
}

/// Number of set bits among the first `nbits`.
///
/// # Safety
/// See [`word`]; the bitmap has at least `nbits.div_ceil(64)` words.
pub(crate) unsafe fn count(bits: BitsPtr, nbits: usize) -> usize {
    let mut n = 0;
    for w in 0..nbits.div_ceil(64) {
        // SAFETY: w < nbits.div_ceil(64), forwarded to the caller.
        let mut v = unsafe { word(bits, w) }.load(Ordering::Relaxed);
        if (w + 1) * 64 > nbits {
            v &= (1u64 << (nbits % 64)) - 1;
        }
        n += v.count_ones() as usize;
    }
    n
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn alloc_zeroed_and_distinct() {
        let a = GcBitsArenas::new();
        let b1 = a.alloc(1024);
        let b2 = a.alloc(5);
        // SAFETY: both bitmaps are live; indices within their sizes.
        unsafe {
            assert!(!set(b1, 1023));
            assert!(set(b1, 1023));
            assert!(!is_set(b2, 0));
            assert_eq!(count(b1, 1024), 1);
            assert_eq!(count(b2, 5), 0);
        }
    }

    #[test]
    fn epochs_recycle_only_after_two_rotations() {
        let a = GcBitsArenas::new();
        // Fill more than one arena.
        let mut ptrs = Vec::new();
        for _ in 0..(GC_BITS_ARENA_WORDS / 16 + 3) {
            let p = a.alloc(1024);
            // SAFETY: live bitmap of 1024 bits.
            unsafe { set(p, 7) };
            ptrs.push(p);
        }
        let sys = a.sys_bytes();
        a.next_epoch();
        a.next_epoch();
        // Two rotations: the first arenas are now `previous`, still intact.
        // SAFETY: the arenas are in `previous`, not yet freed.
        assert!(unsafe { is_set(ptrs[0], 7) });
        a.next_epoch();
        // Third rotation frees them; the next allocation reuses and zeroes.
        let p = a.alloc(1024);
        // SAFETY: fresh bitmap.
        assert_eq!(unsafe { count(p, 1024) }, 0);
        assert_eq!(a.sys_bytes(), sys, "arenas are reused, not reallocated");
    }
}

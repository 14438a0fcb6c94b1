//! Slot tables: the collector's root set and weak-reference set.
//!
//! Go has no user-visible root table (its roots are stacks and globals,
//! `markroot` in `mgcmark.go`); its closest relatives are the special
//! records of `mheap.go` (`specialWeakHandle`, which backs `weak.Pointer`,
//! and finalizers). spanheap's mutator stacks are never scanned (see
//! `docs/safety.md`), so anything that must survive a safepoint is in a
//! slot of the root table; weak references are slots of the weak table.
//!
//! A slot is one `AtomicUsize` holding an object address (0 = empty),
//! living in a chunk that never moves or is freed before the table, so a
//! [`Slot`] is a stable pointer.
//!
//! Invariants:
//! - a slot is owned by exactly one handle between [`SlotTable::insert`]
//!   and [`SlotTable::remove`], and is 0 while on the free list;
//! - a root slot's value never changes while owned; a weak slot's value
//!   changes only from an address to 0, written by the collector at mark
//!   termination (under its gate and the table lock, see `collector.rs`);
//! - a weak slot is copied into a new one only under the table lock
//!   ([`SlotTable::insert_copy`]), so no copy escapes a clearing.

use crate::sync::Mutex;
use crate::sync::atomic::{AtomicUsize, Ordering};
use std::ptr::NonNull;

/// Slots per chunk (a few under loom, where each is a modelled atomic).
const CHUNK: usize = if crate::sync::LOOM { 8 } else { 256 };

type Chunk = Box<[AtomicUsize; CHUNK]>;

/// A table of object slots (see the module docs).
pub struct SlotTable {
    inner: Mutex<Slots>,
}

struct Slots {
    chunks: Vec<Chunk>,
    free: Vec<Slot>,
    live: usize,
}

/// A handle to one slot of a [`SlotTable`]; valid while the table lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(NonNull<AtomicUsize>);

// SAFETY: a Slot is a pointer to an atomic inside a table chunk that is
// never freed or moved while the table lives (module invariants); using it
// from any thread is as safe as using `&AtomicUsize`.
unsafe impl Send for Slot {}
// SAFETY: as above.
unsafe impl Sync for Slot {}

impl Slot {
    /// The slot's atomic.
    ///
    /// # Safety
    /// 1. The table the slot came from is alive.
    #[inline]
    pub unsafe fn get(&self) -> &AtomicUsize {
        // SAFETY: obligation 1 and the module invariant (chunks never move
        // or die before the table).
        unsafe { self.0.as_ref() }
    }
}

impl Default for SlotTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotTable {
    /// An empty table.
    pub fn new() -> Self {
        SlotTable {
            inner: Mutex::new(Slots {
                chunks: Vec::new(),
                free: Vec::new(),
                live: 0,
            }),
        }
    }

    /// Takes a free slot and stores `addr` in it.
    pub fn insert(&self, addr: usize) -> Slot {
        Self::insert_locked(&mut self.inner.lock(), addr)
    }

    /// Takes a free slot and stores in it the value `src` holds, read
    /// under the table lock (`Weak::clone`). The collector clears dead
    /// weak slots holding that lock ([`SlotTable::for_each`]), so the copy
    /// is made either before a clearing, which then finds and clears it
    /// too, or after, from the cleared value. A load of `src` followed by
    /// [`SlotTable::insert`] could copy an address that a clearing running
    /// in between found dead, into a slot the clearing no longer visits:
    /// a weak reference to an object about to be freed.
    ///
    /// # Safety
    /// 1. `src` came from this table's `insert` and is still owned.
    pub unsafe fn insert_copy(&self, src: Slot) -> Slot {
        let mut l = self.inner.lock();
        // SAFETY: obligation 1; the table (self) is alive.
        let addr = unsafe { src.get() }.load(Ordering::Acquire);
        Self::insert_locked(&mut l, addr)
    }

    /// `insert`, with the table lock held.
    fn insert_locked(l: &mut Slots, addr: usize) -> Slot {
        let slot = match l.free.pop() {
            Some(s) => s,
            None => {
                let chunk: Chunk = Box::new(std::array::from_fn(|_| AtomicUsize::new(0)));
                // The slots' addresses stay valid: the chunk's heap memory
                // does not move when the Box moves into the Vec.
                let base = NonNull::from(&chunk[0]);
                l.chunks.push(chunk);
                for i in (1..CHUNK).rev() {
                    // SAFETY: i < CHUNK, within the chunk's array.
                    l.free.push(Slot(unsafe { base.add(i) }));
                }
                Slot(base)
            }
        };
        l.live += 1;
        // SAFETY: the slot is in one of `l`'s chunks, which live as long
        // as the table whose lock the caller holds.
        // Release: a marker that loads the address (Acquire) sees the
        // object's initialisation.
        unsafe { slot.get() }.store(addr, Ordering::Release);
        slot
    }

    /// Empties `slot` and returns it to the free list.
    ///
    /// # Safety
    /// 1. `slot` came from this table's `insert` and is not used again.
    pub unsafe fn remove(&self, slot: Slot) {
        let mut l = self.inner.lock();
        // SAFETY: obligation 1; the table is alive.
        unsafe { slot.get() }.store(0, Ordering::Relaxed);
        l.live -= 1;
        l.free.push(slot);
    }

    /// Number of slots in use.
    pub fn len(&self) -> usize {
        self.inner.lock().live
    }

    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with the value of every non-empty slot, without holding
    /// the table lock while it runs (the marker's root scan: handles may
    /// be created and dropped meanwhile; a slot filled after the scan
    /// passed it is the creator's to shade, see `collector.rs`).
    pub fn for_each_value(&self, mut f: impl FnMut(usize)) {
        let chunks: Vec<NonNull<AtomicUsize>> = {
            let l = self.inner.lock();
            l.chunks.iter().map(|c| NonNull::from(&c[0])).collect()
        };
        for base in chunks {
            for i in 0..CHUNK {
                // SAFETY: chunks are never freed or moved while the table
                // lives (module invariants), and i < CHUNK.
                let v = unsafe { base.add(i).as_ref() }.load(Ordering::Acquire);
                if v != 0 {
                    f(v);
                }
            }
        }
    }

    /// Calls `f` with every non-empty slot, holding the table lock (so no
    /// slot is inserted or removed meanwhile).
    pub fn for_each(&self, mut f: impl FnMut(&AtomicUsize)) {
        let l = self.inner.lock();
        for c in &l.chunks {
            for s in c.iter() {
                if s.load(Ordering::Relaxed) != 0 {
                    f(s);
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_reuse() {
        let t = SlotTable::new();
        let a = t.insert(0x1000);
        let b = t.insert(0x2000);
        assert_eq!(t.len(), 2);
        let mut seen = Vec::new();
        t.for_each(|s| seen.push(s.load(Ordering::Relaxed)));
        seen.sort();
        assert_eq!(seen, [0x1000, 0x2000]);
        // SAFETY: a came from t and is not used again.
        unsafe { t.remove(a) };
        assert_eq!(t.len(), 1);
        let c = t.insert(0x3000);
        assert_eq!(c, a, "freed slots are reused first");
        // SAFETY: b and c came from t.
        unsafe {
            assert_eq!(b.get().load(Ordering::Relaxed), 0x2000);
            t.remove(b);
            t.remove(c);
        }
        assert!(t.is_empty());
        let many: Vec<Slot> = (1..=1000).map(|i| t.insert(i * 8)).collect();
        let mut n = 0;
        t.for_each(|_| n += 1);
        assert_eq!(n, 1000);
        for s in many {
            // SAFETY: s came from t.
            unsafe { t.remove(s) };
        }
        assert!(t.is_empty());
    }

    #[test]
    fn insert_copy_copies_the_current_value() {
        let t = SlotTable::new();
        let a = t.insert(0x1000);
        // SAFETY: a came from t and is owned here.
        let b = unsafe { t.insert_copy(a) };
        assert_ne!(a, b);
        // SAFETY: a and b came from t.
        unsafe {
            assert_eq!(b.get().load(Ordering::Relaxed), 0x1000);
            a.get().store(0, Ordering::Relaxed); // as a clearing does
            let c = t.insert_copy(a);
            assert_eq!(c.get().load(Ordering::Relaxed), 0);
            t.remove(a);
            t.remove(b);
            t.remove(c);
        }
        assert!(t.is_empty());
    }
}

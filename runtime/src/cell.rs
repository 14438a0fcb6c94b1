//! Interior mutability inside GC objects, with the write barrier.
//!
//! Every way of storing a `Gc` into an object that is already in the heap
//! goes through one of these cells, and every mutating method takes the
//! [`Scope`] (with the cell's own brand `'gc`, so a scope of another heap
//! or thread cannot be passed) and runs the barrier first:
//! - [`GcCell<'gc, T>`]: a `Cell` for `Copy` values (pointers, small
//!   enums): `set` shades the old and the new value (Go's hybrid barrier:
//!   Yuasa deletion + Dijkstra insertion);
//! - [`GcRefCell<'gc, T>`]: a `RefCell` for containers (`Vec<Gc<_>>`,
//!   maps): the first `borrow_mut` of a mark shades everything the
//!   contents point to ("scan before first write", object-level
//!   snapshot), and settles the cell's per-cycle scan claim so that no
//!   marker reads the contents again this cycle — a marker never reads a
//!   `Vec` that a mutator may be reallocating. Before the mutator's
//!   clean point (S, see `spanheap_gc::collector`), releasing the borrow
//!   also shades what it inserted.
//!
//! The scan claim (`GcRefCell::scanned`, per mark cycle `c`: `DONE`,
//! `CLAIMED`, `OWED`, or stale): a marker CASes it from stale to
//! `CLAIMED`, then reads the write flag; a writer takes the write flag,
//! then reads the claim (both SeqCst: one of the two sees the other). A
//! marker that sees a writer records a debt (`Tracer::owe_cell`) and
//! marks the cell `OWED`; the writer shades the contents when its borrow
//! ends (or in its scan before first write, if the marker got in between
//! its flag and its claim) and takes the debt over. A writer that sees a
//! marker's claim waits for it to finish. Debts are paid when the
//! writer's barrier buffer is flushed, and a mark cannot end while one is
//! unpaid: a marker that skipped the cell has already blackened the
//! object holding it, so until then the contents are protected only by
//! that writer's buffer — possibly filled after the writer acknowledged
//! the last termination round. A marker that skips a cell a writer has
//! claimed or settled without a debt needs none: the writer's shading of
//! the contents began before the skip and ends before the writer's next
//! handshake, and the skip happened either before the termination round
//! (whose flush, at that handshake or later, carries them) or during a
//! round, which makes that round unclean (see `spanheap_gc::collector`).
//!
//! A mark may already run while a mutator's barrier is still off (until
//! its acknowledgement A; markers start only at T, once every mutator in a
//! scope has A). A writer whose barrier is on may settle a cell (`DONE`)
//! in that window; a later write by a mutator whose barrier is off
//! resets the claim to stale, so that a marker reads the cell after T.
//! (Without the reset the stress + checkmark test lost a vertex pushed
//! into such a settled edge list.)
//!
//! While this mutator's barrier is off (no mark running), the barrier is
//! one predictable branch on `borrow_mut`, and its release loads the claim
//! word (and clears it once per cycle in which the cell was settled).
//!
//! Thread safety: `GcCell` loads and stores atomically and is `Sync` when
//! `T: Send` (so objects holding `GcCell`s can be shared between threads
//! through roots). `GcRefCell` has an atomic borrow flag and is `Sync` when `T` is
//! `Send + Sync`; a conflicting borrow panics (as `RefCell`'s does) instead
//! of blocking.
//!
//! Invariant: the value is written only through `set` / `GcRefMut`, each
//! preceded by the barrier.

use crate::gc::Invariant;
use crate::scope::Scope;
use crate::trace::{Rebrand, Trace};
use spanheap_gc::MutatorCore;
use spanheap_gc::Tracer;
use spanheap_gc::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use spanheap_gc::sync::{AtomicCell, atomic_cell_load_raw};
use std::cell::UnsafeCell; // sync-shim: allow (GcRefCell lends references for a guard's life, which loom's closure-scoped cell cannot; its borrow flag is a shim atomic)
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A mutable cell for `Copy` values inside a GC object; writes take the
/// scope and run the write barrier. Loads and stores are atomic (a plain
/// load/store for values of 8 bytes or less on x86-64 and AArch64), so the
/// cell is `Sync` when `T: Send` and the collector may read it while a
/// mutator writes.
pub struct GcCell<'gc, T> {
    value: AtomicCell<T>,
    _brand: Invariant<'gc>,
}

/// Whether a `GcCell<T>` holding GC pointers can be read by the marker
/// with one native atomic load (sizes 0, 1, 2, 4, 8 with matching
/// alignment: `Gc`, `Option<Gc>`, small enums of them).
const fn lock_free<T>() -> bool {
    let (s, a) = (std::mem::size_of::<T>(), std::mem::align_of::<T>());
    s == 0 || ((s == 1 || s == 2 || s == 4 || s == 8) && a >= s)
}

impl<'gc, T: Copy + Trace> GcCell<'gc, T> {
    /// A new cell (not yet in the heap, so no barrier is needed).
    ///
    /// A cell whose value holds GC pointers must fit one machine word
    /// (`Gc`, `Option<Gc>`, small enums of them), so that the collector
    /// reads it with one atomic load while mutators store; a bigger value
    /// is a compile error — use a [`GcRefCell`], or one cell per pointer.
    pub fn new(v: T) -> Self {
        const {
            assert!(
                T::NO_GC || lock_free::<T>(),
                "GcCell<T> with GC pointers needs T of at most one word (use GcRefCell)"
            )
        };
        GcCell {
            value: AtomicCell::new(v),
            _brand: PhantomData,
        }
    }

    /// The current value.
    #[inline(always)]
    pub fn get(&self) -> T {
        self.value.load()
    }

    /// Stores `v`, running the write barrier.
    #[inline(always)]
    pub fn set(&self, cx: &'gc Scope<'_>, v: T) {
        if !T::NO_GC
            && cx.barrier_active()
            // loom-tests broken variant: a store without the barrier.
            && !spanheap_gc::sync::broken::is("gccell_barrier_off")
        {
            // Swap, so that the value shaded is the one actually
            // overwritten even if another thread stores concurrently.
            let old = self.value.swap(v);
            cx.barrier_slow(&old, &v);
        } else {
            self.value.store(v);
        }
    }

    /// Stores `v` and returns the old value.
    pub fn replace(&self, cx: &'gc Scope<'_>, v: T) -> T {
        let old = self.value.swap(v);
        if !T::NO_GC && cx.barrier_active() {
            cx.barrier_slow(&old, &v);
        }
        old
    }
}

// SAFETY: reports the current value's pointers, read with one atomic load
// (a mutator may store concurrently; the barrier shades the value it
// overwrites and the one it stores).
unsafe impl<T: Trace> Trace for GcCell<'_, T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if T::NO_GC {
            return;
        }
        // SAFETY: values enter a GcCell only through `new`/`set`/`replace`,
        // which require `T: Copy` (module invariant), so a bitwise copy is
        // a valid value; `new` checked that the cell is lock-free.
        match unsafe { atomic_cell_load_raw(&self.value) } {
            Some(v) => (*v).trace(t),
            None => unreachable!("GcCell::new admits lock-free values only"),
        }
    }
}

// SAFETY: renames the brand of the cell and of its contents.
unsafe impl<T: Rebrand> Rebrand for GcCell<'_, T> {
    type At<'gc> = GcCell<'gc, T::At<'gc>>;
}

impl<T: Copy + Trace + fmt::Debug> fmt::Debug for GcCell<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GcCell").field(&self.get()).finish()
    }
}

const WRITER: isize = -1;

/// States of `GcRefCell::scanned` for cycle `c`: `c << 2 | state`.
const DONE: u64 = 0;
const CLAIMED: u64 = 1;
const OWED: u64 = 2;

#[inline(always)]
fn st(c: u64, state: u64) -> u64 {
    (c << 2) | state
}

/// A `RefCell` inside a GC object: `borrow_mut` takes the scope and runs
/// the write barrier over the whole contents first.
pub struct GcRefCell<'gc, T> {
    /// 0: free; n > 0: n readers; -1: one writer.
    flag: AtomicIsize,
    /// The scan claim of the current mark (see the module docs):
    /// `cycle << 2 | DONE` once the contents were scanned in mark `cycle`
    /// (by a marker, or shaded by a writer's barrier); `| CLAIMED` while
    /// one thread does it; `| OWED` while a writer holds the cell that a
    /// marker skipped. Any other value: not yet this cycle.
    scanned: AtomicU64,
    value: UnsafeCell<T>,
    /// Under loom only: a loom cell standing for `value` in the model (a
    /// writer's borrow writes it, a marker's scan reads it), so that loom
    /// reports a marker reading contents that a writer may be changing.
    #[cfg(loom)]
    race: spanheap_gc::sync::UnsafeCell<()>,
    _brand: Invariant<'gc>,
}

// SAFETY: the atomic flag gives readers shared and the writer exclusive
// access (as RwLock does), so sharing needs T: Send + Sync.
unsafe impl<T: Send + Sync> Sync for GcRefCell<'_, T> {}

/// A shared borrow of a [`GcRefCell`].
pub struct GcRef<'b, T> {
    flag: &'b AtomicIsize,
    value: &'b T,
}

/// An exclusive borrow of a [`GcRefCell`].
pub struct GcRefMut<'b, T: Trace> {
    flag: &'b AtomicIsize,
    scanned: &'b AtomicU64,
    value: &'b mut T,
    core: &'b MutatorCore,
    #[cfg(loom)]
    race: &'b spanheap_gc::sync::UnsafeCell<()>,
}

/// A borrow that conflicts with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowError;

impl fmt::Display for BorrowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GcRefCell is already borrowed in a conflicting way")
    }
}
impl std::error::Error for BorrowError {}

impl<'gc, T: Trace> GcRefCell<'gc, T> {
    /// A new cell.
    pub fn new(v: T) -> Self {
        GcRefCell {
            flag: AtomicIsize::new(0),
            scanned: AtomicU64::new(0),
            value: UnsafeCell::new(v),
            #[cfg(loom)]
            race: spanheap_gc::sync::UnsafeCell::new(()),
            _brand: PhantomData,
        }
    }

    /// Borrows the contents shared, or fails if they are mutably borrowed.
    pub fn try_borrow(&self) -> Result<GcRef<'_, T>, BorrowError> {
        let mut f = self.flag.load(Ordering::Relaxed);
        loop {
            if f < 0 || f == isize::MAX {
                return Err(BorrowError);
            }
            match self
                .flag
                .compare_exchange_weak(f, f + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(v) => f = v,
            }
        }
        Ok(GcRef {
            flag: &self.flag,
            // SAFETY: the flag now counts us as a reader: no writer exists
            // until we drop.
            value: unsafe { &*self.value.get() },
        })
    }

    /// Borrows the contents shared.
    ///
    /// # Panics
    /// If they are mutably borrowed.
    #[track_caller]
    pub fn borrow(&self) -> GcRef<'_, T> {
        match self.try_borrow() {
            Ok(r) => r,
            Err(_) => panic!("GcRefCell already mutably borrowed"),
        }
    }

    /// Borrows the contents exclusively, running the write barrier, or
    /// fails if they are borrowed.
    pub fn try_borrow_mut(&self, cx: &'gc Scope<'_>) -> Result<GcRefMut<'_, T>, BorrowError> {
        // SeqCst: the marker claims `scanned` and then reads `flag`; we
        // take `flag` and then read `scanned` (Dekker): one of the two
        // sees the other.
        if self
            .flag
            .compare_exchange(0, WRITER, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return Err(BorrowError);
        }
        let core = cx.core();
        if let Some(c) = core.marking_cycle().filter(|_| !T::NO_GC) {
            self.scan_before_write(c, core);
        }
        core.borrow_opened();
        // The model's write access begins (see `race`).
        #[cfg(loom)]
        self.race.with_mut(|_| ());
        Ok(GcRefMut {
            flag: &self.flag,
            scanned: &self.scanned,
            // SAFETY: the flag is WRITER: we have exclusive access, and no
            // marker reads the contents any more this cycle (the claim is
            // settled, or no mark is running for this mutator).
            value: unsafe { &mut *self.value.get() },
            core,
            #[cfg(loom)]
            race: &self.race,
        })
    }

    /// Scan before first write: the first writer of a mark shades the
    /// contents (the deletion half of the barrier for everything it may
    /// remove) and settles the claim, unless a marker scanned them
    /// already; if a marker holds the claim, waits for it (it only traces
    /// the contents). Called holding the write flag.
    #[cold]
    fn scan_before_write(&self, c: u64, core: &MutatorCore) {
        loop {
            let e = self.scanned.load(Ordering::SeqCst);
            if e == st(c, DONE) {
                return;
            }
            if e == st(c, CLAIMED) {
                spanheap_gc::sync::hint::spin_loop();
                spanheap_gc::sync::thread::yield_now();
                continue;
            }
            if e == st(c, OWED) {
                // A marker claimed the cell after we took the flag, saw us
                // and counted a debt: only the flag holder moves the cell
                // out of OWED, so shade the contents and take the debt
                // over (it is paid when our buffer is flushed).
                // SAFETY: we hold the write flag; markers skip OWED.
                shade_all(core, unsafe { &*self.value.get() });
                // SAFETY: `core` is our scope's mutator; we hold the flag,
                // shaded the contents and leave OWED just below.
                unsafe { core.take_owed_cell() };
                self.scanned.store(st(c, DONE), Ordering::Release);
                return;
            }
            // Stale: claim the scan. A marker that finds the claim skips
            // the cell; that is safe without a debt because it can only
            // happen before the termination round that flushes our buffer
            // (a round in which any marker scans is not clean; see
            // `spanheap_gc::collector`).
            if self
                .scanned
                .compare_exchange(e, st(c, CLAIMED), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                // SAFETY: we hold the write flag and the claim.
                shade_all(core, unsafe { &*self.value.get() });
                self.scanned.store(st(c, DONE), Ordering::Release);
                return;
            }
        }
    }

    /// Borrows the contents exclusively, running the write barrier.
    ///
    /// # Panics
    /// If they are borrowed.
    #[track_caller]
    pub fn borrow_mut(&self, cx: &'gc Scope<'_>) -> GcRefMut<'_, T> {
        match self.try_borrow_mut(cx) {
            Ok(r) => r,
            Err(_) => panic!("GcRefCell already borrowed"),
        }
    }
}

impl<T> Deref for GcRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}
impl<T> Drop for GcRef<'_, T> {
    fn drop(&mut self) {
        self.flag.fetch_sub(1, Ordering::Release);
    }
}
impl<T: Trace> Deref for GcRefMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}
impl<T: Trace> DerefMut for GcRefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}
impl<T: Trace> Drop for GcRefMut<'_, T> {
    fn drop(&mut self) {
        // The model's write access ends (see `GcRefCell::race`).
        #[cfg(loom)]
        self.race.with_mut(|_| ());
        if let Some(c) = self.core.marking_cycle().filter(|_| !T::NO_GC) {
            let pre_s = self.core.before_clean_point();
            let mut shaded = false;
            loop {
                let e = self.scanned.load(Ordering::SeqCst);
                if e == st(c, CLAIMED) {
                    // A marker's tentative claim: it will see our flag and
                    // mark the cell OWED.
                    spanheap_gc::sync::hint::spin_loop();
                    continue;
                }
                // Before this mutator's clean point, what the borrow
                // inserted may be only on its stack: shade it all. A cell
                // not yet scanned this cycle (the borrow began before the
                // barrier, or a marker skipped it) is shaded now too.
                if !shaded && (pre_s || e != st(c, DONE)) {
                    shade_all(self.core, &*self.value);
                    shaded = true;
                }
                if e == st(c, DONE) {
                    break;
                }
                if self
                    .scanned
                    .compare_exchange(e, st(c, DONE), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    if e == st(c, OWED) {
                        // SAFETY: the marker counted the debt; we hold the
                        // flag, the contents are in our buffer, and this
                        // CAS moved the cell out of OWED.
                        unsafe { self.core.take_owed_cell() };
                    }
                    break;
                }
            }
        } else if !T::NO_GC && self.scanned.load(Ordering::Relaxed) != 0 {
            // Our barrier is off, so the mark running now (if any) has not
            // reached T: no marker has read this cell in it. But a writer
            // whose barrier is already on may have settled it for that
            // mark (`DONE`) before our write, and markers would then never
            // read what we stored. Unsettle it (any other state is from a
            // finished mark; 0 is stale for every cycle). Ordered before
            // the markers' reads by our next acknowledgement (A), which T
            // waits for.
            self.scanned.store(0, Ordering::Release);
        }
        self.core.borrow_closed();
        self.flag.store(0, Ordering::Release);
    }
}

/// Shades every GC pointer `value` holds into `core`'s barrier buffer.
/// `core` must be the mutator of a scope open on this thread (callers
/// hold a borrow of that scope).
pub(crate) fn shade_all<T: Trace>(core: &MutatorCore, value: &T) {
    // A panicking `trace` would leave pointers unshaded: abort instead.
    let guard = spanheap_gc::TracePanicGuard(std::any::type_name::<T>);
    // SAFETY: `core` is the mutator of a scope open on this thread (the
    // callers' borrow of the scope proves it), inside that scope.
    unsafe { core.shade_with(|r| value.trace(r)) };
    guard.disarm();
}

// SAFETY: reports the contents, read only when no writer can run: a
// marker claims the cell for its cycle first (and leaves it OWED if a
// writer holds the flag — the writer shades the contents when its borrow
// ends); the checkmark walk (world stopped) skips cells a parked writer
// holds; the barrier's recorder runs on the writer's own borrow.
unsafe impl<T: Trace> Trace for GcRefCell<'_, T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(c) = t.marking_cycle() {
            let e = self.scanned.load(Ordering::Acquire);
            if e >> 2 == c {
                return; // scanned, being scanned, or owed by its writer
            }
            if self
                .scanned
                .compare_exchange(e, st(c, CLAIMED), Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                return; // another thread took the claim
            }
            if self.flag.load(Ordering::SeqCst) == WRITER
                // loom-tests broken variant: the marker ignores the writer.
                && !spanheap_gc::sync::broken::is("refcell_marker_ignores_writer")
            {
                // A writer holds the contents: it shades them when its
                // borrow ends. Count the debt before it is visible.
                t.owe_cell();
                self.scanned.store(st(c, OWED), Ordering::SeqCst);
                return;
            }
            // The model's read access, around the real one.
            #[cfg(loom)]
            self.race.with(|_| ());
            // SAFETY: claimed, and no writer: a writer arriving now waits
            // for the claim to settle before touching the contents.
            unsafe { &*self.value.get() }.trace(t);
            #[cfg(loom)]
            self.race.with(|_| ());
            self.scanned.store(st(c, DONE), Ordering::Release);
        } else if t.is_checkmark() {
            if self.flag.load(Ordering::Acquire) == WRITER {
                return;
            }
            // SAFETY: the world is stopped and no writer holds the cell.
            unsafe { &*self.value.get() }.trace(t);
        } else {
            // SAFETY: the recorder runs on behalf of the writer that holds
            // the flag (or of a borrow that cannot conflict: see shade_all).
            unsafe { &*self.value.get() }.trace(t);
        }
    }
}

// SAFETY: renames the brand of the cell and of its contents.
unsafe impl<T: Rebrand> Rebrand for GcRefCell<'_, T> {
    type At<'gc> = GcRefCell<'gc, T::At<'gc>>;
}

impl<T: Trace + fmt::Debug> fmt::Debug for GcRefCell<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_borrow() {
            Ok(v) => f.debug_tuple("GcRefCell").field(&*v).finish(),
            Err(_) => f.write_str("GcRefCell(<borrowed>)"),
        }
    }
}

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
//!   maps): `borrow_mut` shades everything the contents point to before
//!   the first write ("scan before first write", object-level snapshot).
//!
//! While no concurrent mark runs — always, in this version, where marking
//! stops the world — the barrier is one predictable branch.
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
use spanheap_gc::Tracer;
use spanheap_gc::sync::AtomicCell;
use spanheap_gc::sync::atomic::{AtomicIsize, Ordering};
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

impl<'gc, T: Copy + Trace> GcCell<'gc, T> {
    /// A new cell (not yet in the heap, so no barrier is needed).
    pub fn new(v: T) -> Self {
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
        if !T::NO_GC && cx.barrier_active() {
            cx.barrier_slow(&self.get(), &v);
        }
        self.value.store(v);
    }

    /// Stores `v` and returns the old value.
    pub fn replace(&self, cx: &'gc Scope<'_>, v: T) -> T {
        if !T::NO_GC && cx.barrier_active() {
            cx.barrier_slow(&self.get(), &v);
        }
        self.value.swap(v)
    }
}

// SAFETY: reports the current value's pointers.
unsafe impl<T: Trace> Trace for GcCell<'_, T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        // SAFETY: the collector traces with the world stopped, so no store
        // to the cell runs concurrently. (Concurrent marking will read it
        // with an atomic load instead.)
        unsafe { &*self.value.as_ptr() }.trace(t)
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

/// A `RefCell` inside a GC object: `borrow_mut` takes the scope and runs
/// the write barrier over the whole contents first.
pub struct GcRefCell<'gc, T> {
    /// 0: free; n > 0: n readers; -1: one writer.
    flag: AtomicIsize,
    value: UnsafeCell<T>,
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
pub struct GcRefMut<'b, T> {
    flag: &'b AtomicIsize,
    value: &'b mut T,
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
            value: UnsafeCell::new(v),
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
        if self
            .flag
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(BorrowError);
        }
        // SAFETY: the flag is WRITER: we have exclusive access.
        let value = unsafe { &mut *self.value.get() };
        if !T::NO_GC && cx.barrier_active() {
            cx.barrier_slow_all(&*value);
        }
        Ok(GcRefMut {
            flag: &self.flag,
            value,
        })
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
impl<T> Deref for GcRefMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}
impl<T> DerefMut for GcRefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}
impl<T> Drop for GcRefMut<'_, T> {
    fn drop(&mut self) {
        self.flag.store(0, Ordering::Release);
    }
}

// SAFETY: reports the contents. The collector runs with the world stopped,
// so no borrow is active while it reads them.
unsafe impl<T: Trace> Trace for GcRefCell<'_, T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        // SAFETY: world stopped (see above): no GcRefMut exists.
        unsafe { &*self.value.get() }.trace(t)
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

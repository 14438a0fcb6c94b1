//! Persistent handles: [`Root`] (keeps its object alive) and [`Weak`]
//! (does not). Both live outside scopes and outside the heap, can move
//! between threads when the object's type allows it, and give back a
//! branded [`Gc`] inside a scope of their heap.
//!
//! A handle stores its object's address in a slot of the collector's root
//! or weak table (`spanheap_gc::slots`), and an `Arc` of the collector, so
//! the heap outlives every handle. The object's type is stored with its
//! brand erased (`T::At<'static>`, see [`Rebrand`]) and re-branded with the
//! scope's borrow on access.
//!
//! Invariants:
//! - a `Root`'s slot holds its object's address for the `Root`'s whole
//!   life, so the collector marks the object every cycle;
//! - a `Weak`'s slot holds the address until the collector finds the
//!   object unmarked at the end of a mark, and 0 afterwards; the slot is
//!   cleared before the sweep that frees the object starts (a clone
//!   copies the slot under the table lock the clearing holds, so it is
//!   cleared by the same mark);
//! - a `Root` dropped during a mark keeps its slot (and object) until the
//!   mark ends; a `Root` created during a mark shades its object (its
//!   creator's barrier), because the root scan may already have passed
//!   the slot.

use crate::gc::Gc;
use crate::scope::Scope;
use crate::trace::Rebrand;
use spanheap_gc::Collector;
use spanheap_gc::Slot;
use spanheap_gc::sync::Arc;
use spanheap_gc::sync::atomic::Ordering;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

#[cold]
#[track_caller]
fn wrong_heap(what: &str) -> ! {
    panic!("spanheap: {what} used with a scope of a different heap than the one it belongs to")
}

/// A handle that keeps a GC object alive until dropped. `R` is the
/// object's type with its brand erased, e.g. `Root<Node<'static>>`.
pub struct Root<R: Rebrand> {
    addr: usize,
    slot: Slot,
    c: Arc<Collector>,
    _type: PhantomData<R>,
}

// SAFETY: another thread can reach the object through the root and read it
// (needs Sync) and the object's Drop can run on any thread (alloc requires
// Send); the slot is an atomic in a table that lives as long as `c`.
unsafe impl<R: Rebrand + Send + Sync> Send for Root<R> {}
// SAFETY: as above; `&Root` only reads.
unsafe impl<R: Rebrand + Send + Sync> Sync for Root<R> {}

impl<R: Rebrand> Root<R> {
    pub(crate) fn new(c: &Arc<Collector>, addr: usize) -> Self {
        Root {
            addr,
            slot: c.roots().insert(addr),
            c: c.clone(),
            _type: PhantomData,
        }
    }

    /// The object, as a pointer branded with `cx`'s borrow.
    ///
    /// # Panics
    /// If `cx` is a scope of another heap.
    #[inline]
    pub fn get<'gc>(&self, cx: &'gc Scope<'_>) -> Gc<'gc, R::At<'gc>> {
        if !Arc::ptr_eq(&self.c, cx.collector()) {
            wrong_heap("a Root");
        }
        // SAFETY: the root keeps the object allocated (module invariant),
        // `cx` is a scope of its heap (checked), and R::At<'gc> is the
        // object's type re-branded (Rebrand's contract: same layout).
        unsafe { Gc::from_ptr(NonNull::new_unchecked(self.addr as *mut R::At<'gc>)) }
    }

    /// Whether two roots hold the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.addr == b.addr
    }
}

impl<R: Rebrand> Clone for Root<R> {
    fn clone(&self) -> Self {
        Root::new(&self.c, self.addr)
    }
}

impl<R: Rebrand> Drop for Root<R> {
    fn drop(&mut self) {
        // SAFETY: the slot came from this collector's root table and is not
        // used again. During a mark it keeps its object until the mark
        // ends (the deletion barrier for roots).
        unsafe { self.c.remove_root(self.slot) };
    }
}

impl<R: Rebrand> fmt::Debug for Root<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root({:#x})", self.addr)
    }
}

/// A handle that does not keep its object alive: [`Weak::upgrade`] gives
/// the object while it lives, `None` once it was collected.
pub struct Weak<R: Rebrand> {
    slot: Slot,
    c: Arc<Collector>,
    _type: PhantomData<R>,
}

// SAFETY: as for Root.
unsafe impl<R: Rebrand + Send + Sync> Send for Weak<R> {}
// SAFETY: as for Root.
unsafe impl<R: Rebrand + Send + Sync> Sync for Weak<R> {}

impl<R: Rebrand> Weak<R> {
    pub(crate) fn new(c: &Arc<Collector>, addr: usize) -> Self {
        Weak {
            slot: c.weaks().insert(addr),
            c: c.clone(),
            _type: PhantomData,
        }
    }

    fn load(&self) -> usize {
        // SAFETY: the table lives as long as `self.c`.
        unsafe { self.slot.get() }.load(Ordering::Acquire)
    }

    /// The object, if it has not been collected.
    ///
    /// # Panics
    /// If `cx` is a scope of another heap.
    pub fn upgrade<'gc>(&self, cx: &'gc Scope<'_>) -> Option<Gc<'gc, R::At<'gc>>> {
        if !Arc::ptr_eq(&self.c, cx.collector()) {
            wrong_heap("a Weak");
        }
        // While this mutator's barrier is on, the collector marks the
        // target (under the lock that also orders the clearing of weak
        // slots at mark termination): the pointer is about to be on a
        // mutator stack, where no mark can see it (Go's
        // `weak.Pointer.Value` shades its target the same way).
        // SAFETY: the table lives as long as `self.c`.
        let a = self
            .c
            .load_weak(unsafe { self.slot.get() }, cx.barrier_active());
        let p = NonNull::new(a as *mut R::At<'gc>)?;
        // SAFETY: a non-zero weak slot means the object survived every
        // mark since the Weak was made (module invariant), so it is
        // allocated; `cx` belongs to its heap; the type is re-branded.
        Some(unsafe { Gc::from_ptr(p) })
    }

    /// Whether the object has been collected.
    pub fn is_dead(&self) -> bool {
        self.load() == 0
    }
}

impl<R: Rebrand> Clone for Weak<R> {
    fn clone(&self) -> Self {
        if spanheap_gc::sync::broken::is("weak_clone_unlocked") {
            // loom-tests broken variant: load the address, then insert it,
            // so a clearing can run in between.
            return Weak::new(&self.c, self.load());
        }
        // The copy is made under the weak table's lock, which the
        // clearing at mark termination holds: it is cleared with the
        // original if the target dies (a load then an insert could copy
        // an address the clearing had just found dead).
        // SAFETY: our slot came from this collector's weak table and is
        // owned by `self`.
        let slot = unsafe { self.c.weaks().insert_copy(self.slot) };
        Weak {
            slot,
            c: self.c.clone(),
            _type: PhantomData,
        }
    }
}

impl<R: Rebrand> Drop for Weak<R> {
    fn drop(&mut self) {
        // SAFETY: the slot came from this collector's weak table.
        unsafe { self.c.weaks().remove(self.slot) };
    }
}

impl<R: Rebrand> fmt::Debug for Weak<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.load() {
            0 => f.write_str("Weak(<dead>)"),
            a => write!(f, "Weak({a:#x})"),
        }
    }
}

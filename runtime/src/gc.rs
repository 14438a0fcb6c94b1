//! `Gc<'gc, T>`: a pointer to a garbage-collected object, valid inside the
//! scope whose borrow `'gc` is.
//!
//! `'gc` is a shared borrow of the [`Scope`](crate::Scope) the pointer came
//! from, so the compiler proves that no `Gc` outlives its scope or lives
//! across [`Scope::safepoint`](crate::Scope::safepoint) (which takes the
//! scope by `&mut`). `'gc` is **invariant**: pointers of two different
//! scopes cannot be unified into one type, so they cannot be mixed (see
//! `docs/safety.md`).
//!
//! Invariants:
//! - `ptr` points at an initialised `T` inside an object of the heap of the
//!   scope `'gc` borrows, allocated by `Scope::alloc`;
//! - that object stays allocated while `'gc` lasts: either it is reachable
//!   from a root, or the scope (which prevents any collection of its heap
//!   until it ends or passes a safepoint) holds it.

use crate::trace::{Rebrand, Trace};
use spanheap_gc::Tracer;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// Makes a type invariant in `'a`.
pub(crate) type Invariant<'a> = PhantomData<fn(&'a ()) -> &'a ()>;

/// A pointer to a garbage-collected `T`, `Copy`, valid for the scope borrow
/// `'gc`. Created by [`Scope::alloc`](crate::Scope::alloc), read from
/// other objects' fields, or from a [`Root`](crate::Root).
pub struct Gc<'gc, T: 'gc> {
    ptr: NonNull<T>,
    _brand: PhantomData<(&'gc T, Invariant<'gc>)>,
}

// SAFETY: a Gc is a shared reference to T (the collector never frees T
// while 'gc lasts, and mutation goes through cells that are Sync only if
// they synchronise), so it may cross threads exactly when &T may.
unsafe impl<T: Sync> Send for Gc<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Gc<'_, T> {}

impl<T> Clone for Gc<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Gc<'_, T> {}

impl<'gc, T: 'gc> Gc<'gc, T> {
    /// # Safety
    /// The module invariants hold for `ptr` and `'gc`.
    #[inline(always)]
    pub(crate) unsafe fn from_ptr(ptr: NonNull<T>) -> Self {
        Gc {
            ptr,
            _brand: PhantomData,
        }
    }

    /// The object's address (the value, past any header).
    #[inline(always)]
    pub fn as_ptr(this: Self) -> *const T {
        this.ptr.as_ptr()
    }

    /// A reference to the value for the whole scope borrow (unlike `Deref`,
    /// not tied to this copy of the pointer). An associated function, so it
    /// never shadows a method of `T`.
    #[inline(always)]
    pub fn get_ref(this: Self) -> &'gc T {
        // SAFETY: module invariants: the value is initialised and stays
        // allocated while 'gc lasts; mutation only through cells.
        unsafe { this.ptr.as_ref() }
    }

    /// Whether two pointers point at the same object.
    #[inline(always)]
    pub fn ptr_eq(a: Self, b: Self) -> bool {
        a.ptr == b.ptr
    }
}

impl<T> Deref for Gc<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: as in as_ref.
        unsafe { self.ptr.as_ref() }
    }
}

// SAFETY: reports the pointer itself; the object's own trace function
// (from its header) reports what is inside it when it is scanned.
unsafe impl<T> Trace for Gc<'_, T> {
    const NO_GC: bool = false;
    #[inline(always)]
    fn trace(&self, t: &mut Tracer<'_>) {
        t.edge(self.ptr.as_ptr() as usize)
    }
}

// SAFETY: renames the brand of the pointer and of the pointee.
unsafe impl<T: Rebrand> Rebrand for Gc<'_, T> {
    type At<'gc> = Gc<'gc, T::At<'gc>>;
}

impl<T: fmt::Debug> fmt::Debug for Gc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
impl<T: fmt::Display> fmt::Display for Gc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
impl<T> fmt::Pointer for Gc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&self.ptr, f)
    }
}
impl<T: PartialEq> PartialEq for Gc<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl<T: Eq> Eq for Gc<'_, T> {}
impl<T: PartialOrd> PartialOrd for Gc<'_, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}
impl<T: Ord> Ord for Gc<'_, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}
impl<T: Hash> Hash for Gc<'_, T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

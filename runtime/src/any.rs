//! `GcAny<'gc>`: a pointer to a garbage-collected object of any type, with
//! checked downcasts — the heterogeneous value `Gc<dyn Any>` would be,
//! for dynamically typed containers (a scripting language's values, a
//! property bag, a cache of mixed objects).
//!
//! A `GcAny` is two words: the object's address and a static descriptor
//! of its type (the `TypeId` of the type with its brand erased, and its
//! name), like a `dyn Any` fat pointer. It traces as the `Gc` it came
//! from, so it keeps the object alive exactly as that `Gc` would, and
//! [`GcAny::downcast`] gives the typed `Gc` back when the type matches.
//! Being two words, it is stored in a `GcRefCell` (or an immutable field),
//! not a `GcCell` (whose GC-pointer values must be one word).
//!
//! Invariants: `addr` is the value address of a live object of the heap
//! of the scope `'gc` borrows, whose type `T` satisfies
//! `TypeId::of::<T::At<'static>>() == (ty.id)()` (so `T` is the type
//! named by `ty` up to its brand); the module invariants of `Gc` hold for
//! it as for the `Gc<'gc, T>` it was made from.

use crate::gc::{Gc, Invariant};
use crate::trace::{Rebrand, Trace};
use spanheap_gc::Tracer;
use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The type of the object a [`GcAny`] points at.
struct AnyType {
    /// `TypeId` of the type with its brand erased (`T::At<'static>`).
    id: fn() -> TypeId,
    /// `std::any::type_name` of the type.
    name: fn() -> &'static str,
}

/// One descriptor per type.
struct Describe<T>(PhantomData<T>);

impl<T: Rebrand> Describe<T> {
    const TYPE: AnyType = AnyType {
        id: TypeId::of::<T::At<'static>>,
        name: std::any::type_name::<T>,
    };
}

/// A pointer to a garbage-collected object of any type, `Copy`, valid for
/// the scope borrow `'gc`; made from a [`Gc`] with `GcAny::from` (or
/// `.into()`), turned back into one with [`GcAny::downcast`].
///
/// ```
/// use spanheap::{Gc, GcAny, Heap};
/// let heap = Heap::new().unwrap();
/// let mut m = heap.mutator();
/// m.scope(|cx| {
///     let values: Vec<GcAny<'_>> = vec![
///         cx.alloc(42u64).unwrap().into(),
///         cx.alloc(String::from("hi")).unwrap().into(),
///     ];
///     assert_eq!(*values[0].downcast::<u64>().unwrap(), 42);
///     assert!(values[1].downcast::<u64>().is_none());
///     assert_eq!(values[1].downcast::<String>().unwrap().as_str(), "hi");
/// });
/// ```
pub struct GcAny<'gc> {
    addr: NonNull<u8>,
    ty: &'static AnyType,
    _brand: PhantomData<(&'gc (), Invariant<'gc>)>,
}

impl Clone for GcAny<'_> {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for GcAny<'_> {}

// SAFETY: made only from `Gc<'gc, T>` with `T: Sync` (see `From`), which
// is itself `Send + Sync`; the descriptor is immutable static data.
unsafe impl Send for GcAny<'_> {}
// SAFETY: as above.
unsafe impl Sync for GcAny<'_> {}

impl<'gc, T> From<Gc<'gc, T>> for GcAny<'gc>
where
    T: Rebrand + Sync + 'gc,
{
    #[inline]
    fn from(g: Gc<'gc, T>) -> Self {
        GcAny {
            addr: NonNull::from(Gc::get_ref(g)).cast(),
            ty: &Describe::<T>::TYPE,
            _brand: PhantomData,
        }
    }
}

impl<'gc> GcAny<'gc> {
    /// Whether the object is a `T` (its brand aside).
    #[inline]
    pub fn is<T: Rebrand + 'gc>(self) -> bool {
        (self.ty.id)() == TypeId::of::<T::At<'static>>()
    }

    /// The typed pointer, if the object is a `T`.
    #[inline]
    pub fn downcast<T: Rebrand<At<'gc> = T> + 'gc>(self) -> Option<Gc<'gc, T>> {
        if !self.is::<T>() {
            return None;
        }
        // SAFETY: the object is a `T::At<'x>` for the brand 'x it was
        // allocated with (module invariant and the TypeId check, which
        // erases brands on both sides); `T::At<'gc> = T` is the same type
        // with the brand renamed to this scope's, the same layout
        // (Rebrand's contract), and `Gc`'s invariants held for the pointer
        // this one was made from, with the same 'gc.
        Some(unsafe { Gc::from_ptr(self.addr.cast::<T>()) })
    }

    /// The object's type name (`std::any::type_name`).
    pub fn type_name(self) -> &'static str {
        (self.ty.name)()
    }

    /// Whether two pointers point at the same object.
    #[inline]
    pub fn ptr_eq(a: Self, b: Self) -> bool {
        a.addr == b.addr
    }

    /// The object's address (the value, past any header).
    pub fn as_ptr(this: Self) -> *const u8 {
        this.addr.as_ptr()
    }
}

// SAFETY: reports the object's address, as the `Gc` it was made from
// would (`Tracer::edge` handles objects with and without a header).
unsafe impl Trace for GcAny<'_> {
    const NO_GC: bool = false;
    #[inline(always)]
    fn trace(&self, t: &mut Tracer<'_>) {
        t.edge(self.addr.as_ptr() as usize)
    }
}

// SAFETY: renames the brand; the pointee's type is fixed by the descriptor.
unsafe impl Rebrand for GcAny<'_> {
    type At<'gc> = GcAny<'gc>;
}

impl fmt::Debug for GcAny<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcAny<{}>({:p})", self.type_name(), self.addr)
    }
}

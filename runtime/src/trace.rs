//! `Trace`: how the collector finds the GC pointers inside a value, and
//! `Rebrand`: how a type's `'gc` brand is renamed (for [`Root`] and
//! [`Weak`], which live outside any scope).
//!
//! Go's compiler emits a pointer bitmap per type (`_type.GCData`); a Rust
//! library gets the same information from a trait, derived with
//! `#[derive(Trace)]`. The "contains no GC pointer" fact is the associated
//! constant [`Trace::NO_GC`], computed at compile time from the fields; it
//! decides the object's span class (noscan objects are never scanned).
//!
//! Invariants an implementation must keep (why the trait is `unsafe`):
//! 1. `trace` reports every `Gc` (and every value containing one) that is
//!    reachable from `self` without going through another `Gc`, by calling
//!    `Trace::trace` on it; missing one lets the collector free a
//!    reachable object.
//! 2. `NO_GC` is true only if no value of the type can contain a `Gc`.
//! 3. `trace` does not allocate in, or enter a scope of, any heap, and
//!    does not mutate `self` (it runs with the world stopped; in a later
//!    version, concurrently with mutators that may read the value).
//! 4. If the type implements `Drop`, the drop does not dereference any
//!    `Gc` (other objects may already be freed when it runs; the derive
//!    forbids `Drop` impls altogether).
//!
//! Deep values: marking follows `Gc` edges with an explicit grey stack,
//! but a value's own nesting — a list of `Box`es, a tree of `Vec`s inside
//! one object — is traced by recursion through these impls, one native
//! frame (or a few) per level. The impls of the containers a recursive
//! type can go through (`Box`, `Box<[T]>`, the std collections) therefore
//! run the nested `trace` through `stacker::maybe_grow`: when less than
//! [`RED_ZONE`] bytes of stack are left, the rest of the recursion runs on
//! a new [`STACK_SEGMENT`]-byte stack allocated on the heap (freed when it
//! returns). A 10-million-deep `Box` chain is traced this way on the
//! collector's 2 MiB threads (`tests/deep.rs`). Not an explicit work list:
//! a `trace` may hold a guard only while it runs (a `GcRefCell`'s claim),
//! so contents cannot be deferred past the call that reached them. A
//! hand-written impl that recurses through its own pointers should call
//! `Trace::trace` on a `Box` (or call `stacker` itself) for the same
//! protection. (Dropping such a value is Rust's drop glue, recursive for a
//! `Box` list: give the list type an iterative `Drop`.)
//!
//! [`Root`]: crate::Root
//! [`Weak`]: crate::Weak

use spanheap_gc::Tracer;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::num::*;
use std::rc::Rc;
use std::sync::Arc;

/// A type whose GC pointers the collector can find. Derive it with
/// `#[derive(Trace)]`; see the module docs for what an implementation
/// promises.
///
/// # Safety
/// See the module docs: every `Gc` must be reported, `NO_GC` must not lie,
/// `trace` must not allocate or mutate, and `Drop` must not dereference a
/// `Gc`.
pub unsafe trait Trace {
    /// True if no value of this type contains a `Gc`: objects of such types
    /// are allocated in noscan spans and never scanned.
    const NO_GC: bool = false;

    /// Reports the GC pointers in `self` (call `Trace::trace` on every
    /// field that may contain one).
    fn trace(&self, t: &mut Tracer<'_>);
}

/// Renames the `'gc` brand of a type: `Node<'a>::At<'gc> = Node<'gc>`.
/// [`Root`](crate::Root) and [`Weak`](crate::Weak) store a type with the
/// brand erased and give it back with the brand of the scope that reads
/// them. Derived together with `Trace`.
///
/// # Safety
/// `At<'gc>` must be `Self` with every brand lifetime replaced by `'gc`,
/// and nothing else changed (the layouts must be identical).
pub unsafe trait Rebrand {
    /// `Self` with brand `'gc`.
    type At<'gc>: Trace + Rebrand + 'gc;
}

/// Stack (bytes) a nested `trace` needs left on the current stack to run
/// there; below it, [`nested`] moves to a new segment. Far more than any
/// one level of a derived or std `trace` uses.
pub(crate) const RED_ZONE: usize = 64 << 10;

/// Size (bytes) of each stack segment [`nested`] allocates.
pub(crate) const STACK_SEGMENT: usize = 4 << 20;

std::thread_local! {
    /// The lowest stack address (plus [`RED_ZONE`]) at which [`nested`]
    /// may run `f` in place on this thread's current stack segment;
    /// `usize::MAX` while unknown (so the first call takes the slow path
    /// and learns it from `stacker`). Const-initialised, no destructor: one
    /// thread-local load.
    static LOW_WATER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Runs `f` — the `trace` of a container's contents, one level deeper in
/// a value — on this stack if [`RED_ZONE`] bytes are left, else on a new
/// heap-allocated stack segment (see the module docs). The fast path is
/// the address of a local (the stack pointer, give or take a frame)
/// compared with a thread-local bound.
#[inline(always)]
fn nested(f: impl FnOnce()) {
    // Loom runs its model threads on stacks of its own, which neither this
    // cache nor stacker can see; its models' values are a few levels deep.
    if cfg!(loom) {
        return f();
    }
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    if sp > LOW_WATER.with(|l| l.get()) {
        f()
    } else {
        nested_slow(f)
    }
}

/// [`nested`] when the bound is unknown or reached: learn this segment's
/// bound from `stacker`, and run `f` on a new segment if the red zone is
/// reached. While `f` runs there, the bound is that of the new segment
/// (learnt at its first nested call); the old one is restored after.
#[cold]
#[inline(never)]
fn nested_slow(f: impl FnOnce()) {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    match stacker::remaining_stack() {
        Some(left) if left > RED_ZONE => {
            // `sp - left` is the segment's end (stacks grow down on every
            // target stacker supports but a few we do not build for);
            // keep RED_ZONE above it.
            LOW_WATER.with(|l| l.set((sp - left).saturating_add(RED_ZONE)));
            f()
        }
        Some(_) => {
            /// Puts the outer segment's bound back, also if `f` unwinds.
            struct Restore(usize);
            impl Drop for Restore {
                fn drop(&mut self) {
                    LOW_WATER.with(|l| l.set(self.0));
                }
            }
            let _outer = Restore(LOW_WATER.with(|l| l.replace(usize::MAX)));
            stacker::grow(STACK_SEGMENT, f);
        }
        // The stack's extent is unknown on this platform: let stacker
        // decide (it then never grows).
        None => stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, f),
    }
}

/// Types without GC pointers whose brand is nothing.
macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: no GC pointer can be inside (NO_GC), nothing to report.
        unsafe impl Trace for $t {
            const NO_GC: bool = true;
            #[inline(always)]
            fn trace(&self, _t: &mut Tracer<'_>) {}
        }
        // SAFETY: the type has no lifetime.
        unsafe impl Rebrand for $t {
            type At<'gc> = $t;
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    Box<str>,
    std::path::PathBuf,
    std::ffi::OsString,
    std::ffi::CString,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    NonZeroU8,
    NonZeroU16,
    NonZeroU32,
    NonZeroU64,
    NonZeroU128,
    NonZeroUsize,
    NonZeroI8,
    NonZeroI16,
    NonZeroI32,
    NonZeroI64,
    NonZeroI128,
    NonZeroIsize,
    std::sync::atomic::AtomicBool,
    std::sync::atomic::AtomicU8,
    std::sync::atomic::AtomicU16,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicI8,
    std::sync::atomic::AtomicI16,
    std::sync::atomic::AtomicI32,
    std::sync::atomic::AtomicI64,
    std::sync::atomic::AtomicIsize,
);

// SAFETY: a 'static reference cannot point into a GC heap (objects live
// only as long as a scope borrow), so there is nothing to report.
unsafe impl<T: ?Sized + Sync + 'static> Trace for &'static T {
    const NO_GC: bool = true;
    #[inline(always)]
    fn trace(&self, _t: &mut Tracer<'_>) {}
}

// Containers whose contents are traced.

// SAFETY: reports every element.
unsafe impl<T: Trace> Trace for Box<T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !T::NO_GC {
            nested(|| (**self).trace(t))
        }
    }
}

// SAFETY: reports every element.
unsafe impl<T: Trace> Trace for Box<[T]> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !T::NO_GC {
            nested(|| self.iter().for_each(|x| x.trace(t)))
        }
    }
}

// SAFETY: reports the contents of the variant that is present.
unsafe impl<T: Trace> Trace for Option<T> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(x) = self {
            x.trace(t)
        }
    }
}

// SAFETY: reports the contents of the variant that is present.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    const NO_GC: bool = T::NO_GC && E::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        match self {
            Ok(x) => x.trace(t),
            Err(e) => e.trace(t),
        }
    }
}

// SAFETY: reports every element.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !T::NO_GC {
            self.iter().for_each(|x| x.trace(t))
        }
    }
}

macro_rules! seq {
    ($($c:ident),*) => {$(
        // SAFETY: reports every element.
        unsafe impl<T: Trace> Trace for $c<T> {
            const NO_GC: bool = T::NO_GC;
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                if !T::NO_GC {
                    nested(|| self.iter().for_each(|x| x.trace(t)))
                }
            }
        }
        // SAFETY: renames the element's brand only.
        unsafe impl<T: Rebrand> Rebrand for $c<T> {
            type At<'gc> = $c<T::At<'gc>>;
        }
    )*};
}
seq!(Vec, VecDeque, LinkedList, BTreeSet, BinaryHeap);

// SAFETY: reports every element.
unsafe impl<T: Trace, S: BuildHasher + 'static> Trace for HashSet<T, S> {
    const NO_GC: bool = T::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !T::NO_GC {
            nested(|| self.iter().for_each(|x| x.trace(t)))
        }
    }
}

// SAFETY: reports every key and value.
unsafe impl<K: Trace, V: Trace, S: BuildHasher + 'static> Trace for HashMap<K, V, S> {
    const NO_GC: bool = K::NO_GC && V::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !(K::NO_GC && V::NO_GC) {
            nested(|| {
                for (k, v) in self {
                    k.trace(t);
                    v.trace(t);
                }
            })
        }
    }
}

// SAFETY: reports every key and value.
unsafe impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    const NO_GC: bool = K::NO_GC && V::NO_GC;
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if !(K::NO_GC && V::NO_GC) {
            nested(|| {
                for (k, v) in self {
                    k.trace(t);
                    v.trace(t);
                }
            })
        }
    }
}

// SAFETY: renames the brands of the parameters only.
unsafe impl<T: Rebrand> Rebrand for Box<T> {
    type At<'gc> = Box<T::At<'gc>>;
}
// SAFETY: as above.
unsafe impl<T: Rebrand> Rebrand for Option<T> {
    type At<'gc> = Option<T::At<'gc>>;
}
// SAFETY: as above.
unsafe impl<T: Rebrand, E: Rebrand> Rebrand for Result<T, E> {
    type At<'gc> = Result<T::At<'gc>, E::At<'gc>>;
}
// SAFETY: as above.
unsafe impl<T: Rebrand, const N: usize> Rebrand for [T; N] {
    type At<'gc> = [T::At<'gc>; N];
}
// SAFETY: as above.
unsafe impl<T: Rebrand, S: BuildHasher + 'static> Rebrand for HashSet<T, S> {
    type At<'gc> = HashSet<T::At<'gc>, S>;
}
// SAFETY: as above.
unsafe impl<K: Rebrand, V: Rebrand, S: BuildHasher + 'static> Rebrand for HashMap<K, V, S> {
    type At<'gc> = HashMap<K::At<'gc>, V::At<'gc>, S>;
}
// SAFETY: as above.
unsafe impl<K: Rebrand, V: Rebrand> Rebrand for BTreeMap<K, V> {
    type At<'gc> = BTreeMap<K::At<'gc>, V::At<'gc>>;
}

macro_rules! tuple {
    ($(($($n:tt $t:ident),+))*) => {$(
        // SAFETY: reports every field.
        unsafe impl<$($t: Trace),+> Trace for ($($t,)+) {
            const NO_GC: bool = true $(&& $t::NO_GC)+;
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                $(self.$n.trace(t);)+
            }
        }
        // SAFETY: renames the fields' brands only.
        unsafe impl<$($t: Rebrand),+> Rebrand for ($($t,)+) {
            type At<'gc> = ($($t::At<'gc>,)+);
        }
    )*};
}
tuple! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}

// Shared or interior-mutable std types may hold values only if those
// values have no brand ('static): a `Cell<Option<Gc>>` would let a pointer
// be stored without the write barrier, and an `Rc<Gc>` could keep a
// pointer alive outside the heap.
macro_rules! static_only {
    ($($c:ident),*) => {$(
        // SAFETY: T: 'static, so T contains no Gc (a Gc is never 'static).
        unsafe impl<T: ?Sized + 'static> Trace for $c<T> {
            const NO_GC: bool = true;
            #[inline(always)]
            fn trace(&self, _t: &mut Tracer<'_>) {}
        }
        // SAFETY: no brand.
        unsafe impl<T: 'static> Rebrand for $c<T> {
            type At<'gc> = $c<T>;
        }
    )*};
}
static_only!(Cell, RefCell, Rc, Arc, PhantomData);

// SAFETY: T: 'static, so it contains no Gc.
unsafe impl<T: ?Sized + 'static> Trace for std::sync::Mutex<T> {
    const NO_GC: bool = true;
    #[inline(always)]
    fn trace(&self, _t: &mut Tracer<'_>) {}
}
// SAFETY: T: 'static, so it contains no Gc.
unsafe impl<T: ?Sized + 'static> Trace for std::sync::RwLock<T> {
    const NO_GC: bool = true;
    #[inline(always)]
    fn trace(&self, _t: &mut Tracer<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_gc_is_computed_from_contents() {
        const {
            assert!(<(u8, String, Vec<i64>)>::NO_GC);
            assert!(<HashMap<String, Box<[f64]>>>::NO_GC);
            assert!(<Option<Result<u32, String>>>::NO_GC);
            assert!(<[u64; 4]>::NO_GC);
            assert!(<Rc<Cell<u8>>>::NO_GC);
        }
    }
}

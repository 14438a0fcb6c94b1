//! `spanheap`: a garbage-collected heap for Rust, built the way Go's
//! runtime builds its own — size-class spans, per-mutator caches, mark bits
//! and sweep generations — behind a safe, typed API.
//!
//! ```
//! use spanheap::{Gc, GcCell, Heap, Root, Trace};
//!
//! #[derive(Trace)]
//! struct Node<'gc> {
//!     val: i64,
//!     next: GcCell<'gc, Option<Gc<'gc, Node<'gc>>>>,
//! }
//!
//! let heap = Heap::builder().gc_percent(100).memory_limit(2 << 30).build()?;
//! let mut m = heap.mutator(); // one per thread; owns an mcache
//! let keep: Root<Node<'static>> = m.scope(|cx| {
//!     let a = cx.alloc(Node { val: 1, next: GcCell::new(None) })?;
//!     let b = cx.alloc(Node { val: 2, next: GcCell::new(Some(a)) })?;
//!     a.next.set(cx, Some(b)); // a cycle; every store runs the barrier
//!     Ok::<_, spanheap::AllocError>(cx.root(b))
//! })?;
//! heap.collect();
//! m.scope(|cx| {
//!     let b = keep.get(cx);
//!     assert_eq!(b.val, 2);
//!     assert_eq!(b.next.get().unwrap().val, 1);
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | type | role |
//! |---|---|
//! | [`Heap`], [`HeapBuilder`] | a heap and its settings (GOGC, memory limit, debug modes) |
//! | [`Mutator`], [`Scope`] | a thread's allocation context; the scope in which `Gc`s live |
//! | [`Gc<'gc, T>`](Gc) | a `Copy` pointer branded with its scope's borrow |
//! | [`GcAny<'gc>`](GcAny) | a pointer to an object of any type, with checked downcasts (`Gc<dyn Any>`) |
//! | [`Root<T>`](Root), [`Weak<T>`](Weak) | persistent strong / weak handles |
//! | [`EphemeronMap`] | a weak-keyed map (ephemeron table: `WeakMap`, Lua weak tables) |
//! | [`GcCell`], [`GcRefCell`] | interior mutability with the write barrier |
//! | [`Trace`], [`Rebrand`], `#[derive(Trace)]` | how the collector sees a type |
//!
//! The safety argument is in `docs/safety.md`: why safe code cannot keep a
//! `Gc` past a collection, store one without the barrier, mix heaps, or
//! reach freed memory from a `Drop`.
//!
//! `Gc` pointers cannot escape their scope:
//! ```compile_fail
//! # use spanheap::{Gc, Heap};
//! let heap = Heap::new().unwrap();
//! let mut m = heap.mutator();
//! let escaped: Gc<'_, u64> = m.scope(|cx| cx.alloc(1u64).unwrap());
//! ```
//! nor live across a safepoint:
//! ```compile_fail
//! # use spanheap::Heap;
//! let heap = Heap::new().unwrap();
//! let mut m = heap.mutator();
//! m.scope(|cx| {
//!     let a = cx.alloc(1u64).unwrap();
//!     cx.safepoint();
//!     assert_eq!(*a, 1);
//! });
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod any;
mod cell;
mod ephemeron;
mod gc;
mod root;
mod scope;
mod trace;

pub use any::GcAny;
pub use cell::{BorrowError, GcCell, GcRef, GcRefCell, GcRefMut};
pub use ephemeron::EphemeronMap;
pub use gc::Gc;
pub use root::{Root, Weak};
pub use scope::{Heap, HeapBuilder, Mutator, Scope};
pub use spanheap_derive::Trace;
pub use spanheap_gc::census::PLAIN_DATA as CENSUS_PLAIN_DATA;
pub use spanheap_gc::{BuildError, Census, CensusEntry, GcStats, Tracer, VerifyError};
pub use spanheap_heap as heap;
pub use spanheap_heap::{AllocError, MemStats};
pub use trace::{Rebrand, Trace};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Items the derive macro's output refers to. Not public API.
#[doc(hidden)]
pub mod __private {
    /// Implemented for every type with a `Drop` impl; the derive also
    /// implements it for the deriving type, so deriving `Trace` on a type
    /// with a `Drop` impl is a conflicting-impl compile error (a `Drop` of
    /// a GC object could dereference an already freed object).
    pub trait MustNotImplDrop {}
    #[allow(drop_bounds)]
    impl<T: Drop> MustNotImplDrop for T {}
}

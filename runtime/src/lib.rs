//! `spanheap`: the typed, safe API of the spanheap garbage-collected heap —
//! **not implemented yet**.
//!
//! `Gc<T>`, `#[derive(Trace)]`, roots, mutators and weak references arrive
//! with the collector. Today the crate re-exports the allocator layer
//! ([`heap`]), which is complete and usable on its own through raw
//! allocation (`MHeap` / `MCache`).

#![deny(unsafe_op_in_unsafe_fn)]

pub use spanheap_heap as heap;

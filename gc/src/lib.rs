//! `spanheap-gc`: the collector of spanheap — **not implemented yet**.
//!
//! This crate will hold the concurrent, parallel mark-sweep collector
//! (tri-color marking into `gcmarkBits`, the write barrier, mark workers,
//! assists, background sweeping, the pacer), built on the allocator in
//! `spanheap-heap`. Today it only re-exports that allocator so that the
//! workspace layout is in place; nothing here collects garbage.

#![deny(unsafe_op_in_unsafe_fn)]

pub use spanheap_heap as heap;

//! The peers: one module each, with the workloads written the way that
//! crate's documentation writes code (the README lists the versions and
//! the idioms).
//!
//! Each module has `binary_trees`, `gcbench`, `alloc` and `latency`
//! functions taking the `--quick` flag (and the thread count, where the
//! peer has a heap shared between threads) and returning the
//! [`Report`](crate::Report); the drivers in
//! [`binary_trees`](crate::binary_trees), [`gcbench`](crate::gcbench),
//! [`alloc`](crate::alloc) and [`latency`](crate::latency) own the loops,
//! the threads, the timing and the output format. Thread-count checks are
//! done before a peer is called ([`run`](crate::run)).

pub mod boxed;
pub mod bumpalo;
pub mod dumpster;
pub mod gc_arena;
pub mod rc;
pub mod rust_gc;
pub mod spanheap;

//! loom models of spanheap's concurrent protocols.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p spanheap-loom-tests --release`.
//! Under `cfg(loom)`, `spanheap_heap::sync` maps every atomic, lock and
//! thread of the heap to loom's, so these models drive the real allocator.
//! Without `cfg(loom)` the crate is empty and its tests are skipped.

//! `spanheap-gc`: the collector of spanheap, built on the allocator in
//! `spanheap-heap` the way Go's `mgc*.go` files are built on `malloc.go`
//! and `mheap.go`.
//!
//! This crate is untyped: objects are addresses plus a [`TypeInfo`] header
//! (see [`object`]). The safe, typed API (`Gc<T>`, `Trace`, roots) is the
//! `spanheap` crate. What is here:
//!
//! | module | role | Go |
//! |---|---|---|
//! | [`object`] | object header, type descriptor, drop on free | `mbitmap.go` (malloc header), `mfinal.go` |
//! | [`tracer`] | greying, grey list, drain, checkmark | `mgcmark.go`, `mgcwork.go`, `checkmark.go` |
//! | [`slots`] | root and weak-reference tables | `mheap.go` specials (`specialWeakHandle`) |
//! | [`collector`] | handshakes, concurrent cycle, assists, sweeper, teardown | `mgc.go`, `mgcsweep.go` (`bgsweep`) |
//! | [`pacer`] | GOGC heap goal, soft memory limit | `mgcpacer.go` |
//! | [`stats`] | `MemStats` GC fields, the gctrace line | `mstats.go`, `mgc.go` |
//!
//! Marking is concurrent with the mutators (handshakes, a hybrid write
//! barrier with object-level scan-before-first-write, Go's ragged
//! termination; see `collector`). Sweeping is concurrent: lazy in
//! allocation, and on a background thread.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod census;
pub mod collector;
pub mod finalizer;
pub mod object;
pub mod pacer;
pub mod slots;
pub mod stats;
pub mod tracer;

pub use census::{Census, CensusEntry};
pub use collector::{BuildError, Collector, GcConfig, MutatorCore, VerifyError};
pub use finalizer::{EphemeronFn, Payload, ReadyFinalizer};
pub use object::{HEADER_SIZE, TypeInfo};
pub use pacer::PacerConfig;
pub use slots::{Slot, SlotTable};
pub use spanheap_heap as heap;
pub use spanheap_heap::sync;
pub use stats::{CycleTrace, GcStats};
pub use tracer::{TracePanicGuard, Tracer};

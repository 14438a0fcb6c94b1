//! Finalizers with Go's semantics (`runtime.SetFinalizer`): when an object
//! with a finalizer becomes unreachable, it is kept alive — with
//! everything it reaches — for one callback that receives it, and freed by
//! a later cycle unless the callback stored it somewhere reachable.
//!
//! Go keeps finalizers as "specials" on spans (`mheap.go`, `addfinalizer`,
//! `mgcmark.go` `markrootSpans`, `mfinal.go` `queuefinalizer`). Here the
//! collector keeps a table from object address to an opaque payload (the
//! typed layer's callback). The protocol, per cycle:
//!
//! 1. **Root scan.** For every registered object the marker scans its
//!    *fields* — not the object itself — so that what it points to stays
//!    alive for its finalizer (Go's `markrootSpans`). A registration that
//!    arrives after the root scan comes from a mutator whose barrier is
//!    on, and the typed layer shades the object (Go scans it): it survives
//!    this cycle and is considered at the next one. Clearing a
//!    registration during a mark shades the object too: the scan may not
//!    have run yet, and what the registration kept alive was reachable
//!    when the mark began (a deletion, as for a dropped root).
//! 2. **Mark termination** (gate held, after weak slots are cleared, so
//!    weak references to the object read as dead, as in Go): every
//!    registered object left unmarked is resurrected — its mark bit set;
//!    its referents were marked from step 1 — moved to a root slot, and
//!    queued as *ready* with its payload. Its registration is gone: the
//!    finalizer runs once.
//! 3. **Running.** Mutator threads take ready finalizers (outside their
//!    scopes: the typed layer runs them when a scope is entered, or on
//!    request) and release each root slot after the callback, through the
//!    root table's deferral; the object is then freed by a later cycle
//!    unless the callback made it reachable again.
//!
//! Invariants: an address is in `registered` at most once, with the
//! object allocated; a ready entry's object is held by its root slot until
//! [`crate::Collector::finalizer_done`]. As in Go, an object in a cycle of
//! registered objects, or one that reaches itself, is never finalized
//! (its own field scan marks it); an object with a finalizer reachable
//! from another one is finalized a cycle after it.

use crate::slots::Slot;
use std::any::Any;
use std::collections::HashMap;

/// The typed layer's callback, opaque to the collector.
pub type Payload = Box<dyn Any + Send>;

/// A finalizer whose object became unreachable: run `payload` on the
/// object at `addr` (held by root slot `slot`), then call
/// [`crate::Collector::finalizer_done`].
pub struct ReadyFinalizer {
    /// The root slot that keeps the object alive until the callback ran.
    pub slot: Slot,
    /// The object's value address (what its `Gc` holds).
    pub addr: usize,
    /// What [`crate::Collector::set_finalizer`] was given.
    pub payload: Payload,
}

/// Registered and ready finalizers (`Inner::finalizers`).
#[derive(Default)]
pub(crate) struct Finalizers {
    /// Object value address → payload.
    pub(crate) registered: HashMap<usize, Payload>,
    /// Waiting for a mutator to run them.
    pub(crate) ready: Vec<ReadyFinalizer>,
}

/// An ephemeron table's processing function (see
/// [`crate::Collector::register_ephemeron_table`]): traces, with the
/// given marker, the value of every entry whose key is marked
/// ([`crate::Tracer::is_marked`]) and whose key slot is not cleared.
///
/// Callers guarantee the address holds a live, initialised table of the
/// type the function was registered for.
pub type EphemeronFn = unsafe fn(*const u8, &mut crate::Tracer<'_>);

//! A GC object that counts its drops, for the tests of finalizers and
//! ephemeron tables: `Obj` with an id, one `GcCell` edge, and a `Tally`
//! that bumps a shared counter when the object is dropped.

use spanheap::{Gc, GcCell, Trace};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bumps its counter when dropped.
pub struct Tally(pub Arc<AtomicUsize>);
impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
pub struct Obj<'gc> {
    pub id: u64,
    pub next: GcCell<'gc, Option<Gc<'gc, Obj<'gc>>>>,
    #[trace(skip)]
    _tally: Tally,
}

/// An `Obj` whose drop bumps `drops`.
pub fn obj<'gc>(id: u64, next: Option<Gc<'gc, Obj<'gc>>>, drops: &Arc<AtomicUsize>) -> Obj<'gc> {
    Obj {
        id,
        next: GcCell::new(next),
        _tally: Tally(drops.clone()),
    }
}

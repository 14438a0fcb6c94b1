//! The shared cyclic graph of the multi-threaded tests (`stress.rs`,
//! `concurrent.rs`): vertices whose contents are derived from their id
//! (so any corruption is caught by `verify`), a live-instance tally (so
//! drops are counted exactly), and a small PRNG. Each test binary includes
//! it and gets its own counters.

use spanheap::{Gc, GcCell, GcRefCell, Trace};
use std::sync::atomic::{AtomicUsize, Ordering};

pub static LIVE: AtomicUsize = AtomicUsize::new(0);
pub static VERIFIED: AtomicUsize = AtomicUsize::new(0);

/// Counts live instances (created minus dropped).
pub struct Tally;
impl Tally {
    pub fn new() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Tally
    }
}
impl Drop for Tally {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
pub struct Vertex<'gc> {
    pub id: u64,
    /// A value derived from `id`, checked on every visit.
    pub check: u64,
    pub payload: Box<[u64]>,
    pub edges: GcRefCell<'gc, Vec<Gc<'gc, Vertex<'gc>>>>,
    /// One more edge, stored through the hybrid barrier.
    pub link: GcCell<'gc, Option<Gc<'gc, Vertex<'gc>>>>,
    #[trace(skip)]
    _t: Tally,
}

pub fn checksum(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

pub fn vertex<'gc>(id: u64) -> Vertex<'gc> {
    Vertex {
        id,
        check: checksum(id),
        payload: (0..(id % 7 + 1)).map(|k| checksum(id ^ k)).collect(),
        edges: GcRefCell::new(Vec::new()),
        link: GcCell::new(None),
        _t: Tally::new(),
    }
}

pub fn verify(v: &Vertex<'_>) {
    assert_eq!(v.check, checksum(v.id), "vertex {} corrupted", v.id);
    assert_eq!(v.payload.len() as u64, v.id % 7 + 1);
    for (k, &x) in v.payload.iter().enumerate() {
        assert_eq!(
            x,
            checksum(v.id ^ k as u64),
            "payload of {} corrupted",
            v.id
        );
    }
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

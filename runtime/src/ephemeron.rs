//! `EphemeronMap<'gc, K, V>`: a weak-keyed map on the heap, as Lua's weak
//! tables and JavaScript's `WeakMap` need. An entry's value is kept alive
//! only while its key is reachable *from elsewhere* (not through the value
//! itself: a value that points back at its key does not keep the entry),
//! and the entry disappears when its key is collected.
//!
//! How the collector sees it (`spanheap_gc::Collector::register_ephemeron_table`):
//! the map's `Trace` impl reports nothing to markers; the map is
//! registered with the collector, which, while the map is marked, traces
//! the value of every entry whose key is marked, repeating after each
//! drain until a pass marks nothing new — the last pass runs under the
//! gate in the termination check, so a key marked by a late barrier flush
//! still gets its value traced before the mark ends. Each key is held by
//! a weak slot, cleared with the other weak references at mark
//! termination, before the sweep frees the key; an entry whose slot reads
//! 0 is dead: its value is never read or traced again (it may point to
//! freed objects), only dropped when the entry is purged.
//!
//! Writes run the barrier like a cell's: a value inserted, replaced or
//! removed while a mark runs is shaded (outside the map's lock: the
//! collector's termination pass takes that lock while holding its gate).
//!
//! Invariants: `entries` maps a key's address to its weak slot and value;
//! a live slot holds that address; values of live entries are
//! initialised `V`s whose GC pointers point into this heap.

use crate::gc::{Gc, Invariant};
use crate::scope::Scope;
use crate::trace::{Rebrand, Trace};
use spanheap_gc::heap::AllocError;
use spanheap_gc::sync::atomic::Ordering;
use spanheap_gc::sync::{Arc, Mutex};
use spanheap_gc::{Slot, SlotTable, Tracer};
use std::collections::HashMap;
use std::marker::PhantomData;

/// The map's brand and key type: invariant in `'gc`; keys are only
/// addresses here (never read through the map), so they do not affect
/// `Send`/`Sync`.
type Brand<'gc, K> = PhantomData<(fn(Gc<'gc, K>), Invariant<'gc>)>;

/// One entry: the key's weak slot and the value.
struct Entry<V> {
    key: Slot,
    value: V,
}

/// A weak-keyed map (ephemeron table) of keys `Gc<'gc, K>` to values `V`
/// (`Copy` values holding GC pointers: `Gc`s, enums of them, numbers).
/// Created on the heap with [`EphemeronMap::new`]; share it like any
/// object (`Gc`, `Root`, fields).
///
/// ```
/// use spanheap::{EphemeronMap, Gc, Heap};
/// let heap = Heap::new().unwrap();
/// let mut m = heap.mutator();
/// let map = m.scope(|cx| {
///     let map = EphemeronMap::<u64, Gc<'_, String>>::new(cx).unwrap();
///     let key = cx.alloc(7u64).unwrap();
///     map.insert(cx, key, cx.alloc(String::from("seven")).unwrap());
///     assert_eq!(map.get(key).unwrap().as_str(), "seven");
///     cx.root(map)
/// });
/// heap.collect(); // the key is unreachable: its entry goes
/// m.scope(|cx| assert_eq!(map.get(cx).len(), 0));
/// ```
pub struct EphemeronMap<'gc, K: 'gc, V> {
    entries: Mutex<HashMap<usize, Entry<V>>>,
    /// The heap's weak table, which the keys' slots belong to. Not an
    /// `Arc<Collector>`: the map lives in the heap, and a heap object
    /// holding its own collector would keep the heap alive forever (never
    /// torn down, its objects never dropped, its arenas never unmapped).
    weaks: Arc<SlotTable>,
    _brand: Brand<'gc, K>,
}

impl<'gc, K, V> EphemeronMap<'gc, K, V>
where
    K: Rebrand + 'gc,
    V: Trace + Copy + Send + Sync + Rebrand<At<'gc> = V> + 'gc,
    EphemeronMap<'gc, K, V>: Rebrand<At<'gc> = EphemeronMap<'gc, K, V>>,
{
    /// An empty map on `cx`'s heap.
    ///
    /// # Errors
    /// As [`Scope::alloc`].
    pub fn new(cx: &'gc Scope<'_>) -> Result<Gc<'gc, Self>, AllocError> {
        let map = cx.alloc(EphemeronMap {
            entries: Mutex::new(HashMap::new()),
            weaks: cx.collector().weaks_shared(),
            _brand: PhantomData,
        })?;
        // SAFETY: `map` is a live table that `process::<K, V>` processes,
        // registered once; the collector drops the registration at the
        // mark termination that finds it unmarked, before its sweep.
        unsafe {
            cx.collector()
                .register_ephemeron_table(Gc::as_ptr(map) as usize, process::<V>)
        };
        Ok(map)
    }

    /// Sets `key`'s value; returns the previous one.
    pub fn insert(&self, cx: &'gc Scope<'_>, key: Gc<'gc, K>, value: V) -> Option<V> {
        let a = Gc::as_ptr(key) as usize;
        let old = {
            let mut e = self.entries.lock();
            match e.get_mut(&a) {
                Some(en) if live(en) => Some(std::mem::replace(&mut en.value, value)),
                Some(en) => {
                    // A dead entry at a reused address: a new key.
                    // SAFETY: the slot came from this collector's weak
                    // table and is replaced here, never used again.
                    unsafe { self.weaks.remove(en.key) };
                    *en = Entry {
                        key: self.weaks.insert(a),
                        value,
                    };
                    None
                }
                None => {
                    let key = self.weaks.insert(a);
                    e.insert(a, Entry { key, value });
                    None
                }
            }
        };
        if cx.barrier_active() {
            cx.barrier_slow_all(&value);
            if let Some(o) = &old {
                cx.barrier_slow_all(o);
            }
        }
        old
    }

    /// `key`'s value.
    pub fn get(&self, key: Gc<'gc, K>) -> Option<V> {
        let e = self.entries.lock();
        e.get(&(Gc::as_ptr(key) as usize))
            .filter(|en| live(en))
            .map(|en| en.value)
    }

    /// Whether `key` has an entry.
    pub fn contains_key(&self, key: Gc<'gc, K>) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key`'s entry; returns its value.
    pub fn remove(&self, cx: &'gc Scope<'_>, key: Gc<'gc, K>) -> Option<V> {
        let removed = self.entries.lock().remove(&(Gc::as_ptr(key) as usize));
        let en = removed?;
        let was_live = live(&en);
        // SAFETY: the entry's slot came from this collector's weak table
        // and its entry is gone (read above, not used again).
        unsafe { self.weaks.remove(en.key) };
        if !was_live {
            return None;
        }
        if cx.barrier_active() {
            cx.barrier_slow_all(&en.value);
        }
        Some(en.value)
    }

    /// Live entries (purging the dead ones).
    pub fn len(&self) -> usize {
        self.purge();
        self.entries.lock().len()
    }

    /// Whether no live entry is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the entries whose keys were collected (also done by `len`).
    pub fn purge(&self) {
        let mut e = self.entries.lock();
        e.retain(|_, en| {
            if live(en) {
                return true;
            }
            // SAFETY: the slot came from this collector's weak table and
            // its entry is dropped here.
            unsafe { self.weaks.remove(en.key) };
            false
        });
    }
}

fn live_slot(s: Slot) -> bool {
    // SAFETY: a slot of a live entry of a map, from the weak table that
    // the map keeps alive (its `weaks`).
    unsafe { s.get() }.load(Ordering::Acquire) != 0
}

fn live<V>(en: &Entry<V>) -> bool {
    live_slot(en.key)
}

/// The collector's pass over one table (`EphemeronFn`): traces the value
/// of every live entry whose key is marked.
///
/// # Safety
/// 1. `table` is the value address of a live `EphemeronMap<'_, K, V>` for
///    this `V` (any `K`, any brand: the layout does not depend on them).
unsafe fn process<V: Trace>(table: *const u8, t: &mut Tracer<'_>) {
    // SAFETY: obligation 1 (`()` stands for the key type, which only
    // appears in a PhantomData).
    let map = unsafe { &*(table as *const EphemeronMap<'static, (), V>) };
    let e = map.entries.lock();
    // A panicking `trace` would leave the mark incomplete: abort instead.
    let guard = spanheap_gc::TracePanicGuard(std::any::type_name::<V>);
    for (&a, en) in e.iter() {
        if live(en) && t.is_marked(a) {
            en.value.trace(t);
        }
    }
    guard.disarm();
}

// SAFETY: reports nothing to markers (the collector's ephemeron passes
// trace values whose keys are marked, `process`); the checkmark walk gets
// the live entries whose keys are marked (the world is stopped: a parked
// mutator holds no map lock across a handshake, but `try_lock` keeps the
// walk from waiting if one did); the barrier's recorder gets every live
// entry's key and value (conservative: keeps them for this cycle).
unsafe impl<K, V: Trace> Trace for EphemeronMap<'_, K, V> {
    const NO_GC: bool = false;
    fn trace(&self, t: &mut Tracer<'_>) {
        if t.marking_cycle().is_some() {
            return;
        }
        let Some(e) = self.entries.try_lock() else {
            return;
        };
        let check = t.is_checkmark();
        for (&a, en) in e.iter() {
            if !live(en) {
                continue;
            }
            if check {
                if t.is_marked(a) {
                    en.value.trace(t);
                }
            } else {
                t.edge(a);
                en.value.trace(t);
            }
        }
    }
}

// SAFETY: renames the brand of the map, its keys and its values.
unsafe impl<K: Rebrand, V: Rebrand> Rebrand for EphemeronMap<'_, K, V> {
    type At<'gc> = EphemeronMap<'gc, K::At<'gc>, V::At<'gc>>;
}

impl<K, V> Drop for EphemeronMap<'_, K, V> {
    fn drop(&mut self) {
        for (_, en) in self.entries.get_mut().drain() {
            // SAFETY: each slot came from this collector's weak table and
            // its entry goes with the map.
            unsafe { self.weaks.remove(en.key) };
        }
    }
}

//! The shadow model: random sequences of operations applied both to a real
//! `spanheap::Heap` and to a plain graph kept by the test (the *shadow*),
//! then compared. Shared by the proptest suite (`runtime/tests/model.rs`)
//! and the `cargo fuzz` target (`fuzz/fuzz_targets/shadow_model.rs`).
//!
//! ## Objects
//! Every object carries its id and contents derived from it (a checksum,
//! and a payload of `N` words, each a function of the id and its index).
//! The kinds span the size classes, from 8-byte tiny blocks to large
//! objects of 64 KiB:
//! - `Node<N>` (scan span, with a type header and drop glue): an edge list
//!   (`GcRefCell<Vec<Option<GcAny>>>`, the scan-before-first-write
//!   barrier), one `GcCell` edge to a `Node<0>` (the hybrid barrier), an
//!   inline payload of `N` words and a `Tally` that counts its drops;
//! - `Blob<N>` (noscan span: no GC pointer, no drop glue, no header):
//!   id, checksum and `N` payload words;
//! - `Tiny` (8 bytes, no pointer, no drop glue: packed into a 16-byte tiny
//!   block with others).
//!
//! ## What is checked
//! After every operation: no object was dropped twice; no object that the
//! shadow says cannot have been freed (reachable from a root, held by the
//! current scope, or kept for a registered finalizer) was dropped, and
//! its test-internal weak reference (its *probe*) is not cleared; a weak
//! reference to an object the shadow says is alive upgrades; finalizers
//! ran only for objects that were unreachable, saw their exact contents
//! and edges, and ran once.
//!
//! After every `Collect` (a *settle*: collections and finalizer runs until
//! no finalizer is left to run, then one more collection to finish the
//! sweep; the shadow simulates the same cycles on its graph, with Go's
//! finalizer rules): every object the shadow keeps is alive with its
//! exact contents and edges (reached through its probe, and through the
//! real graph from every root); every other one was dropped exactly once
//! (scan kinds) and its probe and every weak reference to it are cleared
//! (a dead tiny object may keep its block alive through a live neighbour,
//! as in Go, so its probe is not checked); exactly the finalizers the
//! shadow expects have run.
//!
//! ## Addressing objects without keeping them alive
//! `Gc` pointers live only inside a scope, between safepoints. The model
//! holds, per scope segment, the pointers it obtained (`held`: the stack
//! roots of a real program) and forgets them at the segment's end; an
//! operation names an object by an index into the objects the shadow says
//! are reachable from the roots and the held pointers, and the model
//! fetches it by walking the real graph along a shadow path (checking each
//! id on the way). Probes are weak, so nothing is kept alive by the test
//! except through roots, held pointers and finalizers, which the shadow
//! models.
//!
//! ## Two mutators
//! `SpawnSecondMutator` runs the next few operations on a second thread
//! with a `Mutator` of its own (the first stays outside its scopes).
//! [`run_concurrent`] runs two models at once, one per thread, each
//! owning its objects and sharing a rooted read-only graph, while
//! collections run; it settles and checks both at every join.
//!
//! There is no operation that changes GOGC: the heap has no run-time
//! setter for it (only `HeapBuilder::gc_percent`), so each run picks one.

#![allow(dead_code)]

use spanheap::{
    AllocError, Gc, GcAny, GcCell, GcRefCell, Heap, HeapBuilder, Mutator, Root, Scope, Trace, Weak,
};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// The most edges an edge list grows to.
pub const MAX_EDGES: usize = 6;

// ---------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------

/// A payload word derived from an object id.
pub fn mix(id: u64, k: u64) -> u64 {
    let x = (id ^ 0xA076_1D64_78BD_642F).wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

/// Drops counted per object id (by the `Tally` in each `Node`).
#[derive(Default)]
pub struct Drops(Mutex<HashMap<u64, u32>>);

impl Drops {
    fn get(&self, id: u64) -> u32 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id).copied().unwrap_or(0)
    }
}

/// Counts its object's drops (the derive forbids a `Drop` impl on the
/// object itself, so the drop is observed through a field).
pub struct Tally {
    id: u64,
    drops: Arc<Drops>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut map = self.drops.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(self.id).or_insert(0) += 1;
    }
}

/// A scan object of the model.
#[derive(Trace)]
pub struct Node<'gc, const N: usize> {
    id: u64,
    check: u64,
    edges: GcRefCell<'gc, Vec<Option<GcAny<'gc>>>>,
    link: GcCell<'gc, Option<Gc<'gc, Node<'gc, 0>>>>,
    payload: [u64; N],
    #[trace(skip)]
    tally: Tally,
}

/// A noscan object of the model.
#[derive(Trace)]
pub struct Blob<const N: usize> {
    id: u64,
    check: u64,
    data: [u64; N],
}

/// A tiny noscan object (8 bytes).
#[derive(Trace)]
pub struct Tiny {
    id: u32,
    check: u32,
}

/// The kind of an object: its Rust type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `Node<N>`.
    Scan(usize),
    /// `Blob<N>`.
    Blob(usize),
    /// `Tiny`.
    Tiny,
}

/// Payload words of the scan kinds: objects from 64 bytes to 64 KiB (the
/// last two are large objects, above 32 KiB).
pub const SCAN_SIZES: [usize; 12] = [0, 1, 3, 6, 13, 29, 61, 125, 253, 1021, 4100, 8200];
/// Payload words of the noscan kinds: 16 bytes to 32.8 KiB.
pub const BLOB_SIZES: [usize; 8] = [0, 2, 6, 14, 62, 254, 1022, 4100];

/// Runs `$body` with `$T<'x>` the Rust type of `$kind`.
macro_rules! with_kind {
    ($kind:expr, $T:ident => $body:expr) => {
        match $kind {
            Kind::Scan(0) => {
                type $T<'x> = Node<'x, 0>;
                $body
            }
            Kind::Scan(1) => {
                type $T<'x> = Node<'x, 1>;
                $body
            }
            Kind::Scan(3) => {
                type $T<'x> = Node<'x, 3>;
                $body
            }
            Kind::Scan(6) => {
                type $T<'x> = Node<'x, 6>;
                $body
            }
            Kind::Scan(13) => {
                type $T<'x> = Node<'x, 13>;
                $body
            }
            Kind::Scan(29) => {
                type $T<'x> = Node<'x, 29>;
                $body
            }
            Kind::Scan(61) => {
                type $T<'x> = Node<'x, 61>;
                $body
            }
            Kind::Scan(125) => {
                type $T<'x> = Node<'x, 125>;
                $body
            }
            Kind::Scan(253) => {
                type $T<'x> = Node<'x, 253>;
                $body
            }
            Kind::Scan(1021) => {
                type $T<'x> = Node<'x, 1021>;
                $body
            }
            Kind::Scan(4100) => {
                type $T<'x> = Node<'x, 4100>;
                $body
            }
            Kind::Scan(8200) => {
                type $T<'x> = Node<'x, 8200>;
                $body
            }
            Kind::Blob(0) => {
                type $T<'x> = Blob<0>;
                $body
            }
            Kind::Blob(2) => {
                type $T<'x> = Blob<2>;
                $body
            }
            Kind::Blob(6) => {
                type $T<'x> = Blob<6>;
                $body
            }
            Kind::Blob(14) => {
                type $T<'x> = Blob<14>;
                $body
            }
            Kind::Blob(62) => {
                type $T<'x> = Blob<62>;
                $body
            }
            Kind::Blob(254) => {
                type $T<'x> = Blob<254>;
                $body
            }
            Kind::Blob(1022) => {
                type $T<'x> = Blob<1022>;
                $body
            }
            Kind::Blob(4100) => {
                type $T<'x> = Blob<4100>;
                $body
            }
            Kind::Tiny => {
                type $T<'x> = Tiny;
                $body
            }
            k => panic!("shadow model: no such kind {k:?}"),
        }
    };
}

/// Every kind, scan kinds first.
pub fn all_kinds() -> impl Iterator<Item = Kind> {
    SCAN_SIZES
        .iter()
        .map(|&n| Kind::Scan(n))
        .chain(BLOB_SIZES.iter().map(|&n| Kind::Blob(n)))
        .chain(std::iter::once(Kind::Tiny))
}

/// The kind an `Alloc` byte picks: mostly small scan and noscan objects,
/// large ones now and then.
pub fn kind_of(b: u8) -> Kind {
    let hi = (b / 64) as usize;
    match b % 64 {
        0..=29 => Kind::Scan(SCAN_SIZES[(b as usize % 6 + hi) % 6]),
        30..=39 => Kind::Scan(SCAN_SIZES[6 + (b as usize + hi) % 4]),
        40 | 41 => Kind::Scan(SCAN_SIZES[10 + (hi & 1)]),
        42..=55 => Kind::Blob(BLOB_SIZES[(b as usize + hi) % 7]),
        56 => Kind::Blob(BLOB_SIZES[7]),
        _ => Kind::Tiny,
    }
}

/// Read access to any object of the model, whatever its type.
pub trait ModelObj<'gc> {
    /// The id stored in the object.
    fn id(&self) -> u64;
    /// Its kind.
    fn kind(&self) -> Kind;
    /// Checks the contents derived from the id.
    fn verify(&self) -> Result<(), String>;
    /// The edge list (scan kinds).
    fn edges(&self) -> Option<&GcRefCell<'gc, Vec<Option<GcAny<'gc>>>>>;
    /// The `GcCell` edge (scan kinds).
    fn link(&self) -> Option<&GcCell<'gc, Option<Gc<'gc, Node<'gc, 0>>>>>;
}

/// Builds a fresh object of a kind.
pub trait Make: Sized {
    /// The object with id `id`.
    fn make(id: u64, drops: &Arc<Drops>) -> Self;
}

impl<const N: usize> Make for Node<'_, N> {
    fn make(id: u64, drops: &Arc<Drops>) -> Self {
        Node {
            id,
            check: mix(id, u64::MAX),
            edges: GcRefCell::new(Vec::new()),
            link: GcCell::new(None),
            payload: std::array::from_fn(|k| mix(id, k as u64)),
            tally: Tally {
                id,
                drops: drops.clone(),
            },
        }
    }
}

impl<const N: usize> Make for Blob<N> {
    fn make(id: u64, _: &Arc<Drops>) -> Self {
        Blob {
            id,
            check: mix(id, u64::MAX),
            data: std::array::from_fn(|k| mix(id, k as u64)),
        }
    }
}

impl Make for Tiny {
    fn make(id: u64, _: &Arc<Drops>) -> Self {
        Tiny {
            id: id as u32,
            check: mix(id, u64::MAX) as u32,
        }
    }
}

fn check_words(id: u64, check: u64, words: &[u64]) -> Result<(), String> {
    if check != mix(id, u64::MAX) {
        return Err(format!("object {id}: checksum {check:#x} is wrong"));
    }
    for (k, &w) in words.iter().enumerate() {
        if w != mix(id, k as u64) {
            return Err(format!("object {id}: payload word {k} is {w:#x}"));
        }
    }
    Ok(())
}

impl<'gc, const N: usize> ModelObj<'gc> for Node<'gc, N> {
    fn id(&self) -> u64 {
        self.id
    }
    fn kind(&self) -> Kind {
        Kind::Scan(N)
    }
    fn verify(&self) -> Result<(), String> {
        if self.tally.id != self.id {
            return Err(format!("object {}: tally says {}", self.id, self.tally.id));
        }
        check_words(self.id, self.check, &self.payload)
    }
    fn edges(&self) -> Option<&GcRefCell<'gc, Vec<Option<GcAny<'gc>>>>> {
        Some(&self.edges)
    }
    fn link(&self) -> Option<&GcCell<'gc, Option<Gc<'gc, Node<'gc, 0>>>>> {
        Some(&self.link)
    }
}

impl<'gc, const N: usize> ModelObj<'gc> for Blob<N> {
    fn id(&self) -> u64 {
        self.id
    }
    fn kind(&self) -> Kind {
        Kind::Blob(N)
    }
    fn verify(&self) -> Result<(), String> {
        check_words(self.id, self.check, &self.data)
    }
    fn edges(&self) -> Option<&GcRefCell<'gc, Vec<Option<GcAny<'gc>>>>> {
        None
    }
    fn link(&self) -> Option<&GcCell<'gc, Option<Gc<'gc, Node<'gc, 0>>>>> {
        None
    }
}

impl<'gc> ModelObj<'gc> for Tiny {
    fn id(&self) -> u64 {
        u64::from(self.id)
    }
    fn kind(&self) -> Kind {
        Kind::Tiny
    }
    fn verify(&self) -> Result<(), String> {
        if self.check != mix(u64::from(self.id), u64::MAX) as u32 {
            return Err(format!("tiny object {}: checksum is wrong", self.id));
        }
        Ok(())
    }
    fn edges(&self) -> Option<&GcRefCell<'gc, Vec<Option<GcAny<'gc>>>>> {
        None
    }
    fn link(&self) -> Option<&GcCell<'gc, Option<Gc<'gc, Node<'gc, 0>>>>> {
        None
    }
}

/// The object behind `a`, if it is of kind `k`.
pub fn view<'gc>(k: Kind, a: GcAny<'gc>) -> Option<&'gc dyn ModelObj<'gc>> {
    with_kind!(k, T => a.downcast::<T<'gc>>().map(|g| Gc::get_ref(g) as &'gc dyn ModelObj<'gc>))
}

/// The object behind `a`, whatever its kind.
pub fn any_view<'gc>(a: GcAny<'gc>) -> Option<&'gc dyn ModelObj<'gc>> {
    all_kinds().find_map(|k| view(k, a))
}

/// A `Root` of any kind.
pub trait AnyRoot: Send + Sync {
    /// The object.
    fn get<'gc>(&self, cx: &'gc Scope<'_>) -> GcAny<'gc>;
    /// Another root of it.
    fn clone_root(&self) -> Box<dyn AnyRoot>;
}

/// A `Weak` of any kind.
pub trait AnyWeak: Send + Sync {
    /// The object, if not collected.
    fn upgrade<'gc>(&self, cx: &'gc Scope<'_>) -> Option<GcAny<'gc>>;
    /// Whether the object was collected.
    fn is_dead(&self) -> bool;
}

macro_rules! handles {
    ($($t:ty),* $(,)?) => {$(
        impl AnyRoot for Root<$t> {
            fn get<'gc>(&self, cx: &'gc Scope<'_>) -> GcAny<'gc> {
                Root::get(self, cx).into()
            }
            fn clone_root(&self) -> Box<dyn AnyRoot> {
                Box::new(self.clone())
            }
        }
        impl AnyWeak for Weak<$t> {
            fn upgrade<'gc>(&self, cx: &'gc Scope<'_>) -> Option<GcAny<'gc>> {
                Weak::upgrade(self, cx).map(Into::into)
            }
            fn is_dead(&self) -> bool {
                Weak::is_dead(self)
            }
        }
    )*};
}

handles!(
    Blob<0>,
    Blob<2>,
    Blob<6>,
    Blob<14>,
    Blob<62>,
    Blob<254>,
    Blob<1022>,
    Blob<4100>,
    Tiny
);

impl<const N: usize> AnyRoot for Root<Node<'static, N>> {
    fn get<'gc>(&self, cx: &'gc Scope<'_>) -> GcAny<'gc> {
        Root::get(self, cx).into()
    }
    fn clone_root(&self) -> Box<dyn AnyRoot> {
        Box::new(self.clone())
    }
}

impl<const N: usize> AnyWeak for Weak<Node<'static, N>> {
    fn upgrade<'gc>(&self, cx: &'gc Scope<'_>) -> Option<GcAny<'gc>> {
        Weak::upgrade(self, cx).map(Into::into)
    }
    fn is_dead(&self) -> bool {
        Weak::is_dead(self)
    }
}

fn alloc_kind<'gc>(
    cx: &'gc Scope<'_>,
    k: Kind,
    id: u64,
    drops: &Arc<Drops>,
) -> Result<GcAny<'gc>, AllocError> {
    with_kind!(k, T => cx.alloc(<T<'gc> as Make>::make(id, drops)).map(GcAny::from))
}

fn root_of<'gc>(cx: &'gc Scope<'_>, k: Kind, a: GcAny<'gc>) -> Box<dyn AnyRoot> {
    with_kind!(k, T => Box::new(cx.root(a.downcast::<T<'gc>>().expect("shadow model: kind"))))
}

fn weak_of<'gc>(cx: &'gc Scope<'_>, k: Kind, a: GcAny<'gc>) -> Box<dyn AnyWeak> {
    with_kind!(k, T => Box::new(cx.downgrade(a.downcast::<T<'gc>>().expect("shadow model: kind"))))
}

/// What a finalizer saw: the object's id, its edges, and any problem.
#[derive(Debug)]
pub struct FinRecord {
    id: u64,
    edges: Vec<Option<u64>>,
    link: Option<u64>,
    problems: Vec<String>,
}

type FinLog = Arc<Mutex<Vec<FinRecord>>>;

fn record_finalizer(v: &dyn ModelObj<'_>, id: u64, drops: &Drops) -> FinRecord {
    let mut problems = Vec::new();
    if v.id() != id {
        problems.push(format!("finalizer of {id} got object {}", v.id()));
    }
    if let Err(e) = v.verify() {
        problems.push(e);
    }
    if drops.get(id) != 0 {
        problems.push(format!("finalizer of {id} runs on a dropped object"));
    }
    let mut edges = Vec::new();
    if let Some(e) = v.edges() {
        match e.try_borrow() {
            Ok(e) => {
                for x in e.iter() {
                    edges.push(x.map(|a| match any_view(a) {
                        Some(c) => {
                            if let Err(err) = c.verify() {
                                problems.push(format!("referent of finalized {id}: {err}"));
                            }
                            if drops.get(c.id()) != 0 {
                                problems.push(format!(
                                    "referent {} of finalized {id} was dropped",
                                    c.id()
                                ));
                            }
                            c.id()
                        }
                        None => u64::MAX,
                    }))
                }
            }
            Err(_) => problems.push(format!("finalized {id}: edges borrowed")),
        }
    }
    let link = v.link().and_then(|l| l.get()).map(|n| n.id);
    FinRecord {
        id,
        edges,
        link,
        problems,
    }
}

fn set_finalizer_kind<'gc>(
    cx: &'gc Scope<'_>,
    k: Kind,
    a: GcAny<'gc>,
    id: u64,
    log: &FinLog,
    drops: &Arc<Drops>,
) -> bool {
    let (log, drops) = (log.clone(), drops.clone());
    with_kind!(k, T => {
        let g = a.downcast::<T<'gc>>().expect("shadow model: kind");
        cx.set_finalizer(g, move |_cx, o| {
            let obj = Gc::get_ref(o);
            let rec = record_finalizer(obj, id, &drops);
            log.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
        })
    })
}

// ---------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------

/// One step of a run. Objects, roots and weak references are named by
/// an index taken modulo the current number of candidates, so that any
/// sequence is valid and removing steps (shrinking) keeps it valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocates an object of kind [`kind_of`]`(kind)`, held by the scope.
    Alloc { kind: u8 },
    /// Stores an edge `src.edges[slot] = dst` (appending when `slot` is
    /// past the end); `slot % 8 == 7` stores into `src`'s `GcCell` edge
    /// instead when `dst` is a `Node<0>`.
    Link { src: u8, slot: u8, dst: u8 },
    /// Clears an edge (`slot % 8 == 7`: the `GcCell` edge); with the high
    /// bit of `slot`, removes it from the list instead.
    Unlink { src: u8, slot: u8 },
    /// Swaps two edges (of one object or two).
    SwapEdges { a: u8, sa: u8, b: u8, sb: u8 },
    /// Roots an object.
    MakeRoot { obj: u8 },
    /// Drops a root.
    DropRoot { root: u8 },
    /// Makes a weak reference to an object (not to tiny objects).
    MakeWeak { obj: u8 },
    /// Drops a weak reference.
    DropWeak { weak: u8 },
    /// Upgrades a weak reference; if it gives the object, it is held (and
    /// rooted with `keep`).
    UpgradeWeak { weak: u8, keep: bool },
    /// Registers a finalizer on an object (not on tiny objects).
    SetFinalizer { obj: u8 },
    /// Reads an object and compares it with the shadow.
    Verify { obj: u8 },
    /// `Scope::safepoint`: the held pointers are forgotten.
    Safepoint,
    /// Leaves the scope (and enters a new one).
    EndScope,
    /// Settles the heap and checks everything (in a concurrent run: one
    /// `collect()` without the checks).
    Collect,
    /// Runs the next `1 + ops % 16` operations on a second mutator, on
    /// another thread, then joins it.
    SpawnSecondMutator { ops: u8 },
    /// Changes GOGC at run time ([`gogc_of`]`(p)`): off, 1, 10, 100 or
    /// 400 (`Heap::set_gc_percent`). Nothing in the shadow changes.
    SetGcPercent { p: u8 },
}

/// The GOGC setting a [`Op::SetGcPercent`] byte stands for.
pub fn gogc_of(p: u8) -> Option<u32> {
    [None, Some(1), Some(10), Some(100), Some(400)][usize::from(p % 5)]
}

impl Op {
    /// Decodes one operation from the front of `data` (the fuzz target's
    /// format: a tag byte, then the fields; missing bytes read as 0).
    pub fn decode(data: &mut &[u8]) -> Option<Op> {
        if data.is_empty() {
            return None;
        }
        let mut next = || -> u8 {
            match data.split_first() {
                Some((&b, rest)) => {
                    *data = rest;
                    b
                }
                None => 0,
            }
        };
        let tag = next();
        Some(match tag % 32 {
            0..=5 => Op::Alloc { kind: next() },
            6..=10 => Op::Link {
                src: next(),
                slot: next(),
                dst: next(),
            },
            11..=12 => Op::Unlink {
                src: next(),
                slot: next(),
            },
            13 => Op::SwapEdges {
                a: next(),
                sa: next(),
                b: next(),
                sb: next(),
            },
            14..=15 => Op::MakeRoot { obj: next() },
            16..=17 => Op::DropRoot { root: next() },
            18 => Op::MakeWeak { obj: next() },
            19 => Op::DropWeak { weak: next() },
            20 => Op::UpgradeWeak {
                weak: next(),
                keep: next() & 1 == 1,
            },
            21 => Op::SetFinalizer { obj: next() },
            22 => Op::Verify { obj: next() },
            23..=24 => Op::Safepoint,
            25..=26 => Op::EndScope,
            27..=29 => Op::Collect,
            30 => Op::SpawnSecondMutator { ops: next() },
            _ => Op::SetGcPercent { p: next() },
        })
    }
}

/// The heap's settings for a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// GOGC.
    pub gc_percent: u32,
    /// Stress mode: a collection every this many allocations.
    pub stress: Option<u64>,
    /// Checkmark mode.
    pub checkmark: bool,
    /// Background sweeping.
    pub background_sweep: bool,
    /// The broken-collector knob (tests of the model itself).
    pub fault_lose_every: Option<u64>,
}

impl Config {
    /// The settings a byte picks.
    pub fn from_byte(b: u8) -> Config {
        Config {
            gc_percent: [100, 10, 1, 400][usize::from(b & 3)],
            stress: match (b >> 2) & 7 {
                0..=3 => None,
                4 => Some(1),
                5 => Some(3),
                6 => Some(7),
                _ => Some(50),
            },
            checkmark: b & 0x20 != 0,
            background_sweep: b & 0x40 == 0,
            fault_lose_every: None,
        }
    }

    /// The heap builder for these settings (on top of the environment's
    /// debug variables).
    pub fn builder(&self) -> HeapBuilder {
        let mut b = Heap::builder()
            .gc_percent(self.gc_percent)
            .stress(self.stress)
            .background_sweep(self.background_sweep);
        if self.checkmark {
            b = b.checkmark(true);
        }
        if let Some(n) = self.fault_lose_every {
            b = b.__fault_lose_every(n);
        }
        b
    }
}

/// Decodes a fuzz input: a config byte, then operations (at most 400).
pub fn decode(mut data: &[u8]) -> (Config, Vec<Op>) {
    let cfg = Config::from_byte(data.first().copied().unwrap_or(0));
    data = data.get(1..).unwrap_or(&[]);
    let mut ops = Vec::new();
    while ops.len() < 400 {
        match Op::decode(&mut data) {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    (cfg, ops)
}

// ---------------------------------------------------------------------
// The shadow
// ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fin {
    None,
    Registered,
    Ran,
}

#[derive(Clone, Debug)]
struct SObj {
    kind: Kind,
    edges: Vec<Option<u64>>,
    link: Option<u64>,
    fin: Fin,
    /// Owned by another model (shared, read-only, always rooted).
    ext: bool,
}

/// Counters of what a run did.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Operations applied.
    pub ops: u64,
    /// Objects allocated.
    pub allocs: u64,
    /// Settles (full checks).
    pub settles: u64,
    /// Objects the shadow saw die and the heap confirmed.
    pub freed: u64,
    /// Finalizers run.
    pub finalizers: u64,
    /// Weak upgrades that gave the object / that gave nothing.
    pub upgrades: (u64, u64),
}

/// One model: a shadow graph and the real handles into the heap.
pub struct Model {
    name: String,
    next_id: u64,
    /// Live objects (the shadow's view); dead ones move to `dead`.
    objs: HashMap<u64, SObj>,
    /// Scan objects the shadow saw die (their drop count stays 1).
    dead: Vec<u64>,
    /// Dead objects' ids, for weak references that outlive them.
    dead_set: HashSet<u64>,
    roots: Vec<(u64, Box<dyn AnyRoot>)>,
    /// Shared objects' roots (not droppable by this model).
    ext: Vec<(u64, Box<dyn AnyRoot>)>,
    weaks: Vec<(u64, Box<dyn AnyWeak>)>,
    probes: HashMap<u64, Box<dyn AnyWeak>>,
    drops: Arc<Drops>,
    fin_log: FinLog,
    /// In a concurrent run `Collect` only collects (no settle).
    concurrent: bool,
    /// What the run did.
    pub stats: RunStats,
}

#[cold]
#[track_caller]
fn fail(model: &str, msg: String) -> ! {
    panic!("shadow model [{model}]: {msg}")
}

/// How an object is reached from a seed.
#[derive(Clone, Copy)]
enum Via {
    Root(usize),
    Ext(usize),
    Held,
    Edge(u64, usize),
    Link(u64),
}

impl Model {
    /// An empty model whose ids start at `id_base`.
    pub fn new(name: &str, id_base: u64) -> Model {
        Model {
            name: name.to_string(),
            next_id: id_base + 1,
            objs: HashMap::new(),
            dead: Vec::new(),
            dead_set: HashSet::new(),
            roots: Vec::new(),
            ext: Vec::new(),
            weaks: Vec::new(),
            probes: HashMap::new(),
            drops: Arc::new(Drops::default()),
            fin_log: FinLog::default(),
            concurrent: false,
            stats: RunStats::default(),
        }
    }

    fn fail(&self, msg: String) -> ! {
        fail(&self.name, msg)
    }

    fn children(&self, id: u64) -> impl Iterator<Item = u64> + '_ {
        self.objs
            .get(&id)
            .into_iter()
            .flat_map(|o| o.edges.iter().flatten().copied().chain(o.link))
    }

    /// Everything reachable from `seeds` in the shadow.
    fn closure(&self, seeds: impl IntoIterator<Item = u64>) -> HashSet<u64> {
        let mut seen = HashSet::new();
        let mut stack: Vec<u64> = seeds.into_iter().collect();
        while let Some(id) = stack.pop() {
            if self.objs.contains_key(&id) && seen.insert(id) {
                stack.extend(self.children(id));
            }
        }
        seen
    }

    fn root_seeds<'a>(&'a self, held: &'a HashSet<u64>) -> impl Iterator<Item = u64> + 'a {
        self.roots
            .iter()
            .map(|r| r.0)
            .chain(self.ext.iter().map(|r| r.0))
            .chain(held.iter().copied())
    }

    fn registered(&self) -> impl Iterator<Item = u64> + '_ {
        self.objs
            .iter()
            .filter(|(_, o)| o.fin == Fin::Registered)
            .map(|(&id, _)| id)
    }

    /// Reachable from the roots and the held pointers.
    fn strong(&self, held: &HashSet<u64>) -> HashSet<u64> {
        self.closure(self.root_seeds(held))
    }

    /// Cannot have been freed: strong, or kept for a registered finalizer
    /// (the object and what it reaches).
    fn not_freed(&self, held: &HashSet<u64>) -> HashSet<u64> {
        let seeds: Vec<u64> = self.root_seeds(held).chain(self.registered()).collect();
        self.closure(seeds)
    }

    /// Marked by every cycle: strong, or reached from a registered
    /// object's fields (the object itself only through a cycle).
    fn weak_alive(&self, held: &HashSet<u64>) -> HashSet<u64> {
        let kids: Vec<u64> = self
            .registered()
            .flat_map(|f| self.children(f).collect::<Vec<_>>())
            .collect();
        let seeds: Vec<u64> = self.root_seeds(held).chain(kids).collect();
        self.closure(seeds)
    }

    // -----------------------------------------------------------------
    // Per-operation checks
    // -----------------------------------------------------------------

    /// Takes the finalizer runs logged since the last call and checks
    /// each against the shadow.
    fn absorb_finalizers(&mut self, held: &HashSet<u64>) {
        let recs: Vec<FinRecord> =
            std::mem::take(&mut *self.fin_log.lock().unwrap_or_else(|e| e.into_inner()));
        for r in recs {
            if !r.problems.is_empty() {
                self.fail(format!("finalizer of {}: {:?}", r.id, r.problems));
            }
            let Some(o) = self.objs.get(&r.id) else {
                self.fail(format!(
                    "finalizer ran for {}, which is dead or unknown",
                    r.id
                ));
            };
            if o.fin != Fin::Registered {
                self.fail(format!("finalizer of {} ran but it was {:?}", r.id, o.fin));
            }
            if o.edges != r.edges || o.link != r.link {
                self.fail(format!(
                    "finalizer of {} saw edges {:?}/{:?}, shadow has {:?}/{:?}",
                    r.id, r.edges, r.link, o.edges, o.link
                ));
            }
            if self.weak_alive(held).contains(&r.id) {
                self.fail(format!(
                    "finalizer of {} ran while it was reachable (from a root, the scope, or another finalized object)",
                    r.id
                ));
            }
            if let Some(o) = self.objs.get_mut(&r.id) {
                o.fin = Fin::Ran;
            }
            self.stats.finalizers += 1;
        }
    }

    /// The checks that hold at any time (see the module docs).
    fn check_invariants(&mut self, held: &HashSet<u64>) {
        self.absorb_finalizers(held);
        let nf = self.not_freed(held);
        for &id in self.objs.keys().chain(self.dead.iter()) {
            let d = self.drops.get(id);
            if d > 1 {
                self.fail(format!("object {id} dropped {d} times"));
            }
            if d != 0 && nf.contains(&id) {
                self.fail(format!(
                    "object {id} was dropped while reachable (roots: {:?}, held: {:?})",
                    self.roots.iter().map(|r| r.0).collect::<Vec<_>>(),
                    held
                ));
            }
        }
        for id in self.weak_alive(held) {
            if let Some(p) = self.probes.get(&id)
                && p.is_dead()
            {
                self.fail(format!(
                    "object {id} ({:?}) is reachable but its weak reference was cleared",
                    self.objs[&id].kind
                ));
            }
        }
    }

    /// Compares a real object with its shadow.
    fn check_obj(&self, id: u64, v: &dyn ModelObj<'_>) {
        let Some(s) = self.objs.get(&id) else {
            self.fail(format!("checking unknown object {id}"))
        };
        if v.id() != id {
            self.fail(format!("expected object {id}, found {}", v.id()));
        }
        if v.kind() != s.kind {
            self.fail(format!(
                "object {id} is {:?}, shadow {:?}",
                v.kind(),
                s.kind
            ));
        }
        if let Err(e) = v.verify() {
            self.fail(e);
        }
        let edges: Vec<Option<u64>> = match v.edges() {
            None => Vec::new(),
            Some(e) => match e.try_borrow() {
                Ok(e) => e
                    .iter()
                    .map(|x| {
                        x.map(|a| match any_view(a) {
                            Some(c) => c.id(),
                            None => self.fail(format!("object {id}: edge to an unknown type")),
                        })
                    })
                    .collect(),
                Err(_) => self.fail(format!("object {id}: edges borrowed")),
            },
        };
        let link = v.link().and_then(|l| l.get()).map(|n| n.id);
        if edges != s.edges || link != s.link {
            self.fail(format!(
                "object {id}: edges {edges:?}/{link:?}, shadow {:?}/{:?}",
                s.edges, s.link
            ));
        }
    }

    // -----------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------

    /// The `Gc` of a reachable object: held, or fetched along a shadow
    /// path through the real graph (checking every id on the way).
    fn fetch<'gc>(
        &self,
        cx: &'gc Scope<'_>,
        held: &mut HashMap<u64, GcAny<'gc>>,
        id: u64,
    ) -> GcAny<'gc> {
        if let Some(&a) = held.get(&id) {
            return a;
        }
        let mut via: HashMap<u64, Via> = HashMap::new();
        let mut queue = VecDeque::new();
        for (i, r) in self.roots.iter().enumerate() {
            via.entry(r.0).or_insert(Via::Root(i));
            queue.push_back(r.0);
        }
        for (i, r) in self.ext.iter().enumerate() {
            via.entry(r.0).or_insert(Via::Ext(i));
            queue.push_back(r.0);
        }
        for &h in held.keys() {
            via.insert(h, Via::Held);
            queue.push_back(h);
        }
        while let Some(x) = queue.pop_front() {
            if x == id {
                break;
            }
            let Some(o) = self.objs.get(&x) else { continue };
            for (slot, e) in o.edges.iter().enumerate() {
                if let Some(c) = *e
                    && !via.contains_key(&c)
                {
                    via.insert(c, Via::Edge(x, slot));
                    queue.push_back(c);
                }
            }
            if let Some(c) = o.link
                && !via.contains_key(&c)
            {
                via.insert(c, Via::Link(x));
                queue.push_back(c);
            }
        }
        let mut path = vec![id];
        loop {
            let Some(&v) = via.get(path.last().expect("path")) else {
                self.fail(format!("object {id} is not reachable in the shadow"))
            };
            match v {
                Via::Edge(p, _) | Via::Link(p) => path.push(p),
                _ => break,
            }
        }
        path.reverse();
        let first = path[0];
        let mut a = match via[&first] {
            Via::Root(i) => self.roots[i].1.get(cx),
            Via::Ext(i) => self.ext[i].1.get(cx),
            Via::Held => held[&first],
            _ => unreachable!(),
        };
        self.expect_id(a, first);
        for &next in &path[1..] {
            let obj = self.view_of(a, "a path");
            a = match via[&next] {
                Via::Edge(_, slot) => {
                    let e = obj
                        .edges()
                        .map(|e| {
                            e.try_borrow()
                                .unwrap_or_else(|_| self.fail("edges borrowed".into()))
                                .get(slot)
                                .copied()
                                .flatten()
                        })
                        .unwrap_or(None);
                    e.unwrap_or_else(|| {
                        self.fail(format!("object {}: edge {slot} missing", obj.id()))
                    })
                }
                Via::Link(_) => match obj.link().and_then(|l| l.get()) {
                    Some(n) => n.into(),
                    None => self.fail(format!("object {}: link missing", obj.id())),
                },
                _ => unreachable!(),
            };
            self.expect_id(a, next);
        }
        held.insert(id, a);
        a
    }

    fn view_of<'gc>(&self, a: GcAny<'gc>, what: &str) -> &'gc dyn ModelObj<'gc> {
        any_view(a).unwrap_or_else(|| self.fail(format!("{what}: object of unknown type")))
    }

    fn expect_id(&self, a: GcAny<'_>, id: u64) {
        let got = self.view_of(a, "fetch").id();
        if got != id {
            self.fail(format!("walking to {id}: found object {got}"));
        }
    }

    fn pick(list: &[u64], i: u8) -> Option<u64> {
        (!list.is_empty()).then(|| list[usize::from(i) % list.len()])
    }

    /// Applies one operation inside a scope segment.
    fn apply<'gc>(&mut self, cx: &'gc Scope<'_>, held: &mut HashMap<u64, GcAny<'gc>>, op: &Op) {
        let held_ids: HashSet<u64> = held.keys().copied().collect();
        let reach: Vec<u64> = self
            .strong(&held_ids)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mutable: Vec<u64> = reach
            .iter()
            .copied()
            .filter(|id| {
                let o = &self.objs[id];
                matches!(o.kind, Kind::Scan(_)) && !o.ext
            })
            .collect();
        self.stats.ops += 1;
        match *op {
            Op::Alloc { kind } => {
                let k = kind_of(kind);
                let id = self.next_id;
                self.next_id += 1;
                let a = alloc_kind(cx, k, id, &self.drops)
                    .unwrap_or_else(|e| self.fail(format!("allocation of {k:?} failed: {e}")));
                self.objs.insert(
                    id,
                    SObj {
                        kind: k,
                        edges: Vec::new(),
                        link: None,
                        fin: Fin::None,
                        ext: false,
                    },
                );
                self.probes.insert(id, weak_of(cx, k, a));
                held.insert(id, a);
                self.stats.allocs += 1;
            }
            Op::Link { src, slot, dst } => {
                let (Some(s), Some(d)) = (Self::pick(&mutable, src), Self::pick(&reach, dst))
                else {
                    return;
                };
                let sa = self.fetch(cx, held, s);
                let da = self.fetch(cx, held, d);
                let sv = self.view_of(sa, "link source");
                if slot % 8 == 7 && self.objs[&d].kind == Kind::Scan(0) {
                    let dn = da.downcast::<Node<'gc, 0>>().expect("Node<0>");
                    sv.link().expect("scan").set(cx, Some(dn));
                    self.objs.get_mut(&s).expect("src").link = Some(d);
                    return;
                }
                let mut e = sv.edges().expect("scan").borrow_mut(cx);
                let sh = &mut self.objs.get_mut(&s).expect("src").edges;
                let i = usize::from(slot) % MAX_EDGES;
                if i >= e.len() {
                    if e.len() < MAX_EDGES {
                        e.push(Some(da));
                        sh.push(Some(d));
                    } else {
                        e[0] = Some(da);
                        sh[0] = Some(d);
                    }
                } else {
                    e[i] = Some(da);
                    sh[i] = Some(d);
                }
            }
            Op::Unlink { src, slot } => {
                let Some(s) = Self::pick(&mutable, src) else {
                    return;
                };
                let sv = self.view_of(self.fetch(cx, held, s), "unlink source");
                let so = self.objs.get_mut(&s).expect("src");
                if slot % 8 == 7 {
                    sv.link().expect("scan").set(cx, None);
                    so.link = None;
                    return;
                }
                let mut e = sv.edges().expect("scan").borrow_mut(cx);
                if e.is_empty() {
                    return;
                }
                let i = usize::from(slot & 0x7f) % e.len();
                if slot & 0x80 != 0 {
                    e.remove(i);
                    so.edges.remove(i);
                } else {
                    e[i] = None;
                    so.edges[i] = None;
                }
            }
            Op::SwapEdges { a, sa, b, sb } => {
                let (Some(x), Some(y)) = (Self::pick(&mutable, a), Self::pick(&mutable, b)) else {
                    return;
                };
                let xv = self.view_of(self.fetch(cx, held, x), "swap");
                let yv = self.view_of(self.fetch(cx, held, y), "swap");
                if x == y {
                    let mut e = xv.edges().expect("scan").borrow_mut(cx);
                    if e.len() < 2 {
                        return;
                    }
                    let (i, j) = (usize::from(sa) % e.len(), usize::from(sb) % e.len());
                    e.swap(i, j);
                    self.objs.get_mut(&x).expect("x").edges.swap(i, j);
                } else {
                    let mut ex = xv.edges().expect("scan").borrow_mut(cx);
                    let mut ey = yv.edges().expect("scan").borrow_mut(cx);
                    if ex.is_empty() || ey.is_empty() {
                        return;
                    }
                    let (i, j) = (usize::from(sa) % ex.len(), usize::from(sb) % ey.len());
                    std::mem::swap(&mut ex[i], &mut ey[j]);
                    let xi = self.objs[&x].edges[i];
                    let yj = self.objs[&y].edges[j];
                    self.objs.get_mut(&x).expect("x").edges[i] = yj;
                    self.objs.get_mut(&y).expect("y").edges[j] = xi;
                }
            }
            Op::MakeRoot { obj } => {
                let Some(id) = Self::pick(&reach, obj) else {
                    return;
                };
                let a = self.fetch(cx, held, id);
                let r = root_of(cx, self.objs[&id].kind, a);
                self.roots.push((id, r));
            }
            Op::DropRoot { root } => {
                if !self.roots.is_empty() {
                    let i = usize::from(root) % self.roots.len();
                    self.roots.swap_remove(i);
                }
            }
            Op::MakeWeak { obj } => {
                let Some(id) = Self::pick(&reach, obj) else {
                    return;
                };
                let k = self.objs[&id].kind;
                if k == Kind::Tiny {
                    return;
                }
                let a = self.fetch(cx, held, id);
                self.weaks.push((id, weak_of(cx, k, a)));
            }
            Op::DropWeak { weak } => {
                if !self.weaks.is_empty() {
                    let i = usize::from(weak) % self.weaks.len();
                    self.weaks.swap_remove(i);
                }
            }
            Op::UpgradeWeak { weak, keep } => {
                if self.weaks.is_empty() {
                    return;
                }
                let i = usize::from(weak) % self.weaks.len();
                let id = self.weaks[i].0;
                let got = self.weaks[i].1.upgrade(cx);
                match got {
                    None => {
                        self.stats.upgrades.1 += 1;
                        if self.weak_alive(&held_ids).contains(&id) {
                            self.fail(format!(
                                "weak reference to reachable object {id} gave nothing"
                            ));
                        }
                    }
                    Some(a) => {
                        self.stats.upgrades.0 += 1;
                        if self.dead_set.contains(&id) {
                            self.fail(format!("weak reference to dead object {id} upgraded"));
                        }
                        if self.objs.get(&id).is_some_and(|o| o.fin == Fin::Ran) {
                            self.fail(format!("weak reference to finalized object {id} upgraded"));
                        }
                        let v = self.view_of(a, "upgrade");
                        self.check_obj(id, v);
                        held.insert(id, a);
                        if keep {
                            let r = root_of(cx, self.objs[&id].kind, a);
                            self.roots.push((id, r));
                        }
                    }
                }
            }
            Op::SetFinalizer { obj } => {
                let Some(id) = Self::pick(&reach, obj) else {
                    return;
                };
                let o = &self.objs[&id];
                if o.kind == Kind::Tiny || o.ext {
                    return;
                }
                let (k, before) = (o.kind, o.fin);
                let a = self.fetch(cx, held, id);
                let had = set_finalizer_kind(cx, k, a, id, &self.fin_log, &self.drops);
                if had != (before == Fin::Registered) {
                    self.fail(format!(
                        "set_finalizer on {id} said it had one: {had}, shadow: {before:?}"
                    ));
                }
                self.objs.get_mut(&id).expect("obj").fin = Fin::Registered;
            }
            Op::Verify { obj } => {
                let Some(id) = Self::pick(&reach, obj) else {
                    return;
                };
                let a = self.fetch(cx, held, id);
                self.check_obj(id, self.view_of(a, "verify"));
            }
            Op::SetGcPercent { p } => {
                cx.heap().set_gc_percent(gogc_of(p));
            }
            Op::Safepoint | Op::EndScope | Op::Collect | Op::SpawnSecondMutator { .. } => {
                unreachable!("boundary operations are run by the driver")
            }
        }
        let held_ids: HashSet<u64> = held.keys().copied().collect();
        self.check_invariants(&held_ids);
    }

    // -----------------------------------------------------------------
    // Settling
    // -----------------------------------------------------------------

    /// The cycles the heap will run with no mutator active, simulated:
    /// returns the objects whose finalizers will run and the objects that
    /// will be freed (Go's rules: a registered object's fields are roots;
    /// a registered object left unmarked is finalized and kept one more
    /// cycle).
    fn simulate_settle(&self) -> (HashSet<u64>, HashSet<u64>) {
        let mut registered: HashSet<u64> = self.registered().collect();
        let mut alive: HashSet<u64> = self.objs.keys().copied().collect();
        let mut ran = HashSet::new();
        let none = HashSet::new();
        loop {
            let kids: Vec<u64> = registered
                .iter()
                .flat_map(|&f| self.children(f).collect::<Vec<_>>())
                .collect();
            let marked = self.closure(self.root_seeds(&none).chain(kids));
            let newly: HashSet<u64> = registered
                .iter()
                .copied()
                .filter(|f| !marked.contains(f))
                .collect();
            alive.retain(|id| marked.contains(id) || newly.contains(id));
            if newly.is_empty() {
                break;
            }
            for f in &newly {
                registered.remove(f);
                ran.insert(*f);
            }
        }
        let freed = self
            .objs
            .keys()
            .copied()
            .filter(|id| !alive.contains(id))
            .collect();
        (ran, freed)
    }

    /// After the real heap settled: checks this model against its
    /// simulation, and forgets the dead.
    fn check_settled(&mut self, cx: &Scope<'_>, expect_ran: &HashSet<u64>, freed: &HashSet<u64>) {
        let none = HashSet::new();
        self.absorb_finalizers(&none);
        for (&id, o) in &self.objs {
            let should = expect_ran.contains(&id);
            if should && o.fin != Fin::Ran {
                self.fail(format!("finalizer of unreachable {id} did not run"));
            }
            if !should && o.fin == Fin::Ran && !freed.contains(&id) {
                self.fail(format!(
                    "finalizer of {id} ran, the shadow keeps the object"
                ));
            }
        }
        for &id in freed {
            let o = &self.objs[&id];
            if o.ext {
                self.fail(format!("shared object {id} found dead"));
            }
            if matches!(o.kind, Kind::Scan(_)) && self.drops.get(id) != 1 {
                self.fail(format!(
                    "unreachable object {id} ({:?}) dropped {} times after a full collection",
                    o.kind,
                    self.drops.get(id)
                ));
            }
            if o.kind != Kind::Tiny && self.probes.get(&id).is_some_and(|p| !p.is_dead()) {
                self.fail(format!(
                    "unreachable object {id} ({:?}): its weak reference was not cleared",
                    o.kind
                ));
            }
        }
        // Everything kept: alive, with its exact contents and edges.
        for (&id, o) in &self.objs {
            if freed.contains(&id) {
                continue;
            }
            if self.drops.get(id) != 0 {
                self.fail(format!("live object {id} was dropped"));
            }
            let a = if o.ext {
                match self.ext.iter().find(|r| r.0 == id) {
                    Some(r) => r.1.get(cx),
                    None => continue, // reached through another shared one
                }
            } else {
                match self.probes.get(&id).and_then(|p| p.upgrade(cx)) {
                    Some(a) => a,
                    None => self.fail(format!("live object {id}: weak reference cleared")),
                }
            };
            self.check_obj(id, self.view_of(a, "settled object"));
        }
        // The real graph from every root is the shadow's.
        let mut seen = HashSet::new();
        let mut stack: Vec<GcAny<'_>> = self
            .roots
            .iter()
            .chain(self.ext.iter())
            .map(|r| {
                let a = r.1.get(cx);
                self.expect_id(a, r.0);
                a
            })
            .collect();
        while let Some(a) = stack.pop() {
            let v = self.view_of(a, "graph walk");
            if !seen.insert(v.id()) {
                continue;
            }
            self.check_obj(v.id(), v);
            if let Some(e) = v.edges() {
                stack.extend(e.borrow().iter().flatten().copied());
            }
            if let Some(n) = v.link().and_then(|l| l.get()) {
                stack.push(n.into());
            }
        }
        let expect = self.strong(&none);
        if seen != expect {
            self.fail(format!(
                "graph from the roots has {} objects, shadow {}",
                seen.len(),
                expect.len()
            ));
        }
        for (id, w) in &self.weaks {
            let dead = w.is_dead();
            if freed.contains(id) || self.dead_set.contains(id) {
                if !dead {
                    self.fail(format!("weak reference to freed {id} not cleared"));
                }
            } else if self.objs[id].fin == Fin::Ran {
                // Cleared when queued; the object lives until freed.
                if !dead {
                    self.fail(format!("weak reference to finalized {id} not cleared"));
                }
            } else if dead {
                self.fail(format!("weak reference to live {id} cleared"));
            } else {
                match w.upgrade(cx) {
                    Some(a) => self.expect_id(a, *id),
                    None => self.fail(format!("weak reference to live {id} gave nothing")),
                }
            }
        }
        for &id in freed {
            let o = self.objs.remove(&id).expect("freed object");
            self.probes.remove(&id);
            self.dead_set.insert(id);
            if matches!(o.kind, Kind::Scan(_)) {
                self.dead.push(id);
            }
            self.stats.freed += 1;
        }
        self.stats.settles += 1;
    }

    /// Final check after the heap is gone: every scan object was dropped
    /// exactly once.
    fn check_teardown(&self) {
        for (&id, o) in &self.objs {
            if matches!(o.kind, Kind::Scan(_)) && !o.ext && self.drops.get(id) != 1 {
                self.fail(format!(
                    "object {id} dropped {} times by teardown",
                    self.drops.get(id)
                ));
            }
        }
        for &id in &self.dead {
            if self.drops.get(id) != 1 {
                self.fail(format!(
                    "dead object {id} dropped {} times",
                    self.drops.get(id)
                ));
            }
        }
    }

    /// Gives up every handle into the heap (before it is dropped).
    fn release(&mut self) {
        self.roots.clear();
        self.ext.clear();
        self.weaks.clear();
        self.probes.clear();
    }
}

/// Collections and finalizer runs until no finalizer is left, then one
/// more collection to finish the last sweep; then every model is checked
/// against its simulation. No other mutator may be in a scope.
fn settle(heap: &Heap, m: &mut Mutator, models: &mut [&mut Model]) {
    let none = HashSet::new();
    let sims: Vec<(HashSet<u64>, HashSet<u64>)> = models
        .iter_mut()
        .map(|md| {
            md.absorb_finalizers(&none);
            md.simulate_settle()
        })
        .collect();
    let mut rounds = 0;
    loop {
        heap.collect();
        let ran = m.run_finalizers();
        for md in models.iter_mut() {
            md.check_invariants(&none);
        }
        if ran == 0 {
            break;
        }
        rounds += 1;
        if rounds > 10_000 {
            fail("settle", "finalizers keep running".into());
        }
    }
    heap.collect();
    m.scope(|cx| {
        for (md, (ran, freed)) in models.iter_mut().zip(&sims) {
            md.check_settled(cx, ran, freed);
        }
    });
}

// ---------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------

/// Runs `ops` on `model` with mutator `m`: scope segments split at the
/// boundary operations. `spawn`: whether `SpawnSecondMutator` runs
/// (nested ones are plain scope ends).
fn drive(heap: &Heap, m: &mut Mutator, model: &mut Model, ops: &[Op], spawn: bool) {
    let mut i = 0;
    while i < ops.len() {
        m.scope(|cx| {
            // Entering ran any finalizer that was ready.
            model.check_invariants(&HashSet::new());
            loop {
                {
                    let c: &Scope<'_> = cx;
                    let mut held: HashMap<u64, GcAny<'_>> = HashMap::new();
                    while i < ops.len() {
                        match ops[i] {
                            Op::Safepoint => break,
                            Op::EndScope | Op::Collect | Op::SpawnSecondMutator { .. } => return,
                            ref op => model.apply(c, &mut held, op),
                        }
                        i += 1;
                    }
                }
                if i >= ops.len() {
                    return;
                }
                // A safepoint: the held pointers are gone.
                i += 1;
                model.stats.ops += 1;
                cx.safepoint();
                model.check_invariants(&HashSet::new());
            }
        });
        if i >= ops.len() {
            break;
        }
        model.stats.ops += 1;
        match ops[i] {
            Op::Collect if model.concurrent => m.collect(),
            Op::Collect => settle(heap, m, &mut [&mut *model]),
            Op::SpawnSecondMutator { ops: n } if spawn => {
                let end = (i + 2 + usize::from(n % 16)).min(ops.len());
                let sub = &ops[i + 1..end];
                std::thread::scope(|s| {
                    let t = s.spawn(|| {
                        let mut m2 = heap.mutator();
                        drive(heap, &mut m2, model, sub, false);
                    });
                    if let Err(p) = t.join() {
                        std::panic::resume_unwind(p);
                    }
                });
                i = end - 1;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Runs one sequence on a fresh heap with one mutator (and a second one
/// for `SpawnSecondMutator`), settles and checks at every `Collect` and at
/// the end, then drops the heap and checks that every object was dropped
/// exactly once. Panics with a `shadow model` message on any difference.
pub fn run_single(cfg: &Config, ops: &[Op]) -> RunStats {
    let heap = cfg.builder().build().expect("heap");
    let mut m = heap.mutator();
    let mut model = Model::new("single", 0);
    drive(&heap, &mut m, &mut model, ops, true);
    settle(&heap, &mut m, &mut [&mut model]);
    model.release();
    drop(m);
    drop(heap);
    model.check_teardown();
    model.stats
}

/// Shared objects for a concurrent run: `n` scan nodes in a ring with
/// chords, all rooted, owned by `owner`.
fn build_shared(cx: &Scope<'_>, owner: &mut Model, n: usize) {
    let mut made: Vec<(u64, GcAny<'_>)> = Vec::new();
    for k in 0..n {
        let id = owner.next_id;
        owner.next_id += 1;
        let kind = Kind::Scan(SCAN_SIZES[k % 8]);
        let a = alloc_kind(cx, kind, id, &owner.drops).expect("shared object");
        owner.objs.insert(
            id,
            SObj {
                kind,
                edges: Vec::new(),
                link: None,
                fin: Fin::None,
                ext: false,
            },
        );
        owner.probes.insert(id, weak_of(cx, kind, a));
        made.push((id, a));
    }
    for k in 0..n {
        let (id, a) = made[k];
        let targets = [made[(k + 1) % n], made[(k * 7 + 3) % n]];
        let v = any_view(a).expect("shared");
        let mut e = v.edges().expect("scan").borrow_mut(cx);
        for (tid, t) in targets {
            e.push(Some(t));
            owner
                .objs
                .get_mut(&id)
                .expect("shared")
                .edges
                .push(Some(tid));
        }
        let r = root_of(cx, owner.objs[&id].kind, a);
        owner.roots.push((id, r));
    }
}

/// A thread's model in a concurrent run: the owner's shared objects as
/// read-only, always-rooted externals.
fn thread_model(name: &str, base: u64, owner: &Model) -> Model {
    let mut md = Model::new(name, base);
    md.concurrent = true;
    for (id, r) in &owner.roots {
        md.ext.push((*id, r.clone_root()));
    }
    for (&id, o) in &owner.objs {
        let mut o = o.clone();
        o.ext = true;
        md.objs.insert(id, o);
    }
    md
}

/// The concurrent variant: two threads, each with its own `Mutator` and
/// model, apply their sequences in rounds of `chunk` operations at the
/// same time, while collections run (the configuration's GOGC and stress,
/// and the threads' own `Collect`s). Each thread owns the objects it
/// allocates; both read and link to a shared rooted graph. At every join
/// the heap is settled and both models (and the shared graph's) checked.
pub fn run_concurrent(cfg: &Config, ops_a: &[Op], ops_b: &[Op], chunk: usize) -> RunStats {
    let heap = cfg.builder().build().expect("heap");
    let mut m = heap.mutator();
    let mut owner = Model::new("shared", 0);
    m.scope(|cx| build_shared(cx, &mut owner, 12));
    let mut a = thread_model("thread A", 1_000_000, &owner);
    let mut b = thread_model("thread B", 2_000_000, &owner);
    let chunk = chunk.max(1);
    let rounds = ops_a.len().max(ops_b.len()).div_ceil(chunk);
    for r in 0..rounds {
        let part =
            |ops: &[Op]| -> Vec<Op> { ops.iter().skip(r * chunk).take(chunk).cloned().collect() };
        let (pa, pb) = (part(ops_a), part(ops_b));
        std::thread::scope(|s| {
            let ta = s.spawn(|| {
                let mut m2 = heap.mutator();
                drive(&heap, &mut m2, &mut a, &pa, false);
            });
            let tb = s.spawn(|| {
                let mut m3 = heap.mutator();
                drive(&heap, &mut m3, &mut b, &pb, false);
            });
            for t in [ta, tb] {
                if let Err(p) = t.join() {
                    std::panic::resume_unwind(p);
                }
            }
        });
        settle(&heap, &mut m, &mut [&mut owner, &mut a, &mut b]);
    }
    let mut stats = RunStats::default();
    for md in [&mut owner, &mut a, &mut b] {
        md.release();
    }
    drop(m);
    drop(heap);
    for md in [&owner, &a, &b] {
        md.check_teardown();
        let s = &md.stats;
        stats.ops += s.ops;
        stats.allocs += s.allocs;
        stats.settles = stats.settles.max(s.settles);
        stats.freed += s.freed;
        stats.finalizers += s.finalizers;
        stats.upgrades.0 += s.upgrades.0;
        stats.upgrades.1 += s.upgrades.1;
    }
    stats
}

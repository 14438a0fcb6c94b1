//! `go-malloc`: the shapes of the Go runtime's own malloc benchmarks
//! (`BenchmarkMalloc8`, `Malloc16`, `MallocTypeInfo8`, `MallocTypeInfo16`
//! and `MallocLargeStruct` in Go's `src/runtime/malloc_test.go`), on the
//! Rust peers. Go's numbers come from `go test -bench` itself, run and
//! summarised by `../go-malloc.sh`; harness-go and harness-bdwgc have no
//! `go-malloc`. This module holds the driver and every peer's loops.
//!
//! # Workload
//!
//! For each shape, in this order, `N = 2^24` iterations (`--quick`:
//! `2^14`). An iteration allocates one object of the shape, XORs its
//! address into a sink (Go: `x ^= uintptr(unsafe.Pointer(p))`; here the
//! pointer goes through `std::hint::black_box`, so the compiler can
//! neither elide nor stack-allocate the object) and drops it (a GC peer
//! just forgets it). The objects are never read.
//!
//! | shape | Go | the object here |
//! |---|---|---|
//! | `Malloc8` | `new(int64)` | an `i64`, no pointers |
//! | `Malloc16` | `new([2]int64)` | an `[i64; 2]`, no pointers |
//! | `MallocTypeInfo8` | `new(struct{ p [1]*int })` | a struct of 1 null pointer field (`Option<P<i64>>`, 8 bytes) |
//! | `MallocTypeInfo16` | `new(struct{ p [2]*int })` | a struct of 2 null pointer fields (16 bytes) |
//! | `MallocLargeStruct` | `make([]LargeStruct, 2)`, `LargeStruct{ x [16][]byte }` | 2 × 16 empty "slices", 768 bytes |
//!
//! `P` is the peer's pointer: `spanheap::Gc`, `gc_arena::Gc`,
//! `dumpster::unsync::Gc`, `gc::Gc`, `Box`, `Rc`, `&'bump`. A Go slice
//! header is (pointer, length, capacity), 24 bytes; for the GC peers the
//! "slice" is a struct `Slice { ptr: Option<Gc<u8>>, len: usize, cap:
//! usize }` (the same 24 bytes and one traced pointer: none of these
//! crates has a GC-managed slice with a length and a capacity), so the
//! object is `[LargeStruct; 2]`, 768 bytes with 32 pointer fields. The
//! non-GC baselines use Rust's own owned byte buffer, `Vec<u8>` (also 24
//! bytes); `box`/`mimalloc`/`rc` allocate `[LargeStruct; 2]` with
//! `Box::new` / `Rc::new` (one 768-byte block, as Go's `make`), bumpalo
//! with `alloc_slice_fill_default(2)`.
//!
//! Output, one line per shape: `go-malloc {Name} {N}`. Metric:
//! `ns_per_op_{Name}`, the shape's whole loop time divided by `N` (Go's
//! ns/op). Plus the GC peers' collector numbers: `gc_cycles` (spanheap,
//! rust-gc), `max_pause_ns` / `pause_total_ns` (spanheap, gc-arena). There
//! is no multi-threaded variant.
//!
//! # Peers
//!
//! - spanheap: one `Heap` with the default settings, one `Mutator`; each
//!   shape's whole loop is one `Mutator::scope` with `Scope::safepoint()`
//!   after every [`CHUNK`] iterations (as the `alloc` workload). The
//!   pointer-free shapes are headerless noscan objects; the others carry
//!   spanheap's 8-byte type header (Go 1.19 describes pointers in a
//!   bitmap outside the object), so they take the next size class: 16,
//!   24 and 896 bytes against Go's 8, 16 and 768.
//! - gc-arena: one `Arena<Rootable![()]>`; one `Arena::mutate` per
//!   [`CHUNK`] iterations, then `collect_debt()` if the allocation debt
//!   exceeds 1,024 (the `gc-arena` peer's pacing, after piccolo).
//! - dumpster: `unsync::Gc::new`; the drop of the only reference frees the
//!   object (reference counting), default collect condition.
//! - rust-gc: `gc::Gc::new`; dead objects wait for the next collection,
//!   which `Gc::new` starts past the crate's byte threshold.
//! - box / mimalloc: `Box::new`, dropped at once.
//! - rc: `Rc::new`, dropped at once (the count reaches zero: a free).
//! - bumpalo: `Bump::alloc` (`alloc_slice_fill_default` for LargeStruct);
//!   the arena is `reset()` every [`CHUNK`] iterations, the arena's way of
//!   dropping dead objects (as the `bumpalo` peer's `alloc` ring).
//!
//! References: Go 1.19 `src/runtime/malloc_test.go` (the five benchmarks)
//! and `src/runtime/malloc.go` (`mallocgc`); issue 7.

use crate::{Metric, Report};
use std::hint::black_box;
use std::time::Instant;

/// Iterations between two safepoints (spanheap), arena mutations
/// (gc-arena) or arena resets (bumpalo).
pub const CHUNK: usize = 1000;

/// One of Go's benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `new(int64)`.
    Malloc8,
    /// `new([2]int64)`.
    Malloc16,
    /// One pointer.
    MallocTypeInfo8,
    /// Two pointers.
    MallocTypeInfo16,
    /// `make([]LargeStruct, 2)`.
    MallocLargeStruct,
}

impl Shape {
    /// Every shape, in the order they run (and Go's file lists them).
    pub const ALL: [Shape; 5] = [
        Shape::Malloc8,
        Shape::Malloc16,
        Shape::MallocTypeInfo8,
        Shape::MallocTypeInfo16,
        Shape::MallocLargeStruct,
    ];

    /// The name, Go's benchmark name without `Benchmark`.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Malloc8 => "Malloc8",
            Shape::Malloc16 => "Malloc16",
            Shape::MallocTypeInfo8 => "MallocTypeInfo8",
            Shape::MallocTypeInfo16 => "MallocTypeInfo16",
            Shape::MallocLargeStruct => "MallocLargeStruct",
        }
    }
}

/// Iterations per shape.
pub fn iterations(quick: bool) -> usize {
    if quick { 1 << 14 } else { 1 << 24 }
}

/// The output lines.
pub fn expected(quick: bool) -> Vec<String> {
    let n = iterations(quick);
    Shape::ALL
        .iter()
        .map(|s| format!("go-malloc {} {n}", s.name()))
        .collect()
}

/// The address of an object, through `black_box`: the allocation must
/// happen, and its address is observed.
#[inline(always)]
fn addr<T: ?Sized>(p: *const T) -> usize {
    black_box(p).cast::<u8>() as usize
}

/// Runs every shape: `one(shape, n)` runs `n` iterations and returns the
/// XOR of the addresses.
fn drive(quick: bool, mut one: impl FnMut(Shape, usize) -> usize) -> Report {
    let n = iterations(quick);
    let mut report = Report::default();
    for shape in Shape::ALL {
        let t0 = Instant::now();
        black_box(one(shape, n));
        let ns = t0.elapsed().as_secs_f64() * 1e9 / n as f64;
        report.lines.push(format!("go-malloc {} {n}", shape.name()));
        report
            .metrics
            .push(Metric::float(format!("ns_per_op_{}", shape.name()), ns));
    }
    report
}

/// `n` iterations of `one`, which allocates an object, drops it and
/// returns its address.
#[inline(always)]
fn each(n: usize, mut one: impl FnMut() -> usize) -> usize {
    let mut x = 0;
    for _ in 0..n {
        x ^= one();
    }
    x
}

// ---------------------------------------------------------------------
// box, mimalloc, rc, bumpalo
// ---------------------------------------------------------------------

/// Go's `struct{ p [N]*int }`, with the peer's pointer `P`.
struct TypeInfo<P, const N: usize> {
    #[allow(dead_code)]
    p: [Option<P>; N],
}

impl<P, const N: usize> TypeInfo<P, N> {
    fn null() -> Self {
        TypeInfo {
            p: std::array::from_fn(|_| None),
        }
    }
}

/// Go's `LargeStruct`, sixteen byte buffers (empty).
#[derive(Default)]
struct LargeStruct {
    #[allow(dead_code)]
    x: [Vec<u8>; 16],
}

/// `go-malloc` with `Box` (the `box` peer; `mimalloc` in
/// `harness-mimalloc`).
pub fn boxed(quick: bool) -> Report {
    drive(quick, |shape, n| match shape {
        Shape::Malloc8 => each(n, || addr(&*Box::new(0i64))),
        Shape::Malloc16 => each(n, || addr(&*Box::new([0i64; 2]))),
        Shape::MallocTypeInfo8 => each(n, || addr(&*Box::new(TypeInfo::<Box<i64>, 1>::null()))),
        Shape::MallocTypeInfo16 => each(n, || addr(&*Box::new(TypeInfo::<Box<i64>, 2>::null()))),
        Shape::MallocLargeStruct => each(n, || {
            let v = Box::new([LargeStruct::default(), LargeStruct::default()]);
            addr(v.as_ptr())
        }),
    })
}

/// `go-malloc` with `Rc`.
pub fn rc(quick: bool) -> Report {
    use std::rc::Rc;
    drive(quick, |shape, n| match shape {
        Shape::Malloc8 => each(n, || addr(Rc::as_ptr(&Rc::new(0i64)))),
        Shape::Malloc16 => each(n, || addr(Rc::as_ptr(&Rc::new([0i64; 2])))),
        Shape::MallocTypeInfo8 => each(n, || {
            addr(Rc::as_ptr(&Rc::new(TypeInfo::<Rc<i64>, 1>::null())))
        }),
        Shape::MallocTypeInfo16 => each(n, || {
            addr(Rc::as_ptr(&Rc::new(TypeInfo::<Rc<i64>, 2>::null())))
        }),
        Shape::MallocLargeStruct => each(n, || {
            let v: Rc<[LargeStruct]> = Rc::new([LargeStruct::default(), LargeStruct::default()]);
            addr(Rc::as_ptr(&v))
        }),
    })
}

/// `go-malloc` with a bumpalo arena, reset every [`CHUNK`] iterations.
pub fn bumpalo(quick: bool) -> Report {
    use ::bumpalo::Bump;
    let mut bump = Bump::new();
    let mut chunked = |n: usize, one: &mut dyn FnMut(&Bump) -> usize| {
        let mut x = 0;
        let mut done = 0;
        while done < n {
            let end = (done + CHUNK).min(n);
            for _ in done..end {
                x ^= one(&bump);
            }
            bump.reset();
            done = end;
        }
        x
    };
    drive(quick, |shape, n| match shape {
        Shape::Malloc8 => chunked(n, &mut |b| addr(b.alloc(0i64))),
        Shape::Malloc16 => chunked(n, &mut |b| addr(b.alloc([0i64; 2]))),
        Shape::MallocTypeInfo8 => chunked(n, &mut |b| addr(b.alloc(TypeInfo::<&i64, 1>::null()))),
        Shape::MallocTypeInfo16 => chunked(n, &mut |b| addr(b.alloc(TypeInfo::<&i64, 2>::null()))),
        Shape::MallocLargeStruct => chunked(n, &mut |b| {
            addr(b.alloc_slice_fill_default::<LargeStruct>(2).as_ptr())
        }),
    })
}

// ---------------------------------------------------------------------
// spanheap
// ---------------------------------------------------------------------

pub use spanheap_peer::spanheap;

/// The `spanheap` peer.
mod spanheap_peer {
    use super::{CHUNK, Shape, addr, drive};
    use crate::{Metric, Report};
    use ::spanheap::{Gc, Heap, Mutator, Scope, Trace};

    #[derive(Trace)]
    struct TypeInfo1<'gc> {
        #[allow(dead_code)]
        p: [Option<Gc<'gc, i64>>; 1],
    }

    #[derive(Trace)]
    struct TypeInfo2<'gc> {
        #[allow(dead_code)]
        p: [Option<Gc<'gc, i64>>; 2],
    }

    /// A Go slice header: a (traced) pointer, a length, a capacity.
    #[derive(Trace, Clone, Copy)]
    #[allow(dead_code)]
    struct Slice<'gc> {
        ptr: Option<Gc<'gc, u8>>,
        len: usize,
        cap: usize,
    }

    #[derive(Trace, Clone, Copy)]
    struct LargeStruct<'gc> {
        #[allow(dead_code)]
        x: [Slice<'gc>; 16],
    }

    /// `make([]LargeStruct, 2)`'s value: zero slices.
    fn large<'gc>() -> [LargeStruct<'gc>; 2] {
        let nil = Slice {
            ptr: None,
            len: 0,
            cap: 0,
        };
        [LargeStruct { x: [nil; 16] }; 2]
    }

    /// One scope, a safepoint every [`CHUNK`] iterations.
    fn scoped(m: &mut Mutator, n: usize, mut one: impl FnMut(&Scope<'_>) -> usize) -> usize {
        m.scope(|cx| {
            let mut x = 0;
            let mut done = 0;
            while done < n {
                let end = (done + CHUNK).min(n);
                for _ in done..end {
                    x ^= one(cx);
                }
                cx.safepoint();
                done = end;
            }
            x
        })
    }

    /// The address of a new object; allocation failure ends the run.
    macro_rules! alloc {
        ($cx:expr, $v:expr) => {
            addr(Gc::as_ptr(
                $cx.alloc($v).expect("spanheap allocation failed"),
            ))
        };
    }

    /// `go-malloc` on spanheap.
    pub fn spanheap(quick: bool) -> Report {
        let heap = Heap::new().expect("spanheap: cannot build a heap");
        let mut m = heap.mutator();
        let mut report = drive(quick, |shape, n| match shape {
            Shape::Malloc8 => scoped(&mut m, n, |cx| alloc!(cx, 0i64)),
            Shape::Malloc16 => scoped(&mut m, n, |cx| alloc!(cx, [0i64; 2])),
            Shape::MallocTypeInfo8 => scoped(&mut m, n, |cx| alloc!(cx, TypeInfo1 { p: [None] })),
            Shape::MallocTypeInfo16 => {
                scoped(&mut m, n, |cx| alloc!(cx, TypeInfo2 { p: [None; 2] }))
            }
            Shape::MallocLargeStruct => scoped(&mut m, n, |cx| alloc!(cx, large())),
        });
        let st = heap.stats();
        report.metrics.extend([
            Metric::int("gc_cycles", st.num_gc),
            Metric::ns("max_pause_ns", st.pause_max),
            Metric::ns("pause_total_ns", st.pause_total),
        ]);
        report
    }
}

// ---------------------------------------------------------------------
// gc-arena
// ---------------------------------------------------------------------

pub use gc_arena_peer::gc_arena;

/// The `gc_arena` peer.
mod gc_arena_peer {
    use super::{CHUNK, Shape, addr, drive, each};
    use crate::{Metric, Report};
    use ::gc_arena::{Arena, Collect, Gc, Mutation, Rootable};
    use std::time::Duration;
    use std::time::Instant;

    #[derive(Collect)]
    #[collect(no_drop)]
    struct TypeInfo<'gc, const N: usize> {
        #[allow(dead_code)]
        p: [Option<Gc<'gc, i64>>; N],
    }

    /// A Go slice header: a (traced) pointer, a length, a capacity.
    #[derive(Collect, Clone, Copy)]
    #[collect(no_drop)]
    #[allow(dead_code)]
    struct Slice<'gc> {
        ptr: Option<Gc<'gc, u8>>,
        len: usize,
        cap: usize,
    }

    #[derive(Collect, Clone, Copy)]
    #[collect(no_drop)]
    struct LargeStruct<'gc> {
        #[allow(dead_code)]
        x: [Slice<'gc>; 16],
    }

    /// `make([]LargeStruct, 2)`'s value: zero slices.
    fn large<'gc>() -> [LargeStruct<'gc>; 2] {
        let nil = Slice {
            ptr: None,
            len: 0,
            cap: 0,
        };
        [LargeStruct { x: [nil; 16] }; 2]
    }

    /// `go-malloc` on gc-arena.
    pub fn gc_arena(quick: bool) -> Report {
        /// Allocation debt above which the arena collects (the `gc-arena`
        /// peer's granularity, piccolo's `COLLECTOR_GRANULARITY`).
        const COLLECTOR_GRANULARITY: f64 = 1024.0;

        type Empty = Rootable![()];
        let mut arena = Arena::<Empty>::new(|_| ());
        let mut pause_max = Duration::ZERO;
        let mut pause_total = Duration::ZERO;
        // One `mutate` per CHUNK iterations, then the debt is paid if it is
        // worth it.
        let mut chunked = |n: usize, one: &dyn for<'gc> Fn(&Mutation<'gc>) -> usize| {
            let mut x = 0;
            let mut done = 0;
            while done < n {
                let end = (done + CHUNK).min(n);
                x ^= arena.mutate(|mc, _| each(end - done, || one(mc)));
                if arena.metrics().allocation_debt() > COLLECTOR_GRANULARITY {
                    let t0 = Instant::now();
                    arena.collect_debt();
                    let pause = t0.elapsed();
                    pause_max = pause_max.max(pause);
                    pause_total += pause;
                }
                done = end;
            }
            x
        };
        let mut report = drive(quick, |shape, n| match shape {
            Shape::Malloc8 => chunked(n, &|mc| addr(Gc::as_ptr(Gc::new(mc, 0i64)))),
            Shape::Malloc16 => chunked(n, &|mc| addr(Gc::as_ptr(Gc::new(mc, [0i64; 2])))),
            Shape::MallocTypeInfo8 => chunked(n, &|mc| {
                addr(Gc::as_ptr(Gc::new(mc, TypeInfo::<1> { p: [None] })))
            }),
            Shape::MallocTypeInfo16 => chunked(n, &|mc| {
                addr(Gc::as_ptr(Gc::new(mc, TypeInfo::<2> { p: [None; 2] })))
            }),
            Shape::MallocLargeStruct => chunked(n, &|mc| addr(Gc::as_ptr(Gc::new(mc, large())))),
        });
        report.metrics.extend([
            Metric::ns("max_pause_ns", pause_max),
            Metric::ns("pause_total_ns", pause_total),
        ]);
        report
    }
}

// ---------------------------------------------------------------------
// dumpster
// ---------------------------------------------------------------------

pub use dumpster_peer::dumpster;

/// The `dumpster` peer.
mod dumpster_peer {
    use super::{Shape, addr, drive, each};
    use crate::Report;
    use ::dumpster::Trace;
    use ::dumpster::unsync::Gc;

    #[derive(Trace)]
    struct TypeInfo<const N: usize> {
        #[allow(dead_code)]
        p: [Option<Gc<i64>>; N],
    }

    /// A Go slice header: a (traced) pointer, a length, a capacity.
    #[derive(Trace, Default)]
    #[allow(dead_code)]
    struct Slice {
        ptr: Option<Gc<u8>>,
        len: usize,
        cap: usize,
    }

    #[derive(Trace, Default)]
    struct LargeStruct {
        #[allow(dead_code)]
        x: [Slice; 16],
    }

    /// `go-malloc` on dumpster's thread-local `unsync::Gc`.
    pub fn dumpster(quick: bool) -> Report {
        drive(quick, |shape, n| match shape {
            Shape::Malloc8 => each(n, || addr(Gc::as_ptr(&Gc::new(0i64)))),
            Shape::Malloc16 => each(n, || addr(Gc::as_ptr(&Gc::new([0i64; 2])))),
            Shape::MallocTypeInfo8 => each(n, || {
                addr(Gc::as_ptr(&Gc::new(TypeInfo::<1> { p: [None] })))
            }),
            Shape::MallocTypeInfo16 => each(n, || {
                addr(Gc::as_ptr(&Gc::new(TypeInfo::<2> { p: [None, None] })))
            }),
            Shape::MallocLargeStruct => each(n, || {
                addr(Gc::as_ptr(&Gc::new(<[LargeStruct; 2]>::default())))
            }),
        })
    }
}

// ---------------------------------------------------------------------
// rust-gc
// ---------------------------------------------------------------------

pub use rust_gc_peer::rust_gc;

/// The `rust_gc` peer.
mod rust_gc_peer {
    // gc_derive 0.5.0 (the latest) emits its impls inside a `const _`
    // block, which this lint flags; the impls are the crate's documented
    // way to make a type collectable.
    #![allow(non_local_definitions)]
    use super::{Shape, addr, drive, each};
    use crate::{Metric, Report};
    use ::gc::{Finalize, Gc, Trace};

    #[derive(Trace, Finalize)]
    struct TypeInfo<const N: usize> {
        #[allow(dead_code)]
        p: [Option<Gc<i64>>; N],
    }

    /// A Go slice header: a (traced) pointer, a length, a capacity.
    #[derive(Trace, Finalize, Default)]
    #[allow(dead_code)]
    struct Slice {
        ptr: Option<Gc<u8>>,
        len: usize,
        cap: usize,
    }

    #[derive(Trace, Finalize, Default)]
    struct LargeStruct {
        #[allow(dead_code)]
        x: [Slice; 16],
    }

    /// `go-malloc` on rust-gc (crate `gc`).
    pub fn rust_gc(quick: bool) -> Report {
        let before = ::gc::stats().collections_performed;
        let mut report = drive(quick, |shape, n| match shape {
            Shape::Malloc8 => each(n, || addr(&*Gc::new(0i64))),
            Shape::Malloc16 => each(n, || addr(&*Gc::new([0i64; 2]))),
            Shape::MallocTypeInfo8 => each(n, || addr(&*Gc::new(TypeInfo::<1> { p: [None] }))),
            Shape::MallocTypeInfo16 => {
                each(n, || addr(&*Gc::new(TypeInfo::<2> { p: [None, None] })))
            }
            Shape::MallocLargeStruct => each(n, || addr(&*Gc::new(<[LargeStruct; 2]>::default()))),
        });
        let cycles = ::gc::stats().collections_performed - before;
        report.metrics.push(Metric::int("gc_cycles", cycles as u64));
        report
    }
}

//! The costs an interpreter pays per operation: entering and leaving a
//! scope, a safepoint poll with nothing pending, an allocation of a small
//! scan object (with its header) and of a small noscan object, and a
//! `GcCell::set` outside marking (the barrier's flag check).
//!
//! `cargo bench -p spanheap --bench scope`

use criterion::{Criterion, criterion_group, criterion_main};
use spanheap::{Gc, GcCell, Heap, Trace};
use std::hint::black_box;

#[derive(Trace)]
struct Pair<'gc> {
    a: Option<Gc<'gc, Pair<'gc>>>,
    b: GcCell<'gc, Option<Gc<'gc, Pair<'gc>>>>,
}

fn bench(c: &mut Criterion) {
    let heap = Heap::builder().stress(None).build().expect("heap");
    let mut m = heap.mutator();
    let mut g = c.benchmark_group("scope");
    g.bench_function("enter+leave", |b| {
        b.iter(|| m.scope(|cx| black_box(cx as *const _ as usize)))
    });
    g.bench_function("safepoint (nothing pending)", |b| {
        m.scope(|cx| b.iter(|| cx.safepoint()))
    });
    // Allocation: leave the scope every 4096 allocations so collections
    // can run, as a program would.
    g.bench_function("alloc 16 B scan object (+8 B header)", |b| {
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(4096);
                m.scope(|cx| {
                    for _ in 0..n {
                        black_box(
                            cx.alloc(Pair {
                                a: None,
                                b: GcCell::new(None),
                            })
                            .expect("alloc"),
                        );
                    }
                });
                left -= n;
            }
            t.elapsed()
        })
    });
    g.bench_function("alloc 16 B noscan object", |b| {
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(4096);
                m.scope(|cx| {
                    for i in 0..n {
                        black_box(cx.alloc([i, i]).expect("alloc"));
                    }
                });
                left -= n;
            }
            t.elapsed()
        })
    });
    g.bench_function("GcCell::set (no mark running)", |b| {
        m.scope(|cx| {
            let x = cx
                .alloc(Pair {
                    a: None,
                    b: GcCell::new(None),
                })
                .expect("alloc");
            let y = cx
                .alloc(Pair {
                    a: None,
                    b: GcCell::new(None),
                })
                .expect("alloc");
            b.iter(|| x.b.set(cx, black_box(Some(y))))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

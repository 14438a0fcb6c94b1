//! Measures what the stack check in the `Trace` impls of `Box` and the
//! std collections (`stacker::maybe_grow`, see `src/trace.rs`) costs the
//! mark: one object holding a `Vec` of 1,000,000 `Box`es, each holding a
//! `Gc` of its own, marked `CYCLES` times by one mark worker; prints the
//! mean mark time per cycle and per `Box`. Compare builds with and
//! without the check (e.g. under `perf stat -e instructions:u`).
//!
//! `cargo run --release -p spanheap --example mark_boxes [boxes] [cycles]`

use spanheap::{Gc, Heap, Root, Trace};

#[derive(Trace)]
struct Item<'gc> {
    leaf: Gc<'gc, u64>,
    extra: u64,
}

#[derive(Trace)]
struct Holder<'gc> {
    // Boxed on purpose: the `Box` impl's stack check is what is measured.
    #[allow(clippy::vec_box)]
    items: Vec<Box<Item<'gc>>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let boxes: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let cycles: u32 = args.next().map_or(Ok(20), |a| a.parse())?.max(1);
    let h = Heap::builder().mark_workers(1).build()?;
    let mut m = h.mutator();
    let keep: Root<Holder<'static>> = m.scope(|cx| {
        let mut items = Vec::with_capacity(boxes);
        for i in 0..boxes as u64 {
            items.push(Box::new(Item {
                leaf: cx.alloc(i)?,
                extra: i,
            }));
        }
        Ok::<_, spanheap::AllocError>(cx.root(cx.alloc(Holder { items })?))
    })?;
    h.collect();
    let before = h.stats().mark_total;
    for _ in 0..cycles {
        h.collect();
    }
    let s = h.stats();
    let per_cycle = (s.mark_total - before) / cycles;
    println!(
        "{boxes} boxes, {cycles} cycles: mark {per_cycle:?} per cycle, {:.2} ns per box",
        per_cycle.as_nanos() as f64 / boxes as f64
    );
    m.scope(|cx| assert_eq!(keep.get(cx).items.len(), boxes));
    Ok(())
}

//! Allocator demo: a mixed workload on spanheap's Go-style allocator, with
//! per-size-class statistics.
//!
//! It plays the part of a small program plus a stand-in collector: it
//! allocates a mix of object sizes (mostly small, some medium, a few large;
//! scan and noscan), keeps a sliding window of them alive, and every few
//! hundred thousand allocations runs a "collection" — mark the live window,
//! start a sweep — exactly the calls the real collector will make. At the end
//! it prints Go-`MemStats`-style totals and the per-size-class table, then
//! hands free memory back to the OS and shows the RSS drop.
//!
//! Usage: `cargo run --release -p spanheap-examples --bin alloc-demo -- [allocations] [live-window]`

use spanheap_heap::sizeclasses::class_size;
use spanheap_heap::sync::Arc;
use spanheap_heap::{AllocRequest, BackgroundScavenger, HeapConfig, MCache, MHeap, os};
use std::collections::VecDeque;
use std::time::Instant;

/// A small deterministic PRNG (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// An object size drawn from an interpreter-like mix.
fn pick(rng: &mut Rng) -> AllocRequest {
    let r = rng.next();
    let noscan = r & 1 == 0;
    let size = match (r >> 1) % 1000 {
        0..=299 => 1 + (r >> 16) as usize % 15, // tiny strings, numbers
        300..=749 => 16 + (r >> 16) as usize % 112, // small records
        750..=949 => 128 + (r >> 16) as usize % 1920, // arrays, tables
        950..=997 => 2048 + (r >> 16) as usize % 30_000, // buffers
        _ => 33_000 + (r >> 16) as usize % 300_000, // large objects
    };
    if noscan {
        AllocRequest::noscan(size)
    } else {
        AllocRequest::scan(size)
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3_000_000);
    let window: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let cycle_every = 250_000u64;

    let heap = Arc::new(MHeap::new(HeapConfig::default())?);
    let scavenger = BackgroundScavenger::start(heap.clone())?;
    let mut cache = MCache::new(heap.clone());
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut live: VecDeque<usize> = VecDeque::with_capacity(window);
    let mut cycles = 0;
    let start = Instant::now();

    println!("spanheap allocator demo: {total} allocations, live window {window}");
    for i in 0..total {
        let req = pick(&mut rng);
        let p = cache.alloc(req)?;
        // Touch the object like a constructor would.
        // SAFETY: `p` points to at least `req.size` fresh bytes we own.
        unsafe { p.as_ptr().write(i as u8) };
        live.push_back(p.as_ptr() as usize);
        if live.len() > window {
            live.pop_front();
        }
        if (i + 1) % cycle_every == 0 {
            let t = Instant::now();
            heap.finish_sweep()?;
            for &a in &live {
                heap.mark_object(a);
            }
            if let Some(t) = cache.tiny_block() {
                heap.mark_object(t);
            }
            // SAFETY: this demo has one mutator thread, and it is here, not
            // inside the allocator; nothing marks until the next
            // finish_sweep.
            unsafe { heap.begin_sweep() }?;
            cache.release_all();
            cycles += 1;
            let st = heap.stats();
            println!(
                "cycle {cycles:>3} @{:>6.3}s: mark+flip {:>7.3} ms, heap in use {:>7.1} MiB, mapped {:>7.1} MiB, released {:>6.1} MiB",
                start.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e3,
                mib(st.heap_inuse),
                mib(st.heap_sys),
                mib(st.heap_released),
            );
        }
    }
    cache.release_all();
    heap.finish_sweep()?;
    let elapsed = start.elapsed();
    let st = heap.stats();

    println!();
    println!(
        "{total} allocations in {:.3} s ({:.1} ns/alloc including sweeping), {cycles} collections",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / total as f64
    );
    println!(
        "HeapAlloc {:.1} MiB  HeapInuse {:.1} MiB  HeapIdle {:.1} MiB  HeapReleased {:.1} MiB  HeapSys {:.1} MiB",
        mib(st.heap_alloc),
        mib(st.heap_inuse),
        mib(st.heap_idle),
        mib(st.heap_released),
        mib(st.heap_sys)
    );
    println!(
        "Mallocs {}  Frees {}  HeapObjects {}  TinyAllocs {}  Large {} / freed {}  MSpanInuse {} KiB  GCSys(bits) {} KiB",
        st.mallocs,
        st.frees,
        st.heap_objects,
        st.tiny_allocs,
        st.large_mallocs,
        st.large_frees,
        st.mspan_inuse >> 10,
        st.gc_sys >> 10
    );
    println!();
    println!("class  bytes/obj      mallocs        frees     live  live KiB");
    for c in st.by_size.iter().filter(|c| c.mallocs > 0) {
        let live = c.mallocs - c.frees;
        println!(
            "{:>5}  {:>9}  {:>11}  {:>11}  {:>7}  {:>8}",
            c.class,
            class_size(c.class),
            c.mallocs,
            c.frees,
            live,
            (live * c.size as u64) >> 10
        );
    }

    let rss_before = os::process_rss().unwrap_or(0);
    let released = heap.release_free_memory();
    let rss_after = os::process_rss().unwrap_or(0);
    println!();
    println!(
        "scavenge: released {:.1} MiB to the OS; RSS {:.1} MiB -> {:.1} MiB",
        mib(released as u64),
        mib(rss_before as u64),
        mib(rss_after as u64)
    );
    heap.verify()?;
    cache.verify()?;
    println!("heap verified: page map, page accounting, span lists, bitmaps consistent");
    drop(scavenger);
    Ok(())
}

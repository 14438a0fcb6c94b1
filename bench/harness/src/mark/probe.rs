//! The pointer-chase probe (`harness probe box`): the latency-bound
//! bandwidth of this machine at a given heap size — what a marker that
//! follows one pointer at a time can hope for when every load misses.
//!
//! An array of `N = heap_mib × 2^20 / 32` cells of 32 bytes (a `u64`
//! index of the next cell and three `u64` of padding, the size of a
//! [`mark`](super) node) holds one random cyclic permutation: starting at
//! cell 0, following `next` visits every cell once before coming back.
//! It is built with Sattolo's algorithm driven by the mark layout's
//! generator ([`SplitMix64`], seed [`SEED`](super::SEED)): `next = [0, 1,
//! …, N-1]`; for `i` from `N-1` down to 1, `j = below(i)` (so `j < i`),
//! swap `next[i]` and `next[j]`. Then `L = 2^24` dependent loads
//! (`--quick`: `2^16`; heap-mib 4 by default with `--quick`, 64 without)
//! are timed: `p = next[p]`, from cell 0.
//!
//! Output: `probe heap_mib {M} loads {L}`. Metrics: `ns_per_load`, and
//! `mb_per_s` = 32 bytes / `ns_per_load` in MB (10^6 bytes) per second —
//! one node's worth of bytes per dependent miss, the ceiling of a
//! single-threaded marker that finds each object through the previous
//! one. Only the `box` peer runs it (plain memory, the system allocator);
//! the others exit 3; there is no multi-threaded variant.
//!
//! (The standard way to measure load-to-use latency; e.g. lmbench's
//! `lat_mem_rd` chases a pointer chain through a buffer the same way.)

use super::{SplitMix64, heap_mib, node_count};
use crate::{Metric, Options, Peer, Report, Unsupported, Workload};
use std::hint::black_box;
use std::time::Instant;

/// Loads without `--quick`.
pub const LOADS: u64 = 1 << 24;

/// Loads with `--quick`.
pub const QUICK_LOADS: u64 = 1 << 16;

/// The seed of Sattolo's shuffle (the mark layout's).
const SEED: u64 = super::SEED;

/// One 32-byte cell.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Cell {
    next: u64,
    _pad: [u64; 3],
}

/// The result line.
pub fn result_line(heap_mib: usize, loads: u64) -> String {
    format!("probe heap_mib {heap_mib} loads {loads}")
}

/// The lines a correct run prints.
pub fn expected(opts: &Options) -> Vec<String> {
    vec![result_line(heap_mib(opts), loads(opts.quick))]
}

/// The number of loads.
pub fn loads(quick: bool) -> u64 {
    if quick { QUICK_LOADS } else { LOADS }
}

/// The cyclic permutation (module docs).
fn cycle(n: usize) -> Vec<Cell> {
    let mut cells: Vec<Cell> = (0..n as u64)
        .map(|i| Cell {
            next: i,
            _pad: [0; 3],
        })
        .collect();
    let mut rng = SplitMix64::new(SEED);
    for i in (1..n).rev() {
        let j = rng.below(i as u64) as usize;
        let (a, b) = (cells[i].next, cells[j].next);
        cells[i].next = b;
        cells[j].next = a;
    }
    cells
}

/// Runs the probe on `peer` (only `box`).
///
/// # Errors
/// [`Unsupported`] for any other peer, or with `--threads` above 1.
pub fn run(peer: Peer, opts: &Options) -> Result<Report, Unsupported> {
    let unsupported = |why: &str| Unsupported {
        peer,
        workload: Workload::Probe,
        why: why.to_owned(),
    };
    if peer != Peer::Box {
        return Err(unsupported("only the box peer runs the probe"));
    }
    if opts.threads > 1 {
        return Err(unsupported("has no multi-threaded variant"));
    }
    let mib = heap_mib(opts);
    let l = loads(opts.quick);
    let cells = cycle(node_count(mib).max(1));
    let t0 = Instant::now();
    let mut p = 0usize;
    for _ in 0..l {
        p = cells[p].next as usize;
    }
    let elapsed = t0.elapsed();
    black_box(p);
    let ns = elapsed.as_secs_f64() * 1e9 / l as f64;
    Ok(Report {
        lines: vec![result_line(mib, l)],
        metrics: vec![
            Metric::float("ns_per_load", ns),
            Metric::float("mb_per_s", 32.0 / ns.max(1e-9) * 1e3),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_through_every_cell() {
        let cells = cycle(1000);
        let (mut p, mut steps) = (0usize, 0);
        loop {
            p = cells[p].next as usize;
            steps += 1;
            if p == 0 {
                break;
            }
        }
        assert_eq!(steps, 1000);
    }
}

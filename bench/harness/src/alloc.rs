//! The allocation microbenchmark: steady-state allocate-and-drop of
//! fixed-size objects, the driver shared by every peer.
//!
//! For each payload size `S` in 16, 64, 256, 4096 and 65536 bytes:
//! allocate `N(S) = min(2^30 / S, 2^22)` objects (`--quick`: `N / 256`),
//! each holding exactly `S` bytes (a `[u8; S]`; for a GC peer, a GC object
//! holding it). Object `i` is created zeroed except byte `i % S`, which is
//! `i as u8`. The most recent [`RING`] objects stay alive in a ring: object
//! `i` goes into slot `i % RING`, replacing object `j = i - RING`, which
//! *leaves the ring*: its byte `j % S` is read back and added to a `u64`
//! checksum, and the ring drops (or un-roots) it. The objects still in the
//! ring at the end are not read. Output: `alloc {S} {N} {checksum}`
//! (the checksum is `Σ (j mod 256)` for `j < N - RING`); metric
//! `ns_per_alloc_{S}`: the size's whole loop time divided by `N`.

use crate::{Metric, Report};
use std::time::Instant;

/// How many objects stay alive.
pub const RING: usize = 1000;

/// The payload sizes, in bytes.
pub const SIZES: [usize; 5] = [16, 64, 256, 4096, 65536];

/// How many objects of `size` bytes a run allocates.
pub fn count(size: usize, quick: bool) -> usize {
    let n = ((1usize << 30) / size).min(1 << 22);
    if quick { n / 256 } else { n }
}

/// The payload of object `i`.
#[inline(always)]
pub fn payload<const S: usize>(i: usize) -> [u8; S] {
    let mut p = [0u8; S];
    p[i % S] = i as u8;
    p
}

/// What object `j` adds to the checksum when it leaves the ring.
#[inline(always)]
pub fn leaving<const S: usize>(p: &[u8; S], j: usize) -> u64 {
    u64::from(p[j % S])
}

/// The checksum of a correct run of `n` objects.
pub fn expected_checksum(n: usize) -> u64 {
    (0..n.saturating_sub(RING)).map(|j| (j % 256) as u64).sum()
}

/// The output lines computed from the closed forms.
pub fn expected(quick: bool) -> Vec<String> {
    SIZES
        .iter()
        .map(|&s| {
            let n = count(s, quick);
            format!("alloc {s} {n} {}", expected_checksum(n))
        })
        .collect()
}

/// A peer's ring.
pub trait Ring {
    /// Allocates `n` objects of `S` bytes through a ring of [`RING`] live
    /// ones (module docs); returns the checksum.
    fn ring<const S: usize>(&mut self, n: usize) -> u64;
}

/// Runs every size on `r`.
pub fn run<R: Ring>(r: &mut R, quick: bool) -> Report {
    let mut report = Report::default();
    let mut size = |s: usize, f: &mut dyn FnMut(usize) -> u64| {
        let n = count(s, quick);
        let t0 = Instant::now();
        let sum = f(n);
        let ns = t0.elapsed().as_secs_f64() * 1e9 / n as f64;
        report.lines.push(format!("alloc {s} {n} {sum}"));
        report
            .metrics
            .push(Metric::float(format!("ns_per_alloc_{s}"), ns));
    };
    size(16, &mut |n| r.ring::<16>(n));
    size(64, &mut |n| r.ring::<64>(n));
    size(256, &mut |n| r.ring::<256>(n));
    size(4096, &mut |n| r.ring::<4096>(n));
    size(65536, &mut |n| r.ring::<65536>(n));
    report
}

//! Every peer × workload in `--quick` mode, single- and multi-threaded,
//! called through the library (not the binaries): all peers must print
//! the same result lines, and those lines must be the closed-form ones
//! (binary-trees and GCBench node counts, the alloc checksums). Also
//! checks which combinations are unsupported.

use spanheap_harness::go_malloc;
use spanheap_harness::mark::{self, Shape, probe};
use spanheap_harness::{Options, Peer, Workload, alloc, binary_trees, gcbench, latency, run};

/// `--quick --threads {threads}`.
fn quick(threads: usize) -> Options {
    Options {
        quick: true,
        threads,
        ..Default::default()
    }
}

/// The lines a correct quick run prints.
fn expected(w: Workload) -> Vec<String> {
    match w {
        Workload::BinaryTrees => binary_trees::expected(binary_trees::max_depth(true)),
        Workload::GcBench => gcbench::expected(&gcbench::Params::new(true)),
        Workload::Alloc => alloc::expected(true),
        Workload::Latency => latency::expected(true, 1),
        Workload::Mark => mark::expected(Shape::Sequential, mark::QUICK_HEAP_MIB),
        Workload::Probe => probe::expected(&quick(1)),
        Workload::GoMalloc => go_malloc::expected(true),
    }
}

fn check_all_peers(w: Workload, threads: usize) {
    let want = match w {
        // The latency checksum depends on the per-thread windows.
        Workload::Latency => latency::expected(true, threads),
        _ => expected(w),
    };
    let opts = quick(threads);
    for peer in Peer::ALL {
        match run(w, peer, &opts) {
            Ok(report) => assert_eq!(
                report.lines,
                want,
                "{} {} --threads {threads}",
                peer.name(),
                w.name()
            ),
            Err(u) => {
                assert!(
                    threads > 1,
                    "{} {} single-threaded is unsupported: {u}",
                    peer.name(),
                    w.name()
                );
                let should_run = !matches!(w, Workload::Alloc | Workload::GoMalloc)
                    && peer.shares_heap_across_threads();
                assert!(!should_run, "{u}");
                assert!(u.to_string().starts_with(&format!(
                    "unsupported: {} {} ",
                    peer.name(),
                    w.name()
                )));
            }
        }
    }
}

#[test]
fn binary_trees_agree() {
    check_all_peers(Workload::BinaryTrees, 1);
}

#[test]
fn binary_trees_two_threads_agree() {
    check_all_peers(Workload::BinaryTrees, 2);
}

#[test]
fn gcbench_agrees() {
    check_all_peers(Workload::GcBench, 1);
}

#[test]
fn gcbench_two_threads_agrees() {
    check_all_peers(Workload::GcBench, 2);
}

#[test]
fn alloc_agrees() {
    check_all_peers(Workload::Alloc, 1);
}

#[test]
fn alloc_has_no_threaded_variant() {
    check_all_peers(Workload::Alloc, 2);
}

#[test]
fn go_malloc_agrees() {
    check_all_peers(Workload::GoMalloc, 1);
    let r = run(Workload::GoMalloc, Peer::Spanheap, &quick(1)).unwrap();
    for s in go_malloc::Shape::ALL {
        let name = format!("ns_per_op_{}", s.name());
        assert!(r.metrics.iter().any(|m| m.name == name), "no {name}");
    }
}

#[test]
fn go_malloc_has_no_threaded_variant() {
    check_all_peers(Workload::GoMalloc, 2);
}

#[test]
fn latency_agrees() {
    check_all_peers(Workload::Latency, 1);
}

#[test]
fn latency_two_threads_agrees() {
    check_all_peers(Workload::Latency, 2);
}

/// The closed forms themselves, against the published numbers.
#[test]
fn closed_forms() {
    // The Benchmarks Game's output for depth 10.
    assert_eq!(
        binary_trees::expected(10),
        [
            "stretch tree of depth 11\t check: 4095",
            "1024\t trees of depth 4\t check: 31744",
            "256\t trees of depth 6\t check: 32512",
            "64\t trees of depth 8\t check: 32704",
            "16\t trees of depth 10\t check: 32752",
            "long lived tree of depth 10\t check: 2047",
        ]
    );
    let p = gcbench::Params::new(false);
    assert_eq!(p.num_iters(4), 33824);
    assert_eq!(p.num_iters(16), 8);
    let full = gcbench::expected(&p);
    assert_eq!(
        full.last().unwrap(),
        "long-lived nodes 131071, array[1000] 0.001000"
    );
    assert_eq!(alloc::count(16, false), 1 << 22);
    assert_eq!(alloc::count(65536, false), 1 << 14);
    assert_eq!(alloc::expected_checksum(1000), 0);
    assert_eq!(alloc::expected_checksum(1256), 255 * 256 / 2);
    // latency: the closed form against the sum it stands for, and the
    // full-size line every peer (Go and bdwgc included) printed.
    for (quick, threads) in [(true, 1), (true, 2), (false, 1), (false, 2)] {
        let (w, p) = latency::share(quick, threads);
        let per_thread: u64 = (0..p - w).map(|j| (j % 256) as u64).sum();
        assert_eq!(
            latency::expected_checksum(quick, threads),
            per_thread * threads as u64
        );
    }
    assert_eq!(
        latency::expected(false, 1),
        ["latency window 200000 pushes 2000000 checksum 229493856"]
    );
}

/// Metrics are well-formed and carry the per-phase and per-size names.
#[test]
fn metrics_are_named() {
    let opts = quick(1);
    let r = run(Workload::GcBench, Peer::Spanheap, &opts).unwrap();
    for d in [4, 6, 8] {
        for phase in ["topdown", "bottomup"] {
            let name = format!("{phase}_ms_d{d}");
            assert!(r.metrics.iter().any(|m| m.name == name), "no {name}");
        }
    }
    assert!(r.metrics.iter().any(|m| m.name == "max_pause_ns"));
    let r = run(Workload::Alloc, Peer::Box, &opts).unwrap();
    for s in alloc::SIZES {
        let name = format!("ns_per_alloc_{s}");
        assert!(r.metrics.iter().any(|m| m.name == name), "no {name}");
    }
    for m in r.metrics {
        assert!(!m.value.is_empty() && !m.name.contains(' '));
        assert!(m.to_string().starts_with("metric "));
    }
}

/// `mark` at quick size, both shapes, 1 and 2 marker workers: every peer
/// with a collector prints the closed-form line; the others, and the
/// single-threaded markers with 2 workers, are unsupported.
fn check_mark(shape: Shape, workers: usize) {
    let opts = Options {
        shape,
        ..quick(workers)
    };
    let want = mark::expected(shape, mark::QUICK_HEAP_MIB);
    for peer in Peer::ALL {
        let runs = match peer {
            Peer::Spanheap => true,
            Peer::GcArena | Peer::RustGc | Peer::Dumpster => workers == 1,
            Peer::Box | Peer::Rc | Peer::Bumpalo | Peer::Mimalloc => false,
        };
        match run(Workload::Mark, peer, &opts) {
            Ok(report) => {
                assert!(runs, "{} mark --threads {workers} ran", peer.name());
                assert_eq!(
                    report.lines,
                    want,
                    "{} mark {shape:?} {workers}",
                    peer.name()
                );
                for name in ["collect_ms", "mb_per_s_per_worker", "layout_check"] {
                    assert!(report.metrics.iter().any(|m| m.name == name), "no {name}");
                }
            }
            Err(u) => {
                assert!(!runs, "{u}");
                assert!(
                    u.to_string()
                        .starts_with(&format!("unsupported: {} mark ", peer.name()))
                );
            }
        }
    }
}

#[test]
fn mark_sequential_agrees() {
    check_mark(Shape::Sequential, 1);
}

#[test]
fn mark_random_agrees() {
    check_mark(Shape::Random, 1);
}

#[test]
fn mark_two_workers_agree() {
    check_mark(Shape::Sequential, 2);
    check_mark(Shape::Random, 2);
}

#[test]
fn probe_runs_on_box_only() {
    let opts = quick(1);
    for peer in Peer::ALL {
        match run(Workload::Probe, peer, &opts) {
            Ok(r) => {
                assert_eq!(peer, Peer::Box);
                assert_eq!(r.lines, probe::expected(&opts));
                assert_eq!(r.lines, ["probe heap_mib 4 loads 65536"]);
            }
            Err(u) => assert_ne!(peer, Peer::Box, "{u}"),
        }
    }
    assert!(run(Workload::Probe, Peer::Box, &quick(2)).is_err());
}

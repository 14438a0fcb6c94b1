//! Every peer × workload in `--quick` mode, single- and multi-threaded,
//! called through the library (not the binaries): all peers must print
//! the same result lines, and those lines must be the closed-form ones
//! (binary-trees and GCBench node counts, the alloc checksums). Also
//! checks which combinations are unsupported.

use spanheap_harness::{Options, Peer, Workload, alloc, binary_trees, gcbench, run};

/// The lines a correct quick run prints.
fn expected(w: Workload) -> Vec<String> {
    match w {
        Workload::BinaryTrees => binary_trees::expected(binary_trees::max_depth(true)),
        Workload::GcBench => gcbench::expected(&gcbench::Params::new(true)),
        Workload::Alloc => alloc::expected(true),
    }
}

fn check_all_peers(w: Workload, threads: usize) {
    let want = expected(w);
    let opts = Options {
        quick: true,
        threads,
    };
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
                let should_run = w != Workload::Alloc && peer.shares_heap_across_threads();
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
}

/// Metrics are well-formed and carry the per-phase and per-size names.
#[test]
fn metrics_are_named() {
    let opts = Options {
        quick: true,
        threads: 1,
    };
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

//! Runs the `graph` example (`examples/src/graph.rs`) with small
//! parameters: it must verify that the collector dropped exactly the
//! unreachable vertices after every step, and reject bad arguments.

use std::process::{Command, Output};

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graph"))
        .args(args)
        .env_remove("SPANHEAP_GCTRACE")
        .envs(env.iter().copied())
        .output()
        .expect("cannot run the graph example")
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn small_graph_is_collected_exactly() {
    let out = run(&["2000", "4", "2"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("check: ok"), "{}", describe(&out));
    // The build and both rounds were checked.
    for step in ["build", "round 1", "round 2"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(step) && l.ends_with("ok")),
            "no checked row for {step}\n{}",
            describe(&out)
        );
    }
}

/// Stress mode (a collection every 500 allocations of a thread) makes
/// collections run while the threads mutate the graph, and checkmark mode
/// re-marks each of them from scratch to catch a missed object.
#[test]
fn small_graph_under_stress_and_checkmark() {
    let out = run_with(
        &["2000", "4", "2"],
        &[("SPANHEAP_GCSTRESS", "500"), ("SPANHEAP_CHECKMARK", "1")],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("check: ok"), "{}", describe(&out));
}

#[test]
fn gctrace_prints_the_forced_collections() {
    let out = run(&["--gctrace", "500", "2", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(forced)"), "{}", describe(&out));
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for args in [
        &["lots"][..],
        &["0"],
        &["10", "4", "1", "extra"],
        &["--frobnicate"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("usage: graph"),
            "{args:?}: {}",
            describe(&out)
        );
    }
}

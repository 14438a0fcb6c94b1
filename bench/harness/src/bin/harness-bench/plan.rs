//! What a benchmark run runs: the workloads as groups of cases (one table
//! and one chart each), every case a command line of one peer's binary.
//!
//! A group's rows are measured on the same workload with the same
//! parameters, so their stdout (the deterministic result lines of the
//! harness contract, `../../../README.md`) must agree; the Go
//! malloc-benchmark row and the Lox rows are the exceptions, marked with
//! [`Case::compare`] = false or their own expected file.

use std::path::PathBuf;

/// Where the binaries are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `bench/harness/target/release/harness`.
    pub harness: PathBuf,
    /// `bench/harness/target/release/harness-mimalloc`.
    pub harness_mimalloc: PathBuf,
    /// `bench/harness/target-peers/harness-go`.
    pub go: PathBuf,
    /// `bench/harness/target-peers/harness-bdwgc`.
    pub bdwgc: PathBuf,
    /// `bench/harness/go-malloc.sh`.
    pub go_malloc_sh: PathBuf,
    /// `target/release/lox`.
    pub lox: PathBuf,
    /// `examples/lox/bench`.
    pub lox_bench: PathBuf,
    /// A clox binary to compare the Lox interpreter with (`CLOX`), if any.
    pub clox: Option<PathBuf>,
}

impl Paths {
    /// The layout under repository root `root`.
    pub fn new(root: &std::path::Path, clox: Option<PathBuf>) -> Paths {
        let h = root.join("bench/harness");
        Paths {
            harness: h.join("target/release/harness"),
            harness_mimalloc: h.join("target/release/harness-mimalloc"),
            go: h.join("target-peers/harness-go"),
            bdwgc: h.join("target-peers/harness-bdwgc"),
            go_malloc_sh: h.join("go-malloc.sh"),
            lox: root.join("target/release/lox"),
            lox_bench: root.join("examples/lox/bench"),
            clox,
        }
    }
}

/// How a case's output is turned into metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// `metric` lines on stderr (the harness contract).
    Metrics,
    /// `go-malloc <Name> <median> <min> <max>` lines on stdout
    /// (`go-malloc.sh`): metric `ns_per_op_<Name>` = the median.
    GoMallocScript,
    /// A `lox --gctrace` run: `gc N @t: a+b+c ms clock, ...` lines on
    /// stderr give `gc_cycles` and `gc_clock_ms` (the sum of a+b+c).
    LoxTrace,
    /// Nothing (clox).
    None,
}

/// One row: one peer's command line.
#[derive(Clone, Debug)]
pub struct Case {
    /// The row label (`spanheap`, `go ×2`, a script name, ...).
    pub row: String,
    /// The peer (`spanheap` marks the reference row of the ratios).
    pub peer: String,
    /// The command line.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Whether its stdout must equal the group's other compared rows'.
    pub compare: bool,
    /// An exact expected stdout (Lox scripts), checked instead.
    pub expected: Option<String>,
    /// How its metrics are read.
    pub parse: Parse,
    /// Whether one run is enough (the program repeats internally).
    pub once: bool,
}

/// Which of a run's metrics fills a column.
#[derive(Clone, Debug)]
pub enum Sel {
    /// One metric.
    Name(String),
    /// The first of these that the run has.
    FirstOf(Vec<String>),
    /// The sum of every metric whose name starts with this prefix.
    SumPrefix(String),
}

/// An extra table column: a metric's median over the runs.
#[derive(Clone, Debug)]
pub struct Column {
    /// The heading, with its unit.
    pub title: String,
    /// The metric.
    pub sel: Sel,
    /// Multiplies the metric into the column's unit.
    pub scale: f64,
    /// Whether to print the ratio to the spanheap row next to it.
    pub ratio: bool,
}

impl Column {
    fn new(title: &str, sel: Sel, scale: f64, ratio: bool) -> Column {
        Column {
            title: title.into(),
            sel,
            scale,
            ratio,
        }
    }
}

/// What the chart plots and the ratio column compares.
#[derive(Clone, Debug)]
pub enum Headline {
    /// The process's wall time (lower is better).
    Wall,
    /// Extra column `i` (its title names the unit).
    Column(usize),
}

/// How a group's table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One row per case: wall, CPU, RSS, the extra columns, ratio.
    Peers,
    /// The Lox table: one row per script, lox against clox.
    Lox,
}

/// One table and one chart.
#[derive(Clone, Debug)]
pub struct Group {
    /// File-safe id (the chart's file name).
    pub id: String,
    /// The heading.
    pub title: String,
    /// What is measured, for the reader (markdown).
    pub about: String,
    /// The rows.
    pub cases: Vec<Case>,
    /// Extra columns.
    pub columns: Vec<Column>,
    /// The chart's and ratio's quantity.
    pub headline: Headline,
    /// The table layout.
    pub layout: Layout,
}

/// Every peer of the harness workloads, in table order.
pub const PEERS: [&str; 10] = [
    "spanheap", "go", "bdwgc", "box", "mimalloc", "rc", "bumpalo", "gc-arena", "dumpster",
    "rust-gc",
];

/// The command line of `peer` running `workload` with `args`.
fn argv(p: &Paths, peer: &str, workload: &str, args: &[String]) -> Vec<String> {
    let s = |x: &std::path::Path| x.display().to_string();
    let mut v = match peer {
        "go" => vec![s(&p.go), workload.to_owned()],
        "bdwgc" => vec![s(&p.bdwgc), workload.to_owned()],
        "mimalloc" => vec![s(&p.harness_mimalloc), workload.to_owned(), peer.to_owned()],
        _ => vec![s(&p.harness), workload.to_owned(), peer.to_owned()],
    };
    v.extend(args.iter().cloned());
    v
}

fn case(p: &Paths, row: &str, peer: &str, workload: &str, args: &[String]) -> Case {
    Case {
        row: row.to_owned(),
        peer: peer.to_owned(),
        argv: argv(p, peer, workload, args),
        env: Vec::new(),
        compare: true,
        expected: None,
        parse: Parse::Metrics,
        once: false,
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

fn name(n: &str) -> Sel {
    Sel::Name(n.to_owned())
}

/// The plan: every group, full size or `--quick`.
pub fn plan(p: &Paths, quick: bool) -> Vec<Group> {
    let q: Vec<String> = if quick {
        strings(&["--quick"])
    } else {
        Vec::new()
    };
    let with = |extra: &[&str]| {
        let mut v = q.clone();
        v.extend(strings(extra));
        v
    };
    let ms = 1e-6; // ns -> ms
    let us = 1e-3; // ns -> µs
    let mut groups = Vec::new();

    let pause = || Column::new("max pause (ms)", name("max_pause_ns"), ms, false);
    for threads in [1, 2] {
        let args = with(&["--threads", &threads.to_string()]);
        groups.push(Group {
            id: format!("binary-trees-{threads}t"),
            title: format!(
                "binary-trees, depth {}, {threads} thread{}",
                if quick { 10 } else { 21 },
                if threads > 1 { "s" } else { "" }
            ),
            about: "The Benchmarks Game's binary-trees: perfect trees built, checked and dropped; \
                    a long-lived tree of the full depth held throughout."
                .into(),
            cases: PEERS
                .iter()
                .map(|peer| case(p, peer, peer, "binary-trees", &args))
                .collect(),
            columns: vec![
                pause(),
                Column::new("GC cycles", name("gc_cycles"), 1.0, false),
            ],
            headline: Headline::Wall,
            layout: Layout::Peers,
        });
    }
    for threads in [1, 2] {
        let args = with(&["--threads", &threads.to_string()]);
        groups.push(Group {
            id: format!("gcbench-{threads}t"),
            title: format!("GCBench, {threads} thread{}", if threads > 1 { "s" } else { "" }),
            about: "Ellis, Kovac and Boehm's GCBench: a stretch tree, a long-lived tree and array, \
                    then trees of depth 4-16 built top-down (every link a store into an existing \
                    node: the write-barrier case) and bottom-up. The phase columns are the sums over \
                    depths measured inside the program (slowest thread's)."
                .into(),
            cases: PEERS.iter().map(|peer| case(p, peer, peer, "gcbench", &args)).collect(),
            columns: vec![
                Column::new("top-down (ms)", Sel::SumPrefix("topdown_ms_d".into()), 1.0, true),
                Column::new("bottom-up (ms)", Sel::SumPrefix("bottomup_ms_d".into()), 1.0, true),
                pause(),
            ],
            headline: Headline::Wall,
            layout: Layout::Peers,
        });
    }
    groups.push(Group {
        id: "alloc".into(),
        title: "Allocation: allocate-and-drop, 1,000 live".into(),
        about: "Steady-state allocate-and-drop of fixed-size objects with a ring of 1,000 live \
                ones; nanoseconds per allocation (the loop's time over its count, measured inside)."
            .into(),
        cases: PEERS
            .iter()
            .map(|peer| case(p, peer, peer, "alloc", &q))
            .collect(),
        columns: [16, 64, 256, 4096, 65536]
            .iter()
            .map(|s| {
                let t = if *s >= 1024 {
                    format!("{} KiB", s / 1024)
                } else {
                    format!("{s} B")
                };
                Column::new(
                    &format!("{t} (ns)"),
                    Sel::Name(format!("ns_per_alloc_{s}")),
                    1.0,
                    true,
                )
            })
            .collect(),
        headline: Headline::Column(1),
        layout: Layout::Peers,
    });
    for threads in [1, 2] {
        let args = with(&["--threads", &threads.to_string()]);
        groups.push(Group {
            id: format!("latency-{threads}t"),
            title: format!(
                "GC latency (Go's test), {threads} thread{}",
                if threads > 1 { "s" } else { "" }
            ),
            about: format!(
                "Go's GC latency test: a window of {} live 1 KiB messages, replaced oldest-first \
                 for {} pushes; every push timed. Pauses as each collector reports them.",
                if quick { "2,000" } else { "200,000" },
                if quick { "20,000" } else { "2,000,000" }
            ),
            cases: PEERS
                .iter()
                .map(|peer| case(p, peer, peer, "latency", &args))
                .collect(),
            columns: vec![
                Column::new("worst push (ms)", name("max_push_ns"), ms, true),
                Column::new("p99.9 push (µs)", name("p999_push_ns"), us, false),
                pause(),
                Column::new("p99 pause (µs)", name("p99_pause_ns"), us, false),
                Column::new("GC cycles", name("gc_cycles"), 1.0, false),
            ],
            headline: Headline::Column(0),
            layout: Layout::Peers,
        });
    }
    let sizes: &[u32] = if quick { &[4] } else { &[64, 512, 2048] };
    for &mib in sizes {
        for shape in ["sequential", "random"] {
            let mut cases = Vec::new();
            let base = ["--shape", shape, "--heap-mib"];
            let args_for = |w: u32| {
                let mut v = with(&base);
                v.push(mib.to_string());
                v.extend(strings(&["--threads", &w.to_string()]));
                v
            };
            for peer in ["spanheap", "go", "bdwgc"] {
                for w in [1, 2] {
                    cases.push(case(p, &format!("{peer} ×{w}"), peer, "mark", &args_for(w)));
                }
            }
            if mib <= 512 {
                for peer in ["gc-arena", "dumpster", "rust-gc"] {
                    cases.push(case(p, &format!("{peer} ×1"), peer, "mark", &args_for(1)));
                }
            }
            let mut probe = case(
                p,
                "probe (pointer chase)",
                "box",
                "probe",
                &with(&["--heap-mib"]),
            );
            probe.argv.push(mib.to_string());
            probe.compare = false;
            cases.push(probe);
            groups.push(Group {
                id: format!("mark-{shape}-{mib}"),
                title: format!("Mark throughput: {mib} MiB live, {shape} layout"),
                about: "One forced full collection of a live complete binary tree of 32-byte nodes \
                        (`×W`: W mark workers). MB/s per worker = nominal live bytes / mark time / W. \
                        The probe row is this machine's dependent-load rate over an array of the same \
                        size (32 bytes per load): what a marker that misses the cache on every object \
                        can reach."
                    .into(),
                cases,
                columns: vec![
                    Column::new("mark (ms)", name("mark_ms"), 1.0, false),
                    Column::new("collect (ms)", name("collect_ms"), 1.0, true),
                    Column::new(
                        "MB/s per worker",
                        Sel::FirstOf(strings(&["mb_per_s_per_worker", "mb_per_s"])),
                        1.0,
                        true,
                    ),
                    Column::new("ns per load", name("ns_per_load"), 1.0, false),
                ],
                headline: Headline::Column(2),
                layout: Layout::Peers,
            });
        }
    }
    let mut gm: Vec<Case> = ["spanheap", "box", "mimalloc"]
        .iter()
        .map(|peer| case(p, peer, peer, "go-malloc", &q))
        .collect();
    let count = if quick {
        "--quick".to_owned()
    } else {
        "5".to_owned()
    };
    for (row, escape) in [
        ("go: runtime's benchmarks", false),
        ("go: escaping copies", true),
    ] {
        let mut argv = vec![
            "bash".into(),
            p.go_malloc_sh.display().to_string(),
            count.clone(),
        ];
        if escape {
            argv.push("--escape".into());
        }
        gm.push(Case {
            row: row.into(),
            peer: "go".into(),
            argv,
            env: Vec::new(),
            compare: false,
            expected: None,
            parse: Parse::GoMallocScript,
            once: true,
        });
    }
    groups.push(Group {
        id: "go-malloc".into(),
        title: "Go's malloc benchmarks".into(),
        about: "`go test -bench=Malloc runtime` on this machine's Go (`go-malloc.sh`: the median \
                of 5 `-count` runs, each `testing.B`'s own timing) against the same shapes \
                allocated and dropped in a loop on spanheap and the allocators; ns per \
                allocation. Go 1.19's own five benchmarks do not reach the heap: the object's \
                address only flows into a `uintptr`, escape analysis keeps it on the stack, and \
                `-benchmem` reports 0 allocs/op, so they time stack zeroing. The \"escaping \
                copies\" row runs the same five shapes with the object escaping (1 alloc/op, \
                `bench/harness/go/mallocescape`): Go's allocator, the comparable number."
            .into(),
        cases: gm,
        columns: [
            "Malloc8",
            "Malloc16",
            "MallocTypeInfo8",
            "MallocTypeInfo16",
            "MallocLargeStruct",
        ]
        .iter()
        .map(|n| {
            Column::new(
                &format!("{n} (ns)"),
                Sel::Name(format!("ns_per_op_{n}")),
                1.0,
                true,
            )
        })
        .collect(),
        headline: Headline::Column(0),
        layout: Layout::Peers,
    });
    groups.push(lox_group(p, quick));
    groups
}

/// The Lox scripts, on the example interpreter (and on clox when given).
fn lox_group(p: &Paths, quick: bool) -> Group {
    let mut scripts: Vec<String> = std::fs::read_dir(&p.lox_bench)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".lox").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    scripts.sort();
    if quick {
        scripts.truncate(2);
    }
    let mut cases = Vec::new();
    for s in &scripts {
        let file = p.lox_bench.join(format!("{s}.lox")).display().to_string();
        let expected = std::fs::read_to_string(p.lox_bench.join(format!("{s}.expected"))).ok();
        cases.push(Case {
            row: s.clone(),
            peer: "spanheap".into(),
            argv: vec![
                p.lox.display().to_string(),
                "--gctrace".into(),
                file.clone(),
            ],
            env: Vec::new(),
            compare: false,
            expected: expected.clone(),
            parse: Parse::LoxTrace,
            once: false,
        });
        if let Some(clox) = &p.clox {
            cases.push(Case {
                row: s.clone(),
                peer: "clox".into(),
                argv: vec![clox.display().to_string(), file],
                env: Vec::new(),
                compare: false,
                expected,
                parse: Parse::None,
                once: false,
            });
        }
    }
    Group {
        id: "lox".into(),
        title: "Lox: the example interpreter on its benchmark scripts".into(),
        about:
            "`lox --gctrace <script>` (examples/src/lox). GC share = the sum over cycles of the \
                trace's phase clocks (sweep termination + concurrent mark + mark termination) over \
                the wall time; the mark runs on the collector's thread, so this is the collector's \
                share of the run, not the mutator's slowdown. clox (the book's C interpreter) when \
                `CLOX=/path/to/clox` is set."
                .into(),
        cases,
        columns: Vec::new(),
        headline: Headline::Wall,
        layout: Layout::Lox,
    }
}

//! The written results: markdown tables (one per group), the machine and
//! versions they were measured on, the goals of issue 7 checked against
//! the numbers, and the raw per-run TSV.
//!
//! Every figure is a median over the row's successful runs; min–max is
//! the spread of wall times; peak RSS is the largest of the runs; ratios
//! divide a row's median by the spanheap row's median of the same column
//! (so > 1 means the peer took longer, or — for MB/s — went faster).

use crate::Measured;
use crate::measure::median;
use crate::plan::{Column, Group, Headline, Layout, Sel};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Where and with what the numbers were measured.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// `date -u`.
    pub date: String,
    /// CPU model, cores, memory, kernel.
    pub hardware: String,
    /// rustc, Go, bdwgc, gcc, and the Rust peers' crate versions.
    pub versions: Vec<(String, String)>,
}

fn cmd(argv: &[&str]) -> Option<String> {
    let (p, a) = argv.split_first()?;
    let o = Command::new(p).args(a).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

impl Machine {
    /// Reads /proc, asks the tools for their versions, and reads the
    /// harness's Cargo.lock for the crates' versions.
    pub fn probe(root: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let kernel = cmd(&["uname", "-sr"]).unwrap_or_default();
        let mut versions = vec![
            (
                "rustc".to_owned(),
                cmd(&["rustc", "-V"]).unwrap_or_else(|| "?".into()),
            ),
            (
                "go".to_owned(),
                cmd(&["go", "version"]).unwrap_or_else(|| "not installed".into()),
            ),
            (
                "bdwgc".to_owned(),
                cmd(&["pkg-config", "--modversion", "bdw-gc"])
                    .unwrap_or_else(|| "not installed".into()),
            ),
            (
                "cc".to_owned(),
                cmd(&["cc", "--version"])
                    .and_then(|v| v.lines().next().map(str::to_owned))
                    .unwrap_or_else(|| "?".into()),
            ),
        ];
        let lock =
            std::fs::read_to_string(root.join("bench/harness/Cargo.lock")).unwrap_or_default();
        for krate in ["gc-arena", "dumpster", "gc", "mimalloc", "bumpalo"] {
            if let Some(v) = lock_version(&lock, krate) {
                versions.push((format!("crate {krate}"), v));
            }
        }
        Machine {
            date: cmd(&["date", "-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            hardware: format!(
                "{model}, {cpus} hardware threads, {:.1} GiB RAM, {kernel}",
                mem_kib as f64 / (1u64 << 20) as f64
            ),
            versions,
        }
    }
}

/// The version of `krate` in a Cargo.lock.
fn lock_version(lock: &str, krate: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{krate}\"") {
            let v = lines.next()?;
            return v
                .trim()
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// The value of column `c` in one run.
pub fn value(run: &crate::measure::Run, sel: &Sel) -> Option<f64> {
    match sel {
        Sel::Name(n) => run.metrics.get(n).copied(),
        Sel::FirstOf(ns) => ns.iter().find_map(|n| run.metrics.get(n).copied()),
        Sel::SumPrefix(p) => {
            let v: Vec<f64> = run
                .metrics
                .iter()
                .filter(|(k, _)| k.starts_with(p.as_str()))
                .map(|(_, v)| *v)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum())
        }
    }
}

/// The median of column `c` over a case's counted runs, in its unit.
pub fn column_median(m: &Measured, c: &Column) -> Option<f64> {
    let v: Vec<f64> = m
        .ok_runs()
        .iter()
        .filter_map(|r| value(r, &c.sel))
        .collect();
    median(&v).map(|x| x * c.scale)
}

/// The fastest and slowest counted run's wall time, in seconds.
pub fn wall_span(m: &Measured) -> Option<(f64, f64)> {
    let w: Vec<f64> = m.ok_runs().iter().map(|r| r.wall.as_secs_f64()).collect();
    let lo = w.iter().copied().reduce(f64::min)?;
    let hi = w.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn span_cell(m: &Measured) -> String {
    wall_span(m).map_or("–".into(), |(lo, hi)| format!("{}–{}", num(lo), num(hi)))
}

/// Median wall time in seconds.
pub fn wall_median(m: &Measured) -> Option<f64> {
    let v: Vec<f64> = m.ok_runs().iter().map(|r| r.wall.as_secs_f64()).collect();
    median(&v)
}

/// The group's headline number of a case (what the chart shows).
pub fn headline(g: &Group, m: &Measured) -> Option<f64> {
    match g.headline {
        Headline::Wall => wall_median(m),
        Headline::Column(i) => g.columns.get(i).and_then(|c| column_median(m, c)),
    }
}

/// The reference row: the group's first spanheap case.
fn reference(ms: &[Measured]) -> Option<&Measured> {
    ms.iter().find(|m| m.case.peer == "spanheap")
}

fn num(x: f64) -> String {
    let a = x.abs();
    // Whole numbers (counts) and large values without decimals.
    if a >= 1000.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn ratio(x: Option<f64>, r: Option<f64>) -> String {
    match (x, r) {
        (Some(x), Some(r)) if r > 0.0 => format!("{:.2}×", x / r),
        _ => "–".into(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / (1u64 << 20) as f64)
}

/// A markdown table's heading and rule.
fn table_head(out: &mut String, head: &[&str]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
}

/// Writes `m`'s row as "n/a: why" if it has no numbers; returns whether
/// it did.
fn problem_row(out: &mut String, m: &Measured, width: usize) -> bool {
    let Some(p) = m.problem() else { return false };
    let mut cells = vec![format!("**{}**", m.case.row), format!("n/a: {p}")];
    cells.resize(width, String::new());
    let _ = writeln!(out, "| {} |", cells.join(" | "));
    true
}

fn peers_table(out: &mut String, g: &Group, ms: &[Measured]) {
    let r = reference(ms);
    let mut head = vec![
        "peer",
        "median wall (s)",
        "min–max (s)",
        "runs",
        "CPU (s)",
        "peak RSS (MiB)",
    ];
    let titles: Vec<String> = g
        .columns
        .iter()
        .flat_map(|c| {
            let mut v = vec![c.title.clone()];
            if c.ratio {
                v.push("÷ spanheap".into());
            }
            v
        })
        .collect();
    head.extend(titles.iter().map(String::as_str));
    if matches!(g.headline, Headline::Wall) {
        head.push("wall ÷ spanheap");
    }
    table_head(out, &head);
    for m in ms {
        let runs = m.ok_runs();
        if problem_row(out, m, head.len()) {
            continue;
        }
        let mut cells = vec![format!("**{}**", m.case.row)];
        if runs.is_empty() {
            continue;
        }
        let cpu: Vec<f64> = runs.iter().map(|r| r.cpu.as_secs_f64()).collect();
        cells.push(wall_median(m).map_or("–".into(), num));
        cells.push(span_cell(m));
        cells.push(runs.len().to_string());
        cells.push(median(&cpu).map_or("–".into(), num));
        cells.push(mib(runs.iter().map(|r| r.max_rss).max().unwrap_or(0)));
        for c in &g.columns {
            let v = column_median(m, c);
            cells.push(v.map_or("–".into(), num));
            if c.ratio {
                cells.push(ratio(v, r.and_then(|r| column_median(r, c))));
            }
        }
        if matches!(g.headline, Headline::Wall) {
            cells.push(ratio(wall_median(m), r.and_then(wall_median)));
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

fn lox_table(out: &mut String, ms: &[Measured]) {
    let has_clox = ms.iter().any(|m| m.case.peer == "clox");
    let mut head = vec![
        "script",
        "lox median (s)",
        "min–max (s)",
        "runs",
        "peak RSS (MiB)",
        "GC cycles",
        "GC share",
    ];
    if has_clox {
        head.extend(["clox median (s)", "lox ÷ clox"]);
    }
    table_head(out, &head);
    for m in ms.iter().filter(|m| m.case.peer == "spanheap") {
        if problem_row(out, m, head.len()) {
            continue;
        }
        let mut cells = vec![format!("**{}**", m.case.row)];
        let runs = m.ok_runs();
        let wall = wall_median(m);
        let get = |k: &str| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.metrics.get(k).copied())
                .collect();
            median(&v)
        };
        let share: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r.metrics.get("gc_clock_ms")? / 1e3 / r.wall.as_secs_f64()))
            .collect();
        cells.push(wall.map_or("–".into(), num));
        cells.push(span_cell(m));
        cells.push(runs.len().to_string());
        cells.push(mib(runs.iter().map(|r| r.max_rss).max().unwrap_or(0)));
        cells.push(get("gc_cycles").map_or("–".into(), |c| format!("{c:.0}")));
        cells.push(median(&share).map_or("–".into(), |s| format!("{:.1} %", s * 100.0)));
        if has_clox {
            let c = ms
                .iter()
                .find(|c| c.case.peer == "clox" && c.case.row == m.case.row);
            match c.map(|c| (c.problem(), wall_median(c))) {
                Some((None, Some(cw))) => {
                    cells.push(num(cw));
                    cells.push(ratio(wall, Some(cw)));
                }
                Some((Some(p), _)) => cells.extend([format!("n/a: {p}"), "–".into()]),
                _ => cells.extend(["–".into(), "–".into()]),
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// One goal of issue 7 against the numbers: (goal, measured, verdict).
fn goals(results: &[(Group, Vec<Measured>)]) -> Vec<(String, String, String)> {
    let find = |id: &str| results.iter().find(|(g, _)| g.id == id);
    let row = |id: &str, peer: &str| -> Option<(&Group, &Measured)> {
        let (g, ms) = find(id)?;
        Some((g, ms.iter().find(|m| m.case.row == peer)?))
    };
    let mut out = Vec::new();
    let verdict = |ok: bool| {
        if ok {
            "met".to_owned()
        } else {
            "**not met**".to_owned()
        }
    };
    let bt = |peer: &str| row("binary-trees-1t", peer).and_then(|(_, m)| wall_median(m));
    if let Some(s) = bt("spanheap") {
        for (peer, limit, goal) in [
            ("go", 0.8, "binary-trees: spanheap ≤ 0.8× Go's wall time"),
            (
                "box",
                0.8,
                "binary-trees: spanheap ≤ 0.8× `Box` (the project brief)",
            ),
        ] {
            if let Some(p) = bt(peer) {
                let r = s / p;
                out.push((goal.into(), format!("{r:.2}×"), verdict(r <= limit)));
            }
        }
        let crates: Vec<(&str, f64)> = ["gc-arena", "dumpster", "rust-gc"]
            .iter()
            .filter_map(|p| Some((*p, bt(p)?)))
            .collect();
        if !crates.is_empty() {
            let slower: Vec<String> = crates
                .iter()
                .map(|(p, w)| format!("{p} {:.2}×", w / s))
                .collect();
            out.push((
                "binary-trees: ahead of every Rust GC crate".into(),
                format!("their wall ÷ spanheap's: {}", slower.join(", ")),
                verdict(crates.iter().all(|(_, w)| *w > s)),
            ));
        }
    }
    let pause_col = |id: &str, peer: &str, metric: &str| {
        let (g, m) = row(id, peer)?;
        let c = g
            .columns
            .iter()
            .find(|c| matches!(&c.sel, Sel::Name(n) if n == metric))?;
        column_median(m, c)
    };
    if let (Some(s), Some(go)) = (
        pause_col("latency-1t", "spanheap", "max_pause_ns"),
        pause_col("latency-1t", "go", "max_pause_ns"),
    ) {
        out.push((
            "latency: spanheap's max pause below Go's (brief: ≤ ¼ of Go's)".into(),
            format!("{s:.3} ms vs {go:.3} ms ({:.2}×)", s / go),
            verdict(s < go)
                + if s <= go / 4.0 {
                    " (¼ met)"
                } else {
                    " (¼ not met)"
                },
        ));
    }
    if let Some(p99) = pause_col("latency-1t", "spanheap", "p99_pause_ns") {
        out.push((
            "latency: p99 pause < 250 µs (brief)".into(),
            format!("{p99:.1} µs"),
            verdict(p99 < 250.0),
        ));
    }
    if let (Some((g, s)), Some((_, mi))) = (row("alloc", "spanheap"), row("alloc", "mimalloc")) {
        for c in g.columns.iter().take(3) {
            if let (Some(a), Some(b)) = (column_median(s, c), column_median(mi, c)) {
                out.push((
                    format!(
                        "allocation: within 1.0× of mimalloc, {}",
                        c.title.replace(" (ns)", "")
                    ),
                    format!("{:.2}×", a / b),
                    verdict(a / b <= 1.0),
                ));
            }
        }
    }
    for (g, ms) in results
        .iter()
        .filter(|(g, _)| g.id.starts_with("mark-sequential"))
    {
        if let Some(m) = ms.iter().find(|m| m.case.row == "spanheap ×1") {
            let c = &g.columns[2];
            if let Some(v) = column_median(m, c) {
                out.push((
                    format!("mark ≥ 1.5 GB/s per worker, sequential ({})", g.title),
                    format!("{:.0} MB/s", v),
                    verdict(v >= 1500.0),
                ));
            }
        }
    }
    if let Some((_, ms)) = find("lox") {
        let pairs: Vec<f64> = ms
            .iter()
            .filter(|m| m.case.peer == "spanheap")
            .filter_map(|m| {
                let c = ms
                    .iter()
                    .find(|c| c.case.peer == "clox" && c.case.row == m.case.row)?;
                Some(wall_median(m)? / wall_median(c)?)
            })
            .collect();
        if let Some(med) = median(&pairs) {
            out.push((
                "Lox as fast as clox (median over scripts of lox ÷ clox)".into(),
                format!("{med:.2}×"),
                verdict(med <= 1.0),
            ));
        }
    }
    out
}

/// The whole generated section.
pub fn render(
    results: &[(Group, Vec<Measured>)],
    machine: &Machine,
    charts: &[(String, String)],
    quick: bool,
    repeats: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Side by side: spanheap, Go, Boehm GC and the Rust GC crates (issue 7)\n"
    );
    let _ = writeln!(
        out,
        "Generated by `bench/run.sh{}` on {} — do not edit by hand; rerun the \
         command. Every row is a separate process, timed from outside \
         (wall, CPU = user + system, peak RSS from `wait4`); up to {repeats} runs per row, interleaved, \
         median shown (a row whose first run took over a minute ran once). \
         Ratios divide by spanheap's row. Rows whose result lines differ from \
         the others' are discarded. Raw numbers: `target/bench-results/`.\n",
        if quick { " --quick" } else { "" },
        machine.date
    );
    let _ = writeln!(out, "Machine: {}.\n", machine.hardware);
    let v: Vec<String> = machine
        .versions
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(out, "Versions: {}.\n", v.join("; "));
    let gs = goals(results);
    if !gs.is_empty() {
        let _ = writeln!(out, "### Goals\n");
        let _ = writeln!(out, "| goal | measured | |\n|---|---|---|");
        for (g, m, v) in gs {
            let _ = writeln!(out, "| {g} | {m} | {v} |");
        }
        let _ = writeln!(
            out,
            "\nWhere a goal is not met, [performance.md](performance.md) has the profile.\n"
        );
    }
    for (g, ms) in results {
        let _ = writeln!(out, "### {}\n\n{}\n", g.title, g.about);
        if let Some((_, link)) = charts.iter().find(|(id, _)| *id == g.id) {
            let _ = writeln!(out, "![{}]({link})\n", g.title);
        }
        match g.layout {
            Layout::Peers => peers_table(&mut out, g, ms),
            Layout::Lox => lox_table(&mut out, ms),
        }
        out.push('\n');
    }
    out
}

/// The markers around the generated section of `docs/benchmarks.md`.
pub const BEGIN: &str = "<!-- harness:begin (generated by bench/run.sh; do not edit) -->";
/// End marker.
pub const END: &str = "<!-- harness:end -->";

/// `old` with the text between the markers replaced by `body` (markers
/// appended at the end when missing).
pub fn splice(old: &str, body: &str) -> String {
    match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{BEGIN}\n{body}{}", &old[..b], &old[e..])
        }
        _ => format!("{old}\n{BEGIN}\n{body}{END}\n"),
    }
}

/// One line per run: group, row, run, outcome, wall, cpu, rss, metrics.
pub fn tsv(results: &[(Group, Vec<Measured>)]) -> String {
    let mut out = String::from("group\trow\trun\toutcome\twall_s\tcpu_s\tmax_rss_bytes\tmetrics\n");
    for (g, ms) in results {
        for m in ms {
            for (i, r) in m.runs.iter().enumerate() {
                let metrics: Vec<String> =
                    r.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{:?}\t{:.4}\t{:.4}\t{}\t{}",
                    g.id,
                    m.case.row,
                    i + 1,
                    r.outcome,
                    r.wall.as_secs_f64(),
                    r.cpu.as_secs_f64(),
                    r.max_rss,
                    metrics.join(" ")
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splicing_keeps_the_hand_written_parts() {
        let doc = format!("# B\nintro\n{BEGIN}\nold\n{END}\n## rest\n");
        let s = splice(&doc, "new\n");
        assert_eq!(s, format!("# B\nintro\n{BEGIN}\nnew\n{END}\n## rest\n"));
        let s = splice("# B\n", "new\n");
        assert!(s.starts_with("# B\n") && s.contains(&format!("{BEGIN}\nnew\n{END}")));
    }

    #[test]
    fn lock_versions() {
        let lock = "[[package]]\nname = \"gc\"\nversion = \"0.5.0\"\n\n[[package]]\nname = \"gc-arena\"\nversion = \"0.7.1\"\n";
        assert_eq!(lock_version(lock, "gc").as_deref(), Some("0.5.0"));
        assert_eq!(lock_version(lock, "gc-arena").as_deref(), Some("0.7.1"));
        assert_eq!(lock_version(lock, "dumpster"), None);
    }
}

//! `harness-bench`: the orchestrator of the side-by-side benchmarks
//! (issue 7). Runs every workload on every peer as separate processes,
//! times each process from outside (wall, CPU, peak RSS via `wait4`),
//! repeats, checks that the peers' result lines agree, and writes the
//! tables (median, min–max, ratios to spanheap) and one SVG chart per
//! table.
//!
//! ```text
//! harness-bench [--quick] [--repeats N] [--only ID[,ID...]] [--out FILE]
//!               [--charts DIR] [--limit-s S] [--long-s S]
//! ```
//!
//! `bench/run.sh` is the one command that installs, builds and calls this
//! (see `bench/harness/README.md`, "Orchestrator"). It runs from the
//! repository root.
//!
//! - Full mode replaces the part of `docs/benchmarks.md` between
//!   `<!-- harness:begin -->` and `<!-- harness:end -->` (appending the
//!   markers if missing) and writes the charts to `docs/benchmarks/`.
//! - `--quick` runs every case once at the small sizes and writes to
//!   `target/bench-quick/`; it exits 1 if any run failed, if spanheap could
//!   not run a case, or if any peer's result lines differ (the check CI
//!   runs: the harness is correct, not fast).
//! - Repeats are interleaved (round r of every case before round r+1), so
//!   a slow minute of the machine spreads over the peers. A case whose
//!   first run takes longer than `--long-s` (default 60 s) runs once.
//! - Raw per-run numbers go to `target/bench-results/<mode>.tsv`.
//!
//! Invariant: a row's numbers only ever come from runs that exited 0 with
//! the group's agreed output; other rows show why they have none.

mod chart;
mod measure;
mod plan;
mod report;

use measure::{Outcome, Run};
use plan::{Case, Group, Parse, Paths};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The command line.
#[derive(Clone, Debug)]
struct Args {
    quick: bool,
    repeats: usize,
    only: Vec<String>,
    out: Option<PathBuf>,
    charts: Option<PathBuf>,
    limit: Duration,
    long: Duration,
}

const USAGE: &str = "usage: harness-bench [--quick] [--repeats N] [--only ID[,ID...]] \
                     [--out FILE] [--charts DIR] [--limit-s S] [--long-s S]\n\
                     run from the repository root, after bench/run.sh has built everything";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        repeats: 3,
        only: Vec::new(),
        out: None,
        charts: None,
        limit: Duration::from_secs(900),
        long: Duration::from_secs(60),
    };
    let mut it = args.into_iter();
    let num = |v: Option<String>, what: &str| -> Result<u64, String> {
        v.as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{what} needs a positive number"))
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--quick" => a.quick = true,
            "--repeats" => a.repeats = num(it.next(), "--repeats")? as usize,
            "--limit-s" => a.limit = Duration::from_secs(num(it.next(), "--limit-s")?),
            "--long-s" => a.long = Duration::from_secs(num(it.next(), "--long-s")?),
            "--only" => {
                let v = it.next().ok_or("--only needs group ids")?;
                a.only.extend(v.split(',').map(str::to_owned));
            }
            "--out" => a.out = Some(it.next().ok_or("--out needs a file")?.into()),
            "--charts" => a.charts = Some(it.next().ok_or("--charts needs a directory")?.into()),
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {x:?}")),
        }
    }
    if a.quick {
        a.repeats = 1;
    }
    Ok(a)
}

/// A case and its runs.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The case.
    pub case: Case,
    /// Its runs, in order; measurement stops at the first that is not Ok.
    pub runs: Vec<Run>,
    /// Whether its output agreed (None: not checked, e.g. no Ok run).
    pub agrees: Option<bool>,
}

impl Measured {
    /// The runs that count: Ok ones (all of them, when the output agrees).
    pub fn ok_runs(&self) -> Vec<&Run> {
        if self.agrees == Some(false) {
            return Vec::new();
        }
        self.runs
            .iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .collect()
    }

    /// Why the row has no numbers, if it has none.
    pub fn problem(&self) -> Option<String> {
        if let Some(r) = self.runs.iter().find(|r| r.outcome != Outcome::Ok) {
            return Some(match &r.outcome {
                Outcome::Unsupported(why) => {
                    why.strip_prefix("unsupported: ").unwrap_or(why).to_owned()
                }
                Outcome::Failed(why) => format!("FAILED: {why}"),
                Outcome::Ok => unreachable!(),
            });
        }
        if self.agrees == Some(false) {
            return Some("OUTPUT DIFFERS".into());
        }
        None
    }
}

/// Derived metrics for the cases whose output is not `metric` lines.
fn post_process(case: &Case, run: &mut Run) {
    match case.parse {
        Parse::Metrics | Parse::None => {}
        Parse::GoMallocScript => {
            for line in run.stdout.lines() {
                let w: Vec<&str> = line.split_whitespace().collect();
                if let ["go-malloc" | "go-malloc-escape", name, median, ..] = w.as_slice()
                    && let Ok(v) = median.parse::<f64>()
                {
                    run.metrics.insert(format!("ns_per_op_{name}"), v);
                }
            }
        }
        Parse::LoxTrace => {
            let (cycles, clock) = lox_trace(&run.stderr);
            run.metrics.insert("gc_cycles".into(), cycles as f64);
            run.metrics.insert("gc_clock_ms".into(), clock);
        }
    }
}

/// `(cycles, Σ phase clocks in ms)` of `gc N @t: a+b+c ms clock, ...` lines.
fn lox_trace(stderr: &str) -> (u64, f64) {
    let mut cycles = 0;
    let mut clock = 0.0;
    for line in stderr.lines() {
        if !line.starts_with("gc ") {
            continue;
        }
        let Some(phases) = line
            .split_once(": ")
            .and_then(|(_, rest)| rest.split_once(" ms clock"))
            .map(|(p, _)| p)
        else {
            continue;
        };
        let parts: Vec<f64> = phases.split('+').filter_map(|x| x.parse().ok()).collect();
        if parts.len() == 3 {
            cycles += 1;
            clock += parts.iter().sum::<f64>();
        }
    }
    (cycles, clock)
}

fn run_group(g: &Group, args: &Args, root: &std::path::Path) -> Vec<Measured> {
    let mut done: Vec<Measured> = g
        .cases
        .iter()
        .map(|c| Measured {
            case: c.clone(),
            runs: Vec::new(),
            agrees: None,
        })
        .collect();
    let mut active = vec![true; done.len()];
    for round in 0..args.repeats {
        for (i, m) in done.iter_mut().enumerate() {
            if !active[i] {
                continue;
            }
            let mut r = measure::run(&m.case.argv, &m.case.env, root, args.limit);
            post_process(&m.case, &mut r);
            eprintln!(
                "[{}] {} run {}/{}: {:.2} s, {} MiB{}",
                g.id,
                m.case.row,
                round + 1,
                args.repeats,
                r.wall.as_secs_f64(),
                r.max_rss >> 20,
                match &r.outcome {
                    Outcome::Ok => String::new(),
                    Outcome::Unsupported(w) => format!(" ({w})"),
                    Outcome::Failed(w) => format!(" FAILED: {w}\n{}", measure::tail(&r.stderr, 8)),
                }
            );
            let stop =
                r.outcome != Outcome::Ok || m.case.once || (round == 0 && r.wall > args.long);
            m.runs.push(r);
            if stop {
                active[i] = false;
            }
        }
    }
    check_agreement(&mut done);
    done
}

/// Sets `agrees` on every case: compared cases against the first Ok
/// compared case (spanheap's when it ran), expected-file cases against
/// their file. Every Ok run of a case must agree.
fn check_agreement(ms: &mut [Measured]) {
    let reference = ms
        .iter()
        .filter(|m| m.case.compare)
        .filter_map(|m| m.runs.iter().find(|r| r.outcome == Outcome::Ok))
        .map(|r| r.stdout.clone())
        .next();
    for m in ms.iter_mut() {
        let oks: Vec<&Run> = m.runs.iter().filter(|r| r.outcome == Outcome::Ok).collect();
        if oks.is_empty() {
            m.agrees = None;
            continue;
        }
        m.agrees = match (&m.case.expected, m.case.compare) {
            (Some(e), _) => Some(oks.iter().all(|r| matches_expected(&r.stdout, e))),
            (None, true) => reference
                .as_ref()
                .map(|w| oks.iter().all(|r| r.stdout == *w && !r.stdout.is_empty())),
            (None, false) => None,
        };
    }
}

/// Whether `out` is `expected`, where an expected line `<elapsed>`
/// matches any number (a Lox script's own measurement of its time), as
/// `examples/tests/lox.rs` compares them.
fn matches_expected(out: &str, expected: &str) -> bool {
    let (o, e): (Vec<&str>, Vec<&str>) = (out.lines().collect(), expected.lines().collect());
    o.len() == e.len()
        && o.iter()
            .zip(&e)
            .all(|(o, e)| o == e || (*e == "<elapsed>" && o.parse::<f64>().is_ok()))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("harness-bench: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let root = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("harness-bench: no current directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !root.join("bench/harness/Cargo.toml").exists() {
        eprintln!("harness-bench: run me from the repository root\n{USAGE}");
        return ExitCode::from(2);
    }
    let clox = std::env::var_os("CLOX").map(PathBuf::from);
    let paths = Paths::new(&root, clox);
    let groups: Vec<Group> = plan::plan(&paths, args.quick)
        .into_iter()
        .filter(|g| args.only.is_empty() || args.only.iter().any(|o| g.id.starts_with(o.as_str())))
        .collect();
    if groups.is_empty() {
        eprintln!("harness-bench: --only matched no group");
        return ExitCode::from(2);
    }
    let mode = if args.quick { "quick" } else { "full" };
    let out = args.out.clone().unwrap_or_else(|| {
        if args.quick {
            root.join("target/bench-quick/benchmarks.md")
        } else {
            root.join("docs/benchmarks.md")
        }
    });
    let charts = args.charts.clone().unwrap_or_else(|| {
        if args.quick {
            root.join("target/bench-quick")
        } else {
            root.join("docs/benchmarks")
        }
    });

    let mut results = Vec::new();
    for g in &groups {
        let ms = run_group(g, &args, &root);
        results.push((g.clone(), ms));
    }

    let machine = report::Machine::probe(&root);
    let mut problems = Vec::new();
    for (g, ms) in &results {
        for m in ms {
            if let Some(p) = m.problem() {
                let fatal = p.starts_with("FAILED")
                    || p == "OUTPUT DIFFERS"
                    || (m.case.peer == "spanheap"
                        && m.runs.iter().any(|r| r.outcome != Outcome::Ok));
                if fatal {
                    problems.push(format!("{} / {}: {p}", g.id, m.case.row));
                }
            }
        }
    }
    if let Err(e) = write_outputs(&args, &results, &machine, &out, &charts, mode, &root) {
        eprintln!("harness-bench: cannot write the results: {e}");
        return ExitCode::FAILURE;
    }
    if problems.is_empty() {
        eprintln!(
            "harness-bench: every peer agreed; report in {}",
            out.display()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("harness-bench: {} problem(s):", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        ExitCode::FAILURE
    }
}

fn write_outputs(
    args: &Args,
    results: &[(Group, Vec<Measured>)],
    machine: &report::Machine,
    out: &std::path::Path,
    charts: &std::path::Path,
    mode: &str,
    root: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(charts)?;
    let mut chart_links = Vec::new();
    for (g, ms) in results {
        let file = charts.join(format!("{}.svg", g.id));
        match chart::draw(g, ms, &file) {
            Ok(true) => chart_links.push((g.id.clone(), rel(out, &file))),
            Ok(false) => {}
            Err(e) => eprintln!("harness-bench: chart {}: {e}", g.id),
        }
    }
    let body = report::render(results, machine, &chart_links, args.quick, args.repeats);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if args.quick || args.out.is_some() && !out.exists() {
        std::fs::write(out, &body)?;
    } else {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        std::fs::write(out, report::splice(&old, &body))?;
    }
    let raw = root.join("target/bench-results");
    std::fs::create_dir_all(&raw)?;
    std::fs::write(raw.join(format!("{mode}.tsv")), report::tsv(results))?;
    Ok(())
}

/// `to` relative to the directory of `from` (both under one root).
fn rel(from: &std::path::Path, to: &std::path::Path) -> String {
    let base = from.parent().unwrap_or(std::path::Path::new(""));
    match to.strip_prefix(base) {
        Ok(r) => r.display().to_string(),
        Err(_) => to.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lox_trace_lines_are_summed() {
        let s = "gc 1 @0.1s: 0.5+2.0+0.5 ms clock, 3->3->0 MB, 4 MB goal, 1 W\n\
                 hello\ngc 2 @0.2s: 1.000+1.000+1.000 ms clock, x\n";
        assert_eq!(lox_trace(s), (2, 6.0));
    }

    #[test]
    fn elapsed_lines_match_any_number() {
        assert!(matches_expected("1\n0.25\n", "1\n<elapsed>\n"));
        assert!(!matches_expected("1\nslow\n", "1\n<elapsed>\n"));
        assert!(!matches_expected("1\n", "1\n<elapsed>\n"));
        assert!(!matches_expected("2\n0.1\n", "1\n<elapsed>\n"));
    }

    #[test]
    fn arguments() {
        let a = parse_args(["--quick", "--only", "alloc,lox"].map(String::from)).unwrap();
        assert!(a.quick && a.repeats == 1);
        assert_eq!(a.only, ["alloc", "lox"]);
        assert!(parse_args(["--repeats", "0"].map(String::from)).is_err());
        assert!(parse_args(["--bogus"].map(String::from)).is_err());
    }

    #[test]
    fn disagreement_is_found() {
        let ok = |s: &str| Run {
            outcome: Outcome::Ok,
            wall: Duration::from_secs(1),
            cpu: Duration::from_secs(1),
            max_rss: 1,
            stdout: s.into(),
            metrics: Default::default(),
            stderr: String::new(),
        };
        let c = |row: &str| Case {
            row: row.into(),
            peer: row.into(),
            argv: vec![],
            env: vec![],
            compare: true,
            expected: None,
            parse: Parse::Metrics,
            once: false,
        };
        let mut ms = vec![
            Measured {
                case: c("spanheap"),
                runs: vec![ok("a\n")],
                agrees: None,
            },
            Measured {
                case: c("go"),
                runs: vec![ok("a\n"), ok("b\n")],
                agrees: None,
            },
            Measured {
                case: c("box"),
                runs: vec![ok("a\n")],
                agrees: None,
            },
        ];
        check_agreement(&mut ms);
        assert_eq!(ms[0].agrees, Some(true));
        assert_eq!(ms[1].agrees, Some(false));
        assert_eq!(ms[1].problem().as_deref(), Some("OUTPUT DIFFERS"));
        assert!(ms[1].ok_runs().is_empty());
        assert_eq!(ms[2].ok_runs().len(), 1);
    }
}

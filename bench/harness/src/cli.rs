//! The command line shared by the `harness` and `harness-mimalloc`
//! binaries: `<binary> <workload> <peer> [--quick] [--threads N]`, plus
//! `[--shape sequential|random] [--heap-mib M]` for `mark` (and
//! `--heap-mib` for `probe`).
//!
//! Contract (for the orchestrator that runs and times the binaries):
//! - stdout: only the workload's deterministic result lines, the same
//!   for every peer;
//! - stderr: `metric <name> <value>` lines (and messages);
//! - exit 0 on success, 2 on bad arguments (with the usage on stderr),
//!   3 when the peer cannot run the workload in that variant (with
//!   `unsupported: <peer> <workload> <why>` on stderr).

use crate::mark::Shape;
use crate::{Options, Peer, Report, Workload, run};
use std::io::Write;
use std::process::ExitCode;

/// Which binary is parsing: the peers it may run (the `mimalloc` peer is
/// the `Box` code, and only means mimalloc in `harness-mimalloc`, whose
/// global allocator it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `harness`: every peer but `mimalloc`, on the system allocator.
    Harness,
    /// `harness-mimalloc`: the `mimalloc` peer only.
    HarnessMimalloc,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Harness => "harness",
            Binary::HarnessMimalloc => "harness-mimalloc",
        }
    }

    fn runs(self, peer: Peer) -> bool {
        (peer == Peer::Mimalloc) == (self == Binary::HarnessMimalloc)
    }

    /// The usage text.
    pub fn usage(self) -> String {
        let peers: Vec<&str> = Peer::ALL
            .into_iter()
            .filter(|&p| self.runs(p))
            .map(Peer::name)
            .collect();
        let workloads: Vec<&str> = Workload::ALL.into_iter().map(Workload::name).collect();
        format!(
            "usage: {} <workload> <peer> [--quick] [--threads N] [--shape S] [--heap-mib M]\n  \
             workloads: {}\n  peers: {}\n  \
             --quick: small sizes; --threads N: N mutator threads (1 to {MAX_THREADS}; \
             mark: N marker workers)\n  \
             mark: --shape sequential|random (default sequential), \
             --heap-mib M (1 to {MAX_HEAP_MIB}; default 64, --quick 4); probe: --heap-mib M",
            self.name(),
            workloads.join(", "),
            peers.join(", "),
        )
    }
}

/// The largest `--threads`.
pub const MAX_THREADS: usize = 64;

/// The largest `--heap-mib` (node numbers stay below 2^32).
pub const MAX_HEAP_MIB: usize = 65536;

/// A parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The workload.
    pub workload: Workload,
    /// The peer.
    pub peer: Peer,
    /// Size and threads.
    pub opts: Options,
}

/// Why a command line was not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// `-h` / `--help`.
    Help,
    /// Anything wrong, with a message.
    Bad(String),
}

/// Parses the arguments (without the program name).
///
/// # Errors
/// [`ArgError::Help`] for `-h`/`--help`, [`ArgError::Bad`] otherwise.
pub fn parse(
    binary: Binary,
    args: impl IntoIterator<Item = String>,
) -> Result<Invocation, ArgError> {
    let bad = |m: String| Err(ArgError::Bad(m));
    let mut positional = Vec::new();
    let mut opts = Options::default();
    // `--shape` / `--heap-mib` seen, checked against the workload below.
    let mut given: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Err(ArgError::Help),
            "--quick" => opts.quick = true,
            "--threads" => {
                let Some(n) = args.next() else {
                    return bad("--threads needs a number".into());
                };
                opts.threads = parse_threads(&n)?;
            }
            _ if a.starts_with("--threads=") => {
                opts.threads = parse_threads(&a["--threads=".len()..])?;
            }
            "--shape" | "--heap-mib" => {
                let Some(v) = args.next() else {
                    return bad(format!("{a} needs a value"));
                };
                set_mark_option(&mut opts, &a, &v)?;
                given.push(a);
            }
            _ if a.starts_with("--shape=") || a.starts_with("--heap-mib=") => {
                if let Some((name, v)) = a.split_once('=') {
                    set_mark_option(&mut opts, name, v)?;
                    given.push(name.to_owned());
                }
            }
            _ if a.starts_with('-') => return bad(format!("unknown option {a:?}")),
            _ => positional.push(a),
        }
    }
    let [workload, peer] = positional.as_slice() else {
        return bad(format!(
            "expected a workload and a peer, got {} argument(s)",
            positional.len()
        ));
    };
    let Some(workload) = Workload::parse(workload) else {
        return bad(format!("unknown workload {workload:?}"));
    };
    let Some(peer) = Peer::parse(peer).filter(|&p| binary.runs(p)) else {
        let hint = match (binary, Peer::parse(peer)) {
            (Binary::Harness, Some(Peer::Mimalloc)) => " (run it with harness-mimalloc)",
            (Binary::HarnessMimalloc, Some(_)) => " (run it with harness)",
            _ => "",
        };
        return bad(format!("unknown peer {peer:?} for {}{hint}", binary.name()));
    };
    for name in given {
        let applies = match workload {
            Workload::Mark => true,
            Workload::Probe => name == "--heap-mib",
            _ => false,
        };
        if !applies {
            return bad(format!("{name} does not apply to {}", workload.name()));
        }
    }
    Ok(Invocation {
        workload,
        peer,
        opts,
    })
}

/// `--shape` or `--heap-mib`.
fn set_mark_option(opts: &mut Options, name: &str, v: &str) -> Result<(), ArgError> {
    if name == "--shape" {
        opts.shape = Shape::parse(v).ok_or_else(|| {
            ArgError::Bad(format!("--shape takes sequential or random, not {v:?}"))
        })?;
    } else {
        opts.heap_mib = match v.parse::<usize>() {
            Ok(m) if (1..=MAX_HEAP_MIB).contains(&m) => Some(m),
            _ => {
                return Err(ArgError::Bad(format!(
                    "--heap-mib takes a number from 1 to {MAX_HEAP_MIB}, not {v:?}"
                )));
            }
        };
    }
    Ok(())
}

fn parse_threads(s: &str) -> Result<usize, ArgError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(ArgError::Bad(format!(
            "--threads takes a number from 1 to {MAX_THREADS}, not {s:?}"
        ))),
    }
}

/// Writes a report: result lines on stdout, metrics on stderr.
fn print(report: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    for m in &report.metrics {
        writeln!(err, "{m}")?;
    }
    Ok(())
}

/// The whole program: parses `std::env::args`, runs, prints, and returns
/// the exit code (0, 2 or 3; 1 if stdout cannot be written).
pub fn main(binary: Binary) -> ExitCode {
    let inv = match parse(binary, std::env::args().skip(1)) {
        Ok(inv) => inv,
        Err(ArgError::Help) => {
            println!("{}", binary.usage());
            return ExitCode::SUCCESS;
        }
        Err(ArgError::Bad(msg)) => {
            eprintln!("error: {msg}\n{}", binary.usage());
            return ExitCode::from(2);
        }
    };
    match run(inv.workload, inv.peer, &inv.opts) {
        Ok(report) => match print(&report) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err(unsupported) => {
            eprintln!("{unsupported}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let inv = parse(
            Binary::Harness,
            args("gcbench spanheap --quick --threads 2"),
        )
        .unwrap();
        assert_eq!(inv.workload, Workload::GcBench);
        assert_eq!(inv.peer, Peer::Spanheap);
        assert_eq!(
            inv.opts,
            Options {
                quick: true,
                threads: 2,
                ..Default::default()
            }
        );
        let inv = parse(Binary::Harness, args("--threads=2 alloc box")).unwrap();
        assert_eq!((inv.workload, inv.opts.threads), (Workload::Alloc, 2));
        let inv = parse(
            Binary::Harness,
            args("mark spanheap --shape random --heap-mib=512 --threads 2"),
        )
        .unwrap();
        assert_eq!(
            (inv.workload, inv.opts.shape, inv.opts.heap_mib),
            (Workload::Mark, Shape::Random, Some(512))
        );
        let inv = parse(Binary::Harness, args("probe box --heap-mib 8 --quick")).unwrap();
        assert_eq!(
            (inv.workload, inv.opts.heap_mib),
            (Workload::Probe, Some(8))
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            "",
            "binary-trees",
            "binary-trees spanheap extra",
            "trees spanheap",
            "binary-trees go",
            "binary-trees mimalloc",
            "binary-trees box --threads",
            "binary-trees box --threads 0",
            "binary-trees box --threads x",
            "binary-trees box --threads 1000",
            "binary-trees box --fast",
            "mark spanheap --shape",
            "mark spanheap --shape square",
            "mark spanheap --heap-mib 0",
            "mark spanheap --heap-mib=x",
            "gcbench spanheap --heap-mib 8",
            "probe box --shape random",
        ] {
            assert!(
                matches!(parse(Binary::Harness, args(bad)), Err(ArgError::Bad(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(parse(Binary::HarnessMimalloc, args("alloc box")).is_err());
        assert!(parse(Binary::HarnessMimalloc, args("alloc mimalloc")).is_ok());
        assert_eq!(
            parse(Binary::Harness, args("alloc box --help")),
            Err(ArgError::Help)
        );
    }
}

//! Running one benchmark process and measuring it from outside.
//!
//! A run spawns the command with its stdout and stderr piped, reads both
//! on their own threads (a child that fills a pipe nobody reads would
//! block), and reaps it with `wait4(2)`, which returns the child's own
//! resource usage: peak resident set (`ru_maxrss`), user and system CPU
//! time. Wall time is taken around spawn and reap with a monotonic clock.
//! A watchdog kills a run that exceeds its time limit.
//!
//! Invariant: each child is reaped exactly once, by `wait4` on its pid
//! (the `std::process::Child` is never waited on, so its pid cannot be
//! reused under us before the watchdog is told the run is over).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 3: the peer cannot run this variant (the `unsupported:` line).
    Unsupported(String),
    /// Any other exit, a signal, a spawn error or a timeout, with a reason.
    Failed(String),
}

/// One measured process.
#[derive(Clone, Debug)]
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time, spawn to reap.
    pub wall: Duration,
    /// User plus system CPU time of the child (and of its reaped
    /// descendants — none of ours have any).
    pub cpu: Duration,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
    /// Everything the child wrote on stdout.
    pub stdout: String,
    /// The `metric <name> <value>` lines of its stderr.
    pub metrics: BTreeMap<String, f64>,
    /// Everything the child wrote on stderr.
    pub stderr: String,
}

/// Parses `metric <name> <value>` lines; other lines are ignored.
pub fn parse_metrics(stderr: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in stderr.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("metric") {
            continue;
        }
        if let (Some(name), Some(value)) = (words.next(), words.next())
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

/// The last `lines` lines of `s`.
pub fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error ends the capture; what was read is kept.
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `argv` with `env` added to this process's environment, in
/// `dir`, killing it after `limit`.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    dir: &std::path::Path,
    limit: Duration,
) -> Run {
    let failed = |why: String| Run {
        outcome: Outcome::Failed(why),
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss: 0,
        stdout: String::new(),
        metrics: BTreeMap::new(),
        stderr: String::new(),
    };
    let Some((program, args)) = argv.split_first() else {
        return failed("empty command".into());
    };
    let mut cmd = Command::new(program);
    // Its own process group, so that a timeout kills its children too (a
    // script's `go test`, a shell's `sleep`), which would otherwise hold
    // the pipes open.
    cmd.process_group(0);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run {program}: {e}")),
    };
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take().map(read_all);
    let err = child.stderr.take().map(read_all);

    // The watchdog: kills the child if it is still running at the limit.
    let done = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, timed_out) = (Arc::clone(&done), Arc::clone(&timed_out));
        std::thread::spawn(move || {
            let step = Duration::from_millis(50);
            let mut waited = Duration::ZERO;
            while !done.load(Ordering::Acquire) {
                if waited >= limit {
                    timed_out.store(true, Ordering::Release);
                    // SAFETY: kill(2) has no memory-safety preconditions;
                    // `pid` is not yet reaped (the main thread sets `done`
                    // only after wait4 returned), so it still names our
                    // child, the leader of process group `pid`, and the
                    // group id cannot have been reused.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(step);
                waited += step;
            }
        })
    };

    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: `status` and `usage` are valid, writable locals for the
        // duration of the call; `pid` is our unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break true;
        }
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break false;
    };
    let wall = start.elapsed();
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    // `child` was reaped by wait4; dropping it does not wait again.
    drop(child);
    let stdout = out
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = err
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    if !reaped {
        return failed(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let outcome = if timed_out.load(Ordering::Acquire) {
        Outcome::Failed(format!("killed after the {} s limit", limit.as_secs()))
    } else if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Outcome::Ok,
            3 => Outcome::Unsupported(
                stderr
                    .lines()
                    .find(|l| l.starts_with("unsupported:"))
                    .unwrap_or("unsupported")
                    .to_owned(),
            ),
            code => Outcome::Failed(format!("exit code {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Outcome::Failed(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Outcome::Failed(format!("wait status {status:#x}"))
    };
    Run {
        outcome,
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
        metrics: parse_metrics(&stderr),
        stderr,
        stdout,
    }
}

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn metrics_are_parsed_and_noise_is_skipped() {
        let m = parse_metrics("metric a 1.5\nhello\nmetric b x\nmetric c 7\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"], 1.5);
        assert_eq!(m["c"], 7.0);
    }

    #[test]
    fn a_process_is_measured() {
        let sh = |s: &str| vec!["sh".to_owned(), "-c".to_owned(), s.to_owned()];
        let dir = std::env::temp_dir();
        let lim = Duration::from_secs(20);
        let r = run(&sh("echo out; echo 'metric x 2' >&2"), &[], &dir, lim);
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.metrics["x"], 2.0);
        assert!(r.max_rss > 0);
        let r = run(
            &sh("echo 'unsupported: p w why' >&2; exit 3"),
            &[],
            &dir,
            lim,
        );
        assert_eq!(
            r.outcome,
            Outcome::Unsupported("unsupported: p w why".into())
        );
        let r = run(&sh("exit 101"), &[], &dir, lim);
        assert_eq!(r.outcome, Outcome::Failed("exit code 101".into()));
        let r = run(&sh("sleep 30"), &[], &dir, Duration::from_millis(200));
        assert!(matches!(r.outcome, Outcome::Failed(ref w) if w.contains("limit")));
        let r = run(&["/nonexistent/program".to_owned()], &[], &dir, lim);
        assert!(matches!(r.outcome, Outcome::Failed(ref w) if w.contains("cannot run")));
    }
}

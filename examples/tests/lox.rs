//! End-to-end tests of the `lox` interpreter (`examples/src/lox/`), which must
//! behave exactly like clox, the C virtual machine of *Crafting Interpreters*.
//!
//! * [`programs`]: every `examples/lox/tests/**/*.lox` file runs twice, once
//!   normally and once with `--gc-stress`. Both runs must meet the
//!   expectations annotated in the file, and both must print exactly the same
//!   stdout and stderr with the same exit code.
//! * [`benchmarks`]: every `examples/lox/bench/*.lox` script runs once and its
//!   stdout is compared with `<name>.expected`, where a line reading
//!   `<elapsed>` matches any number (the time the script measured itself).
//!   [`benchmarks_gc_stress`] also runs [`STRESS_BENCHES`] under
//!   `--gc-stress`.
//! * The remaining tests drive the command line directly: the stack trace
//!   format, several compile errors in one file, `--stats`, `--gctrace`, a
//!   missing script and a usage error.
//!
//! # Annotations
//!
//! Test files use the annotations of the official Crafting Interpreters test
//! suite, interpreted the same way, so that suite can be run unchanged (see
//! `LOX_TEST_DIR` below):
//!
//! * `// expect: TEXT`: the next line of stdout is `TEXT`.
//! * `// Error at 'x': MESSAGE` (or `// Error: MESSAGE`, `// Error at end:
//!   ...`): a compile error `[line N] Error at 'x': MESSAGE` on stderr, where
//!   `N` is the line holding the comment. The exit code must be 65.
//! * `// [line N] Error...` and `// [c line N] Error...`: the same with an
//!   explicit line number. `// [java line N] ...` lines are ignored (they are
//!   jlox's expectations).
//! * `// expect runtime error: MESSAGE`: the first stderr line is `MESSAGE`,
//!   followed by a stack trace whose innermost frame is on the line holding
//!   the comment. The exit code must be 70. Beyond the official runner, every
//!   trace line must read `[line N] in NAME()` or `[line N] in script`, with
//!   the script frame last.
//! * `// nontest`: the file is not a test and is skipped.
//!
//! Compile errors are compared as a set: each expected error must appear and
//! nothing else may appear on stderr. Without any error annotation the exit
//! code must be 0 and stderr empty.
//!
//! # Environment
//!
//! * `LOX_TEST_DIR`: run the `.lox` files under this directory instead of
//!   `examples/lox/tests` (for example the official suite's `test/`
//!   directory). As in the official clox configuration, files under
//!   directories named `benchmark`, `scanning` or `expressions` are skipped.
//! * `LOX_TEST_FILTER`: only run test files whose path (relative to the test
//!   directory) contains this text.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Benchmarks that also run under `--gc-stress`. Stress mode collects at every
/// allocation, so only benchmarks that allocate next to nothing while running
/// are cheap enough. `zoo` and `method_call` create a few instances up front
/// and then only read and write their fields and call methods on them, so the
/// collector still has live objects to trace; they were the two fastest under
/// `--gc-stress` when this list was chosen (`equality` and `fib` come next).
const STRESS_BENCHES: [&str; 2] = ["zoo", "method_call"];

/// How long one run of a test program may take before it is killed.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one benchmark run may take before it is killed.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// After this many runs hit their time limit, the remaining test files and
/// benchmarks are not run (and are reported as failures), so a hanging
/// interpreter cannot keep the suite busy for hours.
const MAX_TIMEOUTS: usize = 3;

/// How many runs have hit their time limit so far.
static TIMEOUTS: AtomicUsize = AtomicUsize::new(0);

/// How many lines of a process's stderr a failure report quotes.
const QUOTED_STDERR_LINES: usize = 12;

/// How many problems of one kind a failure report lists before summarising.
const MAX_LISTED_PROBLEMS: usize = 12;

// ---------------------------------------------------------------------------
// Running the interpreter
// ---------------------------------------------------------------------------

/// The `lox` binary built by cargo for this test.
fn lox_binary() -> &'static str {
    env!("CARGO_BIN_EXE_lox")
}

/// What one run of the interpreter did.
#[derive(Debug)]
struct Run {
    /// The command line, for failure reports.
    command: String,
    /// The exit code, or `None` if the process was killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: Option<Duration>,
    elapsed: Duration,
}

impl Run {
    /// How the process ended, for failure reports: its exit code, or how it
    /// was killed.
    fn status(&self) -> String {
        match (self.code, self.timed_out) {
            (_, Some(limit)) => format!("a kill at the {}s time limit", limit.as_secs()),
            (Some(code), None) => code.to_string(),
            (None, None) => "a kill by a signal".to_string(),
        }
    }
}

/// Runs `lox` with `args`, capturing stdout and stderr, and kills it if it
/// takes longer than `timeout`.
fn run_lox(args: &[&str], timeout: Duration) -> Run {
    let command = format!("{} {}", lox_binary(), args.join(" "));
    let start = Instant::now();
    let mut child = Command::new(lox_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start `{command}`: {error}"));

    // Drain both pipes on their own threads so a chatty child cannot block on
    // a full pipe; each reader reports when its pipe closes.
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdout_sender = sender.clone();
    thread::spawn(move || stdout_sender.send((0, read_lossy(stdout))));
    thread::spawn(move || sender.send((1, read_lossy(stderr))));

    let mut streams = [None, None];
    let mut timed_out = None;
    for _ in 0..2 {
        let remaining = timeout.saturating_sub(start.elapsed());
        match receiver.recv_timeout(remaining) {
            Ok((index, text)) => streams[index] = Some(text),
            Err(_) => {
                timed_out = Some(timeout);
                break;
            }
        }
    }
    if timed_out.is_some() {
        TIMEOUTS.fetch_add(1, Ordering::Relaxed);
        let _ = child.kill();
    }
    let status = child
        .wait()
        .unwrap_or_else(|error| panic!("cannot wait for `{command}`: {error}"));
    // After a kill the pipes close and the readers finish, unless something
    // else still holds the pipes open; do not wait for that forever.
    while streams.iter().any(Option::is_none) {
        match receiver.recv_timeout(Duration::from_secs(2)) {
            Ok((index, text)) => streams[index] = Some(text),
            Err(_) => break,
        }
    }
    let [stdout, stderr] =
        streams.map(|text| text.unwrap_or_else(|| "<output unavailable>".to_string()));
    Run {
        command,
        code: status.code(),
        stdout,
        stderr,
        timed_out,
        elapsed: start.elapsed(),
    }
}

fn read_lossy(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    // A read error just truncates the output, which the checks then report.
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Splits process output into lines the way the official runner does: a
/// final newline does not start another (empty) line.
fn output_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

/// Runs `job` on every item using all available cores and returns the
/// results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = job(item);
                    results.lock().expect("a worker panicked")[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("a worker panicked")
        .into_iter()
        .map(|result| result.expect("every item was processed"))
        .collect()
}

// ---------------------------------------------------------------------------
// Parsing annotations
// ---------------------------------------------------------------------------

/// What a test file expects from the interpreter.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expectations {
    /// Expected stdout lines, each with the source line that declared it.
    output: Vec<(String, usize)>,
    /// Expected compile errors, normalised to `[N] Error...`.
    compile_errors: BTreeSet<String>,
    /// The expected runtime error message and the line it should occur on.
    runtime_error: Option<(String, usize)>,
}

impl Expectations {
    fn exit_code(&self) -> i32 {
        if self.runtime_error.is_some() {
            70
        } else if !self.compile_errors.is_empty() {
            65
        } else {
            0
        }
    }
}

/// Parses the annotations of a test file. Returns `Ok(None)` for files marked
/// `// nontest`.
fn parse_expectations(source: &str) -> Result<Option<Expectations>, String> {
    let mut expected = Expectations::default();
    for (index, line) in source.lines().enumerate() {
        let number = index + 1;
        if line.contains("// nontest") {
            return Ok(None);
        }
        if let Some(text) = expected_output(line) {
            expected.output.push((text.to_string(), number));
        } else if let Some(message) = expected_error(line) {
            expected
                .compile_errors
                .insert(format!("[{number}] {message}"));
        } else if let Some((language, error_line, message)) = expected_error_with_line(line) {
            if language != Some("java") {
                expected
                    .compile_errors
                    .insert(format!("[{error_line}] {message}"));
            }
        } else if let Some(message) = expected_runtime_error(line) {
            expected.runtime_error = Some((message.to_string(), number));
        }
    }
    if !expected.compile_errors.is_empty() && expected.runtime_error.is_some() {
        return Err("the file expects both compile errors and a runtime error".to_string());
    }
    Ok(Some(expected))
}

/// `// expect: TEXT` (the space after the colon is optional).
fn expected_output(line: &str) -> Option<&str> {
    const MARKER: &str = "// expect:";
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `// Error...`, with the line implied by where the comment is.
fn expected_error(line: &str) -> Option<&str> {
    let at = line.find("// Error")?;
    Some(&line["// ".len() + at..])
}

/// `// [line N] Error...`, `// [c line N] Error...` or
/// `// [java line N] Error...`: the language (if any), `N` and the message.
fn expected_error_with_line(line: &str) -> Option<(Option<&str>, usize, &str)> {
    line.match_indices("// [").find_map(|(at, marker)| {
        let rest = &line[at + marker.len()..];
        let (language, rest) = match rest.split_once(' ') {
            Some((language @ ("c" | "java"), rest)) => (Some(language), rest),
            _ => (None, rest),
        };
        let (number, message) = line_number_then(rest.strip_prefix("line ")?)?;
        message
            .starts_with("Error")
            .then_some((language, number, message))
    })
}

/// `// expect runtime error: MESSAGE` with a non-empty message.
fn expected_runtime_error(line: &str) -> Option<&str> {
    const MARKER: &str = "// expect runtime error: ";
    let message = &line[line.find(MARKER)? + MARKER.len()..];
    (!message.is_empty()).then_some(message)
}

/// Parses `N] REST` into `N` and `REST`.
fn line_number_then(text: &str) -> Option<(usize, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number = text[..digits].parse().ok()?;
    Some((number, text[digits..].strip_prefix("] ")?))
}

/// A compile error as reported on stderr, `[line N] Error...` (the official
/// runner's `\[.*line (\d+)\] (Error.+)`), normalised to `[N] Error...`.
fn reported_compile_error(line: &str) -> Option<String> {
    let open = line.find('[')?;
    let after = &line[open + 1..];
    after.rmatch_indices("line ").find_map(|(at, marker)| {
        let (number, message) = line_number_then(&after[at + marker.len()..])?;
        (message.starts_with("Error") && message.len() > "Error".len())
            .then(|| format!("[{number}] {message}"))
    })
}

/// Turns a normalised `[N] Error...` back into the form clox prints.
fn display_error(normalised: &str) -> String {
    format!("[line {}", &normalised[1..])
}

/// Parses a stack trace line, `[line N] in NAME()` or `[line N] in script`,
/// into `N` and whether it is the script's frame.
fn trace_line(line: &str) -> Option<(usize, bool)> {
    let (number, rest) = line_number_then(line.strip_prefix("[line ")?)?;
    let frame = rest.strip_prefix("in ")?;
    if frame == "script" {
        return Some((number, true));
    }
    let name = frame.strip_suffix("()")?;
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((number, false))
}

/// The first `[line N]` anywhere in `line` (the official runner's stack trace
/// pattern).
fn first_line_reference(line: &str) -> Option<usize> {
    line.match_indices("[line ").find_map(|(at, marker)| {
        let rest = &line[at + marker.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest[digits..]
            .starts_with(']')
            .then(|| rest[..digits].parse().ok())
            .flatten()
    })
}

// ---------------------------------------------------------------------------
// Checking a run against expectations
// ---------------------------------------------------------------------------

/// Quotes a line of output for a failure report.
fn quote(text: &str) -> String {
    format!("{text:?}")
}

/// Collects problems, summarising once a kind has been listed often enough.
#[derive(Default)]
struct Problems {
    list: Vec<String>,
    stdout_count: usize,
    stderr_count: usize,
}

impl Problems {
    fn add(&mut self, problem: String) {
        self.list.push(problem);
    }

    fn stdout(&mut self, problem: String) {
        self.stdout_count += 1;
        if self.stdout_count <= MAX_LISTED_PROBLEMS {
            self.list.push(problem);
        }
    }

    fn stderr(&mut self, problem: String) {
        self.stderr_count += 1;
        if self.stderr_count <= MAX_LISTED_PROBLEMS {
            self.list.push(problem);
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.stdout_count > MAX_LISTED_PROBLEMS {
            let more = self.stdout_count - MAX_LISTED_PROBLEMS;
            self.list
                .push(format!("... and {more} more stdout problems"));
        }
        if self.stderr_count > MAX_LISTED_PROBLEMS {
            let more = self.stderr_count - MAX_LISTED_PROBLEMS;
            self.list
                .push(format!("... and {more} more stderr problems"));
        }
        self.list
    }
}

/// Everything in `run` that does not match `expected`.
fn check_program(expected: &Expectations, run: &Run) -> Vec<String> {
    if run.timed_out.is_some() {
        // Its output is incomplete, so comparing it would only add noise.
        return vec![format!(
            "expected exit code {}, got {}",
            expected.exit_code(),
            run.status()
        )];
    }
    let mut problems = Problems::default();
    let stderr = output_lines(&run.stderr);

    match &expected.runtime_error {
        Some((message, line)) => check_runtime_error(message, *line, &stderr, &mut problems),
        None => check_compile_errors(&expected.compile_errors, &stderr, &mut problems),
    }

    let exit_code = expected.exit_code();
    if run.code != Some(exit_code) {
        problems.add(format!(
            "expected exit code {exit_code}, got {}",
            run.status()
        ));
    }

    let stdout = output_lines(&run.stdout);
    for (index, actual) in stdout.iter().enumerate() {
        match expected.output.get(index) {
            None => problems.stdout(format!(
                "stdout line {}: got {} but no more output was expected",
                index + 1,
                quote(actual)
            )),
            Some((text, source_line)) if text != actual => problems.stdout(format!(
                "stdout line {}: expected {} (source line {source_line}), got {}",
                index + 1,
                quote(text),
                quote(actual)
            )),
            Some(_) => {}
        }
    }
    for (index, (text, source_line)) in expected.output.iter().enumerate().skip(stdout.len()) {
        problems.stdout(format!(
            "stdout line {}: missing {} (source line {source_line})",
            index + 1,
            quote(text)
        ));
    }
    problems.finish()
}

fn check_runtime_error(message: &str, line: usize, stderr: &[&str], problems: &mut Problems) {
    let Some((first, trace)) = stderr.split_first() else {
        problems.add(format!(
            "expected runtime error {} on line {line}, but stderr is empty",
            quote(message)
        ));
        return;
    };
    if *first != message {
        problems.add(format!(
            "stderr line 1: expected runtime error {}, got {}",
            quote(message),
            quote(first)
        ));
    }
    // As in the official runner, the first `[line N]` after the message is the
    // innermost frame and must be on the annotated line.
    match trace.iter().find_map(|text| first_line_reference(text)) {
        None => problems.add("expected a stack trace after the error message".to_string()),
        Some(actual) if actual != line => problems.add(format!(
            "runtime error occurred on line {actual}, expected line {line}"
        )),
        Some(_) => {}
    }
    // Stricter than the official runner: the whole trace must be well formed.
    for (index, text) in trace.iter().enumerate() {
        if trace_line(text).is_none() {
            problems.stderr(format!(
                "stderr line {}: {} is not a stack trace line \
                 (`[line N] in name()` or `[line N] in script`)",
                index + 2,
                quote(text)
            ));
        }
    }
    let last_frame = trace.last().and_then(|text| trace_line(text));
    if last_frame.is_some_and(|(_, script)| !script) {
        problems.add("the stack trace does not end with the script frame".to_string());
    }
}

fn check_compile_errors(expected: &BTreeSet<String>, stderr: &[&str], problems: &mut Problems) {
    let mut found = BTreeSet::new();
    for text in stderr {
        match reported_compile_error(text) {
            Some(error) if expected.contains(&error) => {
                found.insert(error);
            }
            Some(_) => problems.stderr(format!("unexpected compile error {}", quote(text))),
            None if text.is_empty() => {}
            None => problems.stderr(format!("unexpected stderr line {}", quote(text))),
        }
    }
    for missing in expected.difference(&found) {
        problems.add(format!(
            "missing compile error {}",
            quote(&display_error(missing))
        ));
    }
}

/// Describes the first difference between the outputs of two runs.
fn first_difference(what: &str, normal: &str, stress: &str) -> Option<String> {
    if normal == stress {
        return None;
    }
    let normal_lines = output_lines(normal);
    let stress_lines = output_lines(stress);
    if normal_lines == stress_lines {
        return Some(format!(
            "{what} differs between the normal and --gc-stress runs in its final newline"
        ));
    }
    let index = normal_lines
        .iter()
        .zip(&stress_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let show = |lines: &[&str]| {
        lines
            .get(index)
            .map_or("<end of output>".to_string(), |l| quote(l))
    };
    Some(format!(
        "{what} differs between the normal and --gc-stress runs at line {}: \
         normal {}, --gc-stress {}",
        index + 1,
        show(&normal_lines),
        show(&stress_lines)
    ))
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// One failed test file or benchmark.
struct Failure {
    name: String,
    problems: Vec<String>,
    /// Runs whose stderr is quoted in the report.
    runs: Vec<(String, Run)>,
}

fn write_failure(report: &mut String, failure: &Failure) {
    let _ = writeln!(report, "\nFAIL {}", failure.name);
    for problem in &failure.problems {
        let _ = writeln!(report, "    {problem}");
    }
    let mut previous_stderr: Option<&str> = None;
    for (label, run) in &failure.runs {
        let _ = writeln!(
            report,
            "    {label}: `{}` ended with {} after {:.2}s",
            run.command,
            run.status(),
            run.elapsed.as_secs_f64()
        );
        let lines = output_lines(&run.stderr);
        if lines.is_empty() {
            continue;
        }
        if previous_stderr.replace(&run.stderr) == Some(&run.stderr) {
            let _ = writeln!(report, "    {label} stderr: the same as above");
            continue;
        }
        let _ = writeln!(report, "    {label} stderr:");
        for line in lines.iter().take(QUOTED_STDERR_LINES) {
            let _ = writeln!(report, "      | {line}");
        }
        if lines.len() > QUOTED_STDERR_LINES {
            let more = lines.len() - QUOTED_STDERR_LINES;
            let _ = writeln!(report, "      | ... ({more} more lines)");
        }
    }
}

fn fail_with_report(summary: String, failures: &[Failure]) -> ! {
    let mut report = summary;
    let mut not_run = Vec::new();
    for failure in failures {
        if failure.problems == [NOT_RUN] {
            not_run.push(failure.name.as_str());
        } else {
            write_failure(&mut report, failure);
        }
    }
    if !not_run.is_empty() {
        let _ = writeln!(
            report,
            "
NOT RUN ({} items, because {MAX_TIMEOUTS} runs hit their time limit): {}",
            not_run.len(),
            not_run.join(", ")
        );
    }
    panic!("{report}");
}

// ---------------------------------------------------------------------------
// Test programs
// ---------------------------------------------------------------------------

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// All `.lox` files under `dir`, sorted, skipping the directories that are
/// not meant for clox.
fn lox_files(dir: &Path) -> Vec<PathBuf> {
    const SKIPPED_DIRS: [&str; 3] = ["benchmark", "scanning", "expressions"];
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", current.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", current.display()))
                .path();
            if path.is_dir() {
                let name = path.file_name().and_then(|name| name.to_str());
                if !name.is_some_and(|name| SKIPPED_DIRS.contains(&name)) {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "lox") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative_name(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The problem recorded for work skipped because too many runs timed out.
const NOT_RUN: &str = "not run: too many earlier runs hit their time limit";

/// A failure for work skipped because too many runs timed out.
fn too_many_timeouts() -> Option<String> {
    (TIMEOUTS.load(Ordering::Relaxed) >= MAX_TIMEOUTS).then(|| NOT_RUN.to_string())
}

/// Runs one test file normally and under `--gc-stress`.
fn run_test_file(path: &Path, root: &Path) -> Option<Failure> {
    let name = relative_name(path, root);
    if let Some(problem) = too_many_timeouts() {
        return Some(Failure {
            name,
            problems: vec![problem],
            runs: Vec::new(),
        });
    }
    let source = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => {
            return Some(Failure {
                name,
                problems: vec![format!("cannot read the file: {error}")],
                runs: Vec::new(),
            });
        }
    };
    let expected = match parse_expectations(&source) {
        Ok(Some(expected)) => expected,
        Ok(None) => return None,
        Err(problem) => {
            return Some(Failure {
                name,
                problems: vec![format!("invalid test: {problem}")],
                runs: Vec::new(),
            });
        }
    };

    let script = path.to_str().expect("test paths are UTF-8");
    let normal = run_lox(&[script], PROGRAM_TIMEOUT);
    let stress = run_lox(&["--gc-stress", script], PROGRAM_TIMEOUT);
    let normal_problems = check_program(&expected, &normal);
    let stress_problems = check_program(&expected, &stress);

    let mut problems = Vec::new();
    if normal_problems == stress_problems {
        problems.extend(normal_problems);
    } else {
        problems.extend(normal_problems.into_iter().map(|p| format!("[normal] {p}")));
        problems.extend(
            stress_problems
                .into_iter()
                .map(|p| format!("[--gc-stress] {p}")),
        );
    }
    // Even where the annotations do not look (for example the outer frames of
    // a stack trace), collecting at every allocation must not change anything.
    if problems.is_empty() {
        problems.extend(first_difference("stdout", &normal.stdout, &stress.stdout));
        problems.extend(first_difference("stderr", &normal.stderr, &stress.stderr));
        if normal.code != stress.code {
            problems.push(format!(
                "exit code differs: normal {}, --gc-stress {}",
                normal.status(),
                stress.status()
            ));
        }
    }
    (!problems.is_empty()).then(|| Failure {
        name,
        problems,
        runs: vec![
            ("normal".to_string(), normal),
            ("--gc-stress".to_string(), stress),
        ],
    })
}

/// Runs every test program, normally and under `--gc-stress`, and reports all
/// failing files at once.
#[test]
fn programs() {
    let root = match std::env::var_os("LOX_TEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest_path("lox/tests"),
    };
    let filter = std::env::var("LOX_TEST_FILTER").unwrap_or_default();
    let files: Vec<PathBuf> = lox_files(&root)
        .into_iter()
        .filter(|path| relative_name(path, &root).contains(&filter))
        .collect();
    assert!(
        !files.is_empty(),
        "no .lox test files found under {} (filter {filter:?})",
        root.display()
    );

    let started = Instant::now();
    let failures: Vec<Failure> = parallel_map(&files, |path| run_test_file(path, &root))
        .into_iter()
        .flatten()
        .collect();
    println!(
        "ran {} Lox test files twice (normal and --gc-stress) in {:.1}s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        fail_with_report(
            format!(
                "{} of {} Lox test files under {} failed \
                 (each file runs normally and with --gc-stress):",
                failures.len(),
                files.len(),
                root.display()
            ),
            &failures,
        );
    }
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

/// The placeholder in `.expected` files for the elapsed time a benchmark
/// prints as its last line.
const ELAPSED: &str = "<elapsed>";

/// Compares a benchmark's stdout with its `.expected` file, where
/// [`ELAPSED`] matches any finite number.
fn check_bench_output(expected: &str, actual: &str) -> Vec<String> {
    let mut problems = Problems::default();
    let expected = output_lines(expected);
    let actual = output_lines(actual);
    for (index, line) in actual.iter().enumerate() {
        match expected.get(index) {
            None => problems.stdout(format!(
                "stdout line {}: got {} but no more output was expected",
                index + 1,
                quote(line)
            )),
            Some(&ELAPSED) => {
                if !line.parse::<f64>().is_ok_and(f64::is_finite) {
                    problems.stdout(format!(
                        "stdout line {}: expected the elapsed time (a number), got {}",
                        index + 1,
                        quote(line)
                    ));
                }
            }
            Some(text) if text != line => problems.stdout(format!(
                "stdout line {}: expected {}, got {}",
                index + 1,
                quote(text),
                quote(line)
            )),
            Some(_) => {}
        }
    }
    for (index, text) in expected.iter().enumerate().skip(actual.len()) {
        problems.stdout(format!(
            "stdout line {}: missing {}",
            index + 1,
            quote(text)
        ));
    }
    problems.finish()
}

/// Runs the benchmark `script` with `flags` and checks it against
/// `<name>.expected`.
fn run_bench(script: &Path, flags: &[&str]) -> Result<Run, Failure> {
    let name = script
        .file_name()
        .expect("benchmarks are files")
        .to_string_lossy()
        .into_owned();
    let label = match flags {
        [] => name.clone(),
        _ => format!("{name} ({})", flags.join(" ")),
    };
    let expected_path = script.with_extension("expected");
    let expected = match fs::read_to_string(&expected_path) {
        Ok(text) => text,
        Err(error) => {
            return Err(Failure {
                name: label,
                problems: vec![format!("cannot read {}: {error}", expected_path.display())],
                runs: Vec::new(),
            });
        }
    };
    if let Some(problem) = too_many_timeouts() {
        return Err(Failure {
            name: label,
            problems: vec![problem],
            runs: Vec::new(),
        });
    }
    let mut args = flags.to_vec();
    args.push(script.to_str().expect("benchmark paths are UTF-8"));
    let run = run_lox(&args, BENCH_TIMEOUT);

    let mut problems = Vec::new();
    if run.code != Some(0) || run.timed_out.is_some() {
        problems.push(format!("expected exit code 0, got {}", run.status()));
    }
    if run.timed_out.is_none() {
        if !run.stderr.is_empty() {
            problems.push("expected no output on stderr".to_string());
        }
        problems.extend(check_bench_output(&expected, &run.stdout));
    }
    if problems.is_empty() {
        Ok(run)
    } else {
        Err(Failure {
            name: label,
            problems,
            runs: vec![("run".to_string(), run)],
        })
    }
}

fn run_benches(scripts: &[PathBuf], flags: &[&str]) {
    assert!(!scripts.is_empty(), "no benchmarks to run");
    let results = parallel_map(scripts, |script| run_bench(script, flags));
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(run) => println!(
                "{:<60} {:>7.2}s (the script measured {})",
                run.command,
                run.elapsed.as_secs_f64(),
                output_lines(&run.stdout).last().unwrap_or(&"nothing")
            ),
            Err(failure) => failures.push(failure),
        }
    }
    if !failures.is_empty() {
        fail_with_report(
            format!(
                "{} of {} Lox benchmarks failed:",
                failures.len(),
                scripts.len()
            ),
            &failures,
        );
    }
}

fn bench_scripts() -> Vec<PathBuf> {
    lox_files(&manifest_path("lox/bench"))
}

/// Runs every benchmark once and checks its output.
#[test]
fn benchmarks() {
    run_benches(&bench_scripts(), &[]);
}

/// Runs the benchmarks that stay cheap when collecting at every allocation.
#[test]
fn benchmarks_gc_stress() {
    let scripts: Vec<PathBuf> = bench_scripts()
        .into_iter()
        .filter(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .is_some_and(|stem| STRESS_BENCHES.contains(&stem))
        })
        .collect();
    assert_eq!(
        scripts.len(),
        STRESS_BENCHES.len(),
        "missing one of the benchmarks {STRESS_BENCHES:?}"
    );
    run_benches(&scripts, &["--gc-stress"]);
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// A script in the temporary directory, deleted when dropped.
struct TempScript {
    path: PathBuf,
}

impl TempScript {
    fn new(name: &str, source: &str) -> TempScript {
        let path =
            std::env::temp_dir().join(format!("spanheap-lox-{}-{name}.lox", std::process::id()));
        fs::write(&path, source)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        TempScript { path }
    }

    fn path(&self) -> &str {
        self.path
            .to_str()
            .expect("the temporary directory is UTF-8")
    }
}

impl Drop for TempScript {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Runs `lox` with `args` and a short time limit.
fn lox(args: &[&str]) -> Run {
    run_lox(args, PROGRAM_TIMEOUT)
}

/// Asserts the exit code, stdout and stderr of a run, showing all three.
fn assert_run(run: &Run, code: i32, stdout: &str, stderr: &str) {
    assert!(
        run.code == Some(code)
            && run.timed_out.is_none()
            && run.stdout == stdout
            && run.stderr == stderr,
        "`{}`\n  expected exit code {code}, got {}\n  \
         expected stdout {stdout:?}\n       got stdout {:?}\n  \
         expected stderr {stderr:?}\n       got stderr {:?}",
        run.command,
        run.status(),
        run.stdout,
        run.stderr
    );
}

#[test]
fn runtime_error_prints_full_stack_trace() {
    let methods = TempScript::new(
        "trace-methods",
        "class Engine {
  start(fuel) {
    return this.ignite(fuel);
  }
  ignite(fuel) {
    return fuel * 2;
  }
}
fun run(fuel) {
  var engine = Engine();
  return engine.start(fuel);
}
print \"before\";
run(\"diesel\");
print \"after\";
",
    );
    let expected = "Operands must be numbers.
[line 6] in ignite()
[line 3] in start()
[line 11] in run()
[line 14] in script
";
    assert_run(&lox(&[methods.path()]), 70, "before\n", expected);
    assert_run(
        &lox(&["--gc-stress", methods.path()]),
        70,
        "before\n",
        expected,
    );

    let initializer = TempScript::new(
        "trace-init",
        "class Point {
  init(x, y) {
    this.sum = x + y;
  }
}
fun make() {
  return Point(1, nil);
}
make();
",
    );
    let expected = "Operands must be two numbers or two strings.
[line 3] in init()
[line 7] in make()
[line 9] in script
";
    assert_run(&lox(&[initializer.path()]), 70, "", expected);
}

#[test]
fn every_compile_error_is_reported() {
    let script = TempScript::new(
        "compile-errors",
        "var first = 1;
var = 2;
print first +;
var fine = \"ok\";
fun (x) { return x; }
print fine
print fine;
class Foo < Foo {}
return first;
",
    );
    let expected = "[line 2] Error at '=': Expect variable name.
[line 3] Error at ';': Expect expression.
[line 5] Error at '(': Expect function name.
[line 7] Error at 'print': Expect ';' after value.
[line 8] Error at 'Foo': A class can't inherit from itself.
[line 9] Error at 'return': Can't return from top-level code.
";
    assert_run(&lox(&[script.path()]), 65, "", expected);
}

/// A program that allocates far more garbage than any sensible first
/// collection threshold, so a collection certainly happens.
const GARBAGE_PROGRAM: &str = "class Pair {
  init(a, b) {
    this.a = a;
    this.b = b;
  }
}
var kept = Pair(0, nil);
for (var i = 1; i <= 300000; i = i + 1) {
  var garbage = Pair(i, kept);
  if (i == 300000) kept = garbage;
}
print kept.a;
print kept.b.a;
";

const GARBAGE_OUTPUT: &str = "300000\n0\n";

/// Runs the garbage program with `flags`: exit 0, the same stdout as
/// without them, and stderr containing `expected` (what the flags print).
fn assert_reports_on_stderr(name: &str, flags: &[&str], expected: &[&str]) {
    let script = TempScript::new(name, GARBAGE_PROGRAM);
    let mut args = flags.to_vec();
    args.push(script.path());
    let run = lox(&args);
    assert_eq!(
        run.code,
        Some(0),
        "`{}` failed: {}",
        run.command,
        run.stderr
    );
    assert_eq!(
        run.stdout, GARBAGE_OUTPUT,
        "`{}` changed stdout",
        run.command
    );
    for e in expected {
        assert!(
            run.stderr.contains(e),
            "`{}` did not print {e:?} on stderr:\n{}",
            run.command,
            run.stderr
        );
    }
}

#[test]
fn stats_flag_reports_on_stderr() {
    let script = TempScript::new("stats", GARBAGE_PROGRAM);
    assert_run(&lox(&[script.path()]), 0, GARBAGE_OUTPUT, "");
    // The statistics, then the census of what is reachable at exit.
    assert_reports_on_stderr(
        "stats",
        &["--stats"],
        &["== spanheap stats ==", "gc cycles", "total"],
    );
}

#[test]
fn gctrace_flag_reports_on_stderr() {
    // 300,000 garbage instances trigger collections; stress mode one per
    // allocating instruction. Each prints a Go-style `gc N @...` line.
    assert_reports_on_stderr("gctrace", &["--gctrace"], &["gc 1 @"]);
    assert_reports_on_stderr(
        "gctrace-stress",
        &["--gctrace", "--gc-stress", "--stats"],
        &["gc 1 @", "== spanheap stats =="],
    );
}

#[test]
fn missing_script_exits_74() {
    let path = std::env::temp_dir().join(format!(
        "spanheap-lox-{}-does-not-exist.lox",
        std::process::id()
    ));
    let path = path.to_str().expect("the temporary directory is UTF-8");
    assert_run(
        &lox(&[path]),
        74,
        "",
        &format!("Could not open file \"{path}\".\n"),
    );
}

#[test]
fn usage_error_exits_64() {
    let a = TempScript::new("usage-a", "print 1;\n");
    let b = TempScript::new("usage-b", "print 2;\n");
    let run = lox(&[a.path(), b.path()]);
    assert!(
        run.code == Some(64) && run.stdout.is_empty() && run.stderr.starts_with("Usage: "),
        "`{}`: expected exit code 64, no stdout and a usage message on stderr; \
         got {}, stdout {:?}, stderr {:?}",
        run.command,
        run.status(),
        run.stdout,
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// The runner's own parsing
// ---------------------------------------------------------------------------

#[test]
fn annotations_are_parsed_like_the_official_runner() {
    let source = "print 1; // expect: 1
print \"\"; // expect:
print 2; //expect: not an annotation
var = 1; // Error at '=': Expect variable name.
// [line 9] Error at end: Expect '}' after block.
// [c line 10] Error at end: Expect ';'.
// [java line 11] Error: ignored for clox.
";
    let expected = parse_expectations(source).unwrap().unwrap();
    assert_eq!(
        expected.output,
        vec![("1".to_string(), 1), (String::new(), 2)]
    );
    let errors: Vec<&str> = expected.compile_errors.iter().map(String::as_str).collect();
    assert_eq!(
        errors,
        [
            "[10] Error at end: Expect ';'.",
            "[4] Error at '=': Expect variable name.",
            "[9] Error at end: Expect '}' after block.",
        ]
    );
    assert_eq!(expected.exit_code(), 65);

    let runtime = parse_expectations("x;\nnil(); // expect runtime error: Boom.\n")
        .unwrap()
        .unwrap();
    assert_eq!(runtime.runtime_error, Some(("Boom.".to_string(), 2)));
    assert_eq!(runtime.exit_code(), 70);

    assert_eq!(parse_expectations("// nontest\nprint 1;"), Ok(None));
    assert!(parse_expectations("a; // Error: x\nb; // expect runtime error: y\n").is_err());

    assert_eq!(
        reported_compile_error("[line 12] Error at 'x': Message."),
        Some("[12] Error at 'x': Message.".to_string())
    );
    assert_eq!(
        reported_compile_error("[line 3] Error: Unterminated string."),
        Some("[3] Error: Unterminated string.".to_string())
    );
    assert_eq!(reported_compile_error("Undefined variable 'x'."), None);
    assert_eq!(reported_compile_error("[line 3] in script"), None);
    assert_eq!(
        display_error("[12] Error at 'x': M."),
        "[line 12] Error at 'x': M."
    );

    assert_eq!(trace_line("[line 4] in script"), Some((4, true)));
    assert_eq!(trace_line("[line 17] in method()"), Some((17, false)));
    assert_eq!(trace_line("[line 17] in ()"), None);
    assert_eq!(trace_line("line 17 in f()"), None);
    assert_eq!(first_line_reference("at [line 8] in f()"), Some(8));

    assert!(check_bench_output("a\n<elapsed>\n", "a\n0.25\n").is_empty());
    assert!(check_bench_output("a\n<elapsed>\n", "a\n1.5e-05\n").is_empty());
    assert_eq!(check_bench_output("a\n<elapsed>\n", "a\nslow\n").len(), 1);
    assert_eq!(check_bench_output("a\n<elapsed>\n", "b\n").len(), 2);
}

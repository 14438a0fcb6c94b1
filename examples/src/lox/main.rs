//! `lox`: an interpreter for Lox, the language of *Crafting Interpreters*,
//! with the semantics, output and errors of the book's bytecode VM (clox),
//! whose every runtime object lives on spanheap's garbage-collected heap.
//!
//! ```text
//! lox [--gc-stress] [--gctrace] [--stats] script.lox
//! ```
//!
//! - `--gc-stress`: a collection after every allocating instruction, with
//!   checkmark verification (slow; the output must not change);
//! - `--gctrace`: one line per collection on stderr (Go's `gctrace=1`);
//! - `--stats`: the collector's and the heap's statistics on stderr at exit,
//!   and a census of what is still reachable, by type.
//!
//! Exit codes are clox's: 0, 64 (usage), 65 (compile error), 70 (runtime
//! error), 74 (cannot read the script).
//!
//! Modules: `scanner` and `compiler` turn source into `chunk`'s bytecode
//! (heap-free); `object` defines the values and heap objects; `vm` loads
//! the bytecode onto the heap and runs it (see its docs for how the VM
//! state is rooted and where safepoints are).

mod chunk;
mod compiler;
mod object;
mod scanner;
mod vm;

use spanheap::Heap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str = "Usage: lox [--gc-stress] [--gctrace] [--stats] [path]";

struct Options {
    stress: bool,
    gctrace: bool,
    stats: bool,
    path: String,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        stress: false,
        gctrace: false,
        stats: false,
        path: String::new(),
    };
    let mut path = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--gc-stress" => o.stress = true,
            "--gctrace" => o.gctrace = true,
            "--stats" => o.stats = true,
            s if s.starts_with("--") => return Err(format!("Unknown option '{s}'.\n{USAGE}")),
            _ if path.is_some() => return Err(USAGE.to_string()),
            _ => path = Some(a),
        }
    }
    o.path = path.ok_or_else(|| USAGE.to_string())?;
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(64);
        }
    };
    let source = match std::fs::read_to_string(&o.path) {
        Ok(s) => s,
        Err(_) => {
            eprintln!("Could not open file \"{}\".", o.path);
            return ExitCode::from(74);
        }
    };
    let script = match compiler::compile(&source) {
        Ok(f) => f,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(65);
        }
    };
    let mut builder = Heap::builder().trace(o.gctrace);
    if o.stress {
        builder = builder.stress(Some(1)).checkmark(true);
    }
    let heap = match builder.build() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("Could not create the heap: {e}");
            return ExitCode::from(70);
        }
    };
    let mut vm = vm::Vm::new(&heap, o.stress);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 << 10, stdout.lock());
    let outcome = vm.interpret(&script, &mut out);
    let _ = out.flush();
    drop(out);
    let code = match outcome {
        vm::Outcome::Ok => ExitCode::SUCCESS,
        vm::Outcome::RuntimeError(e) => {
            eprintln!("{}", e.message);
            for line in &e.trace {
                eprintln!("{line}");
            }
            ExitCode::from(70)
        }
    };
    if o.stats {
        print_stats(&heap, vm.interned());
    }
    code
}

/// The `--stats` report (stderr).
fn print_stats(heap: &Heap, interned: usize) {
    let s = heap.stats();
    let m = &s.mem;
    eprintln!("== spanheap stats ==");
    eprintln!(
        "gc cycles {} (forced {}), pause total {:?}, max {:?}, mark total {:?}",
        s.num_gc, s.num_forced_gc, s.pause_total, s.pause_max, s.mark_total
    );
    eprintln!(
        "assist {:?}, assist wait {:?}, last marked {} objects / {} bytes, goal {} bytes",
        s.assist_total, s.assist_wait_total, s.last_marked_objects, s.heap_marked, s.heap_goal
    );
    eprintln!(
        "heap: alloc {} B, inuse {} B, sys {} B, released {} B; objects allocated {}, freed {}",
        m.heap_alloc, m.heap_inuse, m.heap_sys, m.heap_released, m.mallocs, m.frees
    );
    eprintln!(
        "roots {}, weak refs {}, interned strings {interned}",
        s.roots, s.weak_refs
    );
    // What is still reachable at exit (the VM state, globals and what they
    // hold), by type.
    eprintln!("{}", heap.census());
}

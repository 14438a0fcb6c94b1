//! `harness <workload> <peer> [--quick] [--threads N]`: runs one workload
//! on one peer (spanheap, box, rc, bumpalo, gc-arena, dumpster, rust-gc)
//! on the system allocator. Result lines on stdout, `metric` lines on
//! stderr; exit 0, 2 (bad arguments) or 3 (unsupported). See `README.md`.

use spanheap_harness::cli::{self, Binary};
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main(Binary::Harness)
}

//! `harness-mimalloc <workload> mimalloc [--quick] [--threads N]`: the
//! `box` peer's code with mimalloc as the global allocator (the peer named
//! `mimalloc`). Same output contract as `harness` (see `README.md`).

use mimalloc::MiMalloc;
use spanheap_harness::cli::{self, Binary};
use std::process::ExitCode;

/// Every allocation of this process goes to mimalloc.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    cli::main(Binary::HarnessMimalloc)
}

// `#[trace(skip)]` on an enum variant would be silently ignored (its
// fields traced anyway); the derive rejects it instead.
use spanheap::Trace;

#[derive(Trace)]
enum E {
    #[trace(skip)]
    A(u32),
    B,
}

fn main() {}

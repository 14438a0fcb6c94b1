// Property: `#[derive(Trace)]` rejects a type that implements `Drop` (its
// drop could dereference a `Gc` whose object was already freed by the
// same sweep).
use spanheap::Trace;

#[derive(Trace)]
struct S {
    x: u32,
}

impl Drop for S {
    fn drop(&mut self) {
        println!("{}", self.x);
    }
}

fn main() {}

//! Object layout: the per-type descriptor, the header of scan objects, and
//! the free hook that runs `Drop` for dead objects.
//!
//! Go keeps a pointer bitmap per span (`heapBits`, `mbitmap.go`) or a type
//! pointer in the object (the "malloc header" of Go 1.22 for objects larger
//! than 512 bytes, `mallocgc` → `heapSetType`). spanheap objects are Rust
//! values, so the layout information a marker needs is a *trace function*,
//! and a sweeper also needs the *drop function*. Both live in a static
//! [`TypeInfo`], and a scan object starts with an 8-byte header pointing
//! to it — Go's malloc header, for every scan object:
//!
//! ```text
//!   scan object:    [ &'static TypeInfo | padding to align | value ]
//!                   ^ base (what find_object returns)        ^ the Gc pointer
//!   noscan object:  [ value ]   (no header; also packed into tiny blocks)
//! ```
//!
//! Invariants:
//! - an object gets a header exactly when its type has GC pointers or drop
//!   glue; such objects are allocated in **scan** spans, all others in
//!   **noscan** spans (which the marker never looks into and the sweeper
//!   never calls the free hook for);
//! - the header and the value are written before the object's address is
//!   handed to anyone (so the marker never reads uninitialised memory);
//! - the value of a scan object sits at `base + info.value_offset`,
//!   `value_offset = max(HEADER_SIZE, align)`.

use crate::tracer::Tracer;
use spanheap_heap::AllocRequest;

/// Size of the header of a scan object.
pub const HEADER_SIZE: usize = 8;

/// What the collector knows about a type: how to trace it and how to drop
/// it. One `&'static TypeInfo` per type, created by the typed layer.
#[derive(Debug)]
pub struct TypeInfo {
    /// Type name, for diagnostics and census output
    /// (`std::any::type_name`, which is not a `const fn`).
    pub name: fn() -> &'static str,
    /// Offset of the value from the object base.
    pub value_offset: usize,
    /// Reports every GC pointer in the value at the given address.
    ///
    /// Callers guarantee the address holds a live, initialised value of
    /// the type this info describes.
    pub trace: unsafe fn(*const u8, &mut Tracer<'_>),
    /// Drops the value in place, if the type has drop glue.
    ///
    /// Callers guarantee the address holds a live, initialised value that
    /// is never used again.
    pub drop: Option<unsafe fn(*mut u8)>,
}

impl TypeInfo {
    /// The allocation request for an object of `size` bytes and alignment
    /// `align` with a header, and the offset of its value.
    pub const fn scan_request(size: usize, align: usize) -> (AllocRequest, usize) {
        let off = if align > HEADER_SIZE {
            align
        } else {
            HEADER_SIZE
        };
        let a = if align > 8 { align } else { 8 };
        (
            AllocRequest {
                size: off + size,
                align: a,
                noscan: false,
                free_hook: true,
            },
            off,
        )
    }
}

/// The type descriptor of the scan object at `base`.
///
/// # Safety
/// 1. `base` is the base of an allocated, initialised scan object.
#[inline(always)]
pub unsafe fn header_of(base: usize) -> &'static TypeInfo {
    // SAFETY: obligation 1: every scan object starts with its header, which
    // was written (a valid &'static TypeInfo) before the object was
    // published.
    unsafe { *(base as *const &'static TypeInfo) }
}

/// The heap's free hook: runs the drop glue of a dead scan object (the
/// heap calls it only in spans where some object was allocated with
/// `free_hook`, i.e. had drop glue; others may still reach here and are
/// recognised by `info.drop == None`). A
/// panicking `Drop` is caught (the sweep that called us must finish) and
/// reported by returning false; the memory is reclaimed anyway.
pub(crate) fn drop_dead_object(base: usize) -> bool {
    // SAFETY: the heap calls its free hook only for allocated, unmarked
    // objects of scan spans, each once, before the slot is reused; every
    // scan object has a header (module invariants).
    let info = unsafe { header_of(base) };
    let Some(d) = info.drop else { return true };
    let value = (base + info.value_offset) as *mut u8;
    IN_DROP.with(|f| f.set(f.get() + 1));
    // SAFETY: the value is initialised (it was written before the object
    // was published) and dead: nothing can reach it again, so dropping it
    // in place is its one and only drop.
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { d(value) })).is_ok();
    IN_DROP.with(|f| f.set(f.get() - 1));
    ok
}

crate::sync::thread_local! {
    /// Depth of collector-run `Drop` calls on this thread.
    static IN_DROP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether this thread is running the `Drop` of a collected object (which
/// must not enter a scope: it could wait for a cycle that waits for it).
pub(crate) fn in_drop() -> bool {
    IN_DROP.with(|f| f.get() != 0)
}

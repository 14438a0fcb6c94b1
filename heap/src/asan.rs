//! AddressSanitizer annotations of object memory (Go's `asan.go`:
//! `asanpoison` / `asanunpoison`).
//!
//! ASan knows the system allocator's blocks, not ours: to it an arena is
//! one big mapping, every byte addressable, so a read of a slot the sweep
//! freed — the symptom of a collector that lost a reachable object —
//! goes unseen. With the `asan` cargo feature (for ASan builds only:
//! `RUSTFLAGS=-Zsanitizer=address`, which links the runtime these symbols
//! come from) the heap tells ASan which bytes are objects:
//!
//! - a span for a size class is poisoned whole when it is built
//!   ([`crate::mheap::MHeap::alloc_span`]), and each slot is unpoisoned
//!   when the mcache hands it out (a tiny block: all 16 bytes at once);
//! - a large object's span is unpoisoned when it is allocated;
//! - the sweep poisons every slot it frees, after the free hook and the
//!   0xDB poisoning have run;
//! - a span's pages are poisoned again when they go back to the page heap,
//!   and a reservation is unpoisoned before it is unmapped, so the address
//!   range carries no stale shadow into whoever maps it next.
//!
//! Invariant: outside the windows above, a byte of a span is unpoisoned
//! exactly when it lies in a slot that is allocated (in `allocBits`, below
//! `freeindex`, or handed out since). Any access to another byte of a span
//! is a use of freed or never-allocated memory and ASan reports it with
//! both stacks. Granularity is ASan's 8 bytes: every size class is a
//! multiple of 8, so slot boundaries are exact.
//!
//! Without the feature the functions are empty and compile away.

#[cfg(feature = "asan")]
unsafe extern "C" {
    // The ASan runtime's public interface (sanitizer/asan_interface.h).
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Marks `[addr, addr + size)` unaddressable: any access is reported.
#[inline(always)]
pub(crate) fn poison(addr: usize, size: usize) {
    #[cfg(feature = "asan")]
    // SAFETY: the call only writes ASan's shadow memory for the range (it
    // touches no application byte); any range is accepted.
    unsafe {
        __asan_poison_memory_region(addr as *const u8, size)
    };
    #[cfg(not(feature = "asan"))]
    let _ = (addr, size);
}

/// Marks `[addr, addr + size)` addressable again.
#[inline(always)]
pub(crate) fn unpoison(addr: usize, size: usize) {
    #[cfg(feature = "asan")]
    // SAFETY: as for `poison`: shadow memory only.
    unsafe {
        __asan_unpoison_memory_region(addr as *const u8, size)
    };
    #[cfg(not(feature = "asan"))]
    let _ = (addr, size);
}

/// Whether the annotations are compiled in (the sweep then visits every
/// freed slot to poison it).
pub(crate) const ENABLED: bool = cfg!(feature = "asan");

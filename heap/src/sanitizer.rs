//! Tells memory checkers which bytes of the arenas are objects (Go's
//! `asan.go`: `asanpoison` / `asanunpoison`; `msan.go` likewise).
//!
//! AddressSanitizer and valgrind's memcheck know the system allocator's
//! blocks, not ours: to them an arena is one big mapping, every byte
//! addressable, so a read of a slot the sweep freed — the symptom of a
//! collector that lost a reachable object — goes unseen. Two cargo
//! features describe the heap to them:
//!
//! - `asan`, for builds with `RUSTFLAGS=-Zsanitizer=address`, which link
//!   the ASan runtime whose interface functions it calls;
//! - `valgrind`, for binaries run under memcheck: the client requests of
//!   `memcheck.h` (a magic instruction sequence that valgrind intercepts
//!   and that does nothing on a real CPU). x86_64 only; elsewhere the
//!   feature compiles to nothing.
//!
//! Where the heap annotates:
//! - a span for a size class is poisoned whole when it is built
//!   ([`crate::mheap::MHeap::alloc_span`]), and each slot is unpoisoned
//!   when the mcache hands it out (a tiny block: all 16 bytes at once);
//! - a large object's span is unpoisoned when it is allocated;
//! - the sweep poisons every slot it frees, after the free hook and the
//!   0xDB poisoning have run;
//! - a span's pages are poisoned again when they go back to the page heap,
//!   and a reservation is unpoisoned before it is unmapped, so the address
//!   range carries no stale state into whoever maps it next.
//!
//! Invariant: outside the windows above, a byte of a span is unpoisoned
//! exactly when it lies in a slot that is allocated (in `allocBits`, below
//! `freeindex`, or handed out since). Any access to another byte of a span
//! is a use of freed or never-allocated memory, and the checker reports it
//! with the stack of the access. Granularity is ASan's 8 bytes: every size
//! class is a multiple of 8, so slot boundaries are exact.
//!
//! Without the features the functions are empty and compile away.

#[cfg(feature = "asan")]
unsafe extern "C" {
    // The ASan runtime's public interface (sanitizer/asan_interface.h).
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// memcheck's client requests (`memcheck.h`): the tool base is
/// `'M' << 24 | 'C' << 16`, and the requests are numbered from it.
#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
mod memcheck {
    const BASE: usize = ((b'M' as usize) << 24) | ((b'C' as usize) << 16);
    pub(super) const MAKE_MEM_NOACCESS: usize = BASE;
    pub(super) const MAKE_MEM_DEFINED: usize = BASE + 2;

    /// Issues client request `req` with two arguments. Not under valgrind
    /// the sequence is four rotations of `rdi` by 128 bits in all and an
    /// exchange of `rbx` with itself: no register changes, and `rdx`
    /// keeps the default result 0.
    #[inline(always)]
    pub(super) fn request(req: usize, a1: usize, a2: usize) {
        let args: [usize; 6] = [req, a1, a2, 0, 0, 0];
        let mut _result: usize = 0;
        // SAFETY: the preamble leaves every register as it found it (rdi
        // is rotated by 3+13+61+51 = 128 bits; rbx is exchanged with
        // itself); valgrind recognises it and reads the six words at rax,
        // which point into `args`, live for the duration of the asm. The
        // requests used only change memcheck's own shadow state.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") _result,
                options(nostack, preserves_flags),
            );
        }
    }
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
    #[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
    memcheck::request(memcheck::MAKE_MEM_NOACCESS, addr, size);
    let _ = (addr, size);
}

/// Marks `[addr, addr + size)` addressable again. For memcheck also
/// defined: the heap hands out zeroed memory (written, or known zero
/// because fresh from the OS), and the typed layer initialises every
/// object before publishing it.
#[inline(always)]
pub(crate) fn unpoison(addr: usize, size: usize) {
    #[cfg(feature = "asan")]
    // SAFETY: as for `poison`: shadow memory only.
    unsafe {
        __asan_unpoison_memory_region(addr as *const u8, size)
    };
    #[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
    memcheck::request(memcheck::MAKE_MEM_DEFINED, addr, size);
    let _ = (addr, size);
}

/// Whether annotations are compiled in (the sweep then visits every
/// freed slot to poison it).
pub(crate) const ENABLED: bool =
    cfg!(feature = "asan") || cfg!(all(feature = "valgrind", target_arch = "x86_64"));

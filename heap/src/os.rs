//! Address space from the operating system: reserve, commit, release.
//!
//! Go's `mem.go` / `mem_linux.go` define four transitions of a range of
//! address space, and so do we:
//!
//! | state | meaning | how we get there |
//! |---|---|---|
//! | None | not ours | — |
//! | Reserved | ours, inaccessible, costs no memory | [`reserve`] (`mmap PROT_NONE`, `MAP_NORESERVE`) |
//! | Ready | readable and writable; pages become resident when touched | [`commit`] (`mprotect RW`) |
//! | Released | still Ready, but its physical pages were handed back; it reads as zeros and is not resident until touched again | [`release`] (`madvise MADV_DONTNEED`) |
//!
//! [`unreserve`] returns a whole reservation (`munmap`) when a heap is dropped.
//!
//! Invariant relied on by the page allocator's "scavenged means zero" rule:
//! private anonymous memory reads as zero after `mmap` and after
//! `MADV_DONTNEED` (Linux guarantees both; on other Unixes we fall back to
//! re-mapping the range with `MAP_FIXED`, which gives the same guarantee).
//!
//! [`resident_pages`] (`mincore`) lets tests check that released memory has
//! really left the process.

use crate::error::AllocError;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reserves `size` bytes of address space aligned to `align` (a power of two,
/// at least the OS page size), preferably at `hint`. Nothing is committed.
///
/// Returns the base address.
pub(crate) fn reserve(size: usize, align: usize, hint: usize) -> Result<usize, AllocError> {
    debug_assert!(align.is_power_of_two() && size.is_multiple_of(align));
    let oom = |errno| AllocError::OutOfMemory {
        requested: size,
        errno,
    };
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // First try exactly at the hint: if the kernel honours it, arenas stay
    // contiguous and spans may straddle arena boundaries (Go's arena hints).
    if hint != 0 && hint.is_multiple_of(align) {
        // SAFETY: mmap without MAP_FIXED never replaces existing mappings;
        // it either returns a fresh mapping or MAP_FAILED.
        let p = unsafe { libc::mmap(hint as *mut _, size, libc::PROT_NONE, flags, -1, 0) };
        if p != libc::MAP_FAILED {
            if p as usize == hint {
                return Ok(hint);
            }
            // SAFETY: `p..p+size` is the mapping just created and owned by us.
            unsafe { libc::munmap(p, size) };
        }
    }
    // Over-reserve by `align` and trim both ends to get an aligned range.
    let total = size.checked_add(align).ok_or_else(|| oom(libc::ENOMEM))?;
    // SAFETY: as above, a fresh PROT_NONE mapping with no fixed address.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), total, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(oom(errno()));
    }
    let start = p as usize;
    let base = (start + align - 1) & !(align - 1);
    let head = base - start;
    let tail = total - head - size;
    if head > 0 {
        // SAFETY: `start..base` lies inside the mapping we own and is unused.
        unsafe { libc::munmap(start as *mut _, head) };
    }
    if tail > 0 {
        // SAFETY: `base+size..start+total` lies inside our mapping, unused.
        unsafe { libc::munmap((base + size) as *mut _, tail) };
    }
    Ok(base)
}

/// Makes `[addr, addr+size)` of a reservation readable and writable.
///
/// # Safety
/// 1. The range lies inside a reservation made by [`reserve`] and not yet
///    passed to [`unreserve`].
pub(crate) unsafe fn commit(addr: usize, size: usize) -> Result<(), AllocError> {
    // SAFETY: obligation 1 — the range is our own mapping, so changing its
    // protection cannot affect memory owned by anyone else.
    let r = unsafe { libc::mprotect(addr as *mut _, size, libc::PROT_READ | libc::PROT_WRITE) };
    if r != 0 {
        return Err(AllocError::OutOfMemory {
            requested: size,
            errno: errno(),
        });
    }
    Ok(())
}

/// Gives the physical pages of `[addr, addr+size)` back to the OS. The range
/// stays mapped and afterwards reads as zeros.
///
/// # Safety
/// 1. The range is committed memory of a live reservation.
/// 2. Nothing holds references into the range, and nobody reads or writes it
///    concurrently (its contents are discarded).
pub(crate) unsafe fn release(addr: usize, size: usize) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: obligations 1 and 2 — the range is ours and unused, so
        // discarding its contents is invisible to safe code. On Linux a
        // failure (EINVAL/EAGAIN) leaves the memory resident but intact,
        // which is harmless: we simply keep it.
        let r = unsafe { libc::madvise(addr as *mut _, size, libc::MADV_DONTNEED) };
        if r == 0 {
            return;
        }
    }
    // Portable fallback (and Linux failure path): map fresh zero pages over
    // the range. MAP_FIXED replaces exactly our own pages.
    // SAFETY: obligations 1 and 2 as above; MAP_FIXED over a range we own.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    // If even that fails the pages keep their old contents; callers treat
    // released pages as zero, so we must not leave dirty data behind.
    if p == libc::MAP_FAILED {
        // Free pages are poisoned for memory checkers (`sanitizer`): lift
        // that for the write, then restore it.
        crate::sanitizer::unpoison(addr, size);
        // SAFETY: obligation 2 — nobody uses the range; zero it by hand so the
        // "released pages read as zero" invariant still holds.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, size) };
        crate::sanitizer::poison(addr, size);
    }
}

/// Unmaps a whole reservation.
///
/// # Safety
/// 1. `[addr, addr+size)` is exactly a range returned by [`reserve`] (or a
///    union of adjacent ones), and nothing will touch it again.
pub(crate) unsafe fn unreserve(addr: usize, size: usize) {
    // No stale ASan shadow for whoever maps these addresses next.
    crate::sanitizer::unpoison(addr, size);
    // SAFETY: obligation 1.
    unsafe { libc::munmap(addr as *mut _, size) };
}

/// How many of the OS pages in `[addr, addr+size)` are resident (`mincore`).
/// `addr` must be page-aligned. Returns None if the call fails.
pub fn resident_pages(addr: usize, size: usize) -> Option<usize> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let os_page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let n = size.div_ceil(os_page);
    let mut vec = vec![0u8; n];
    // SAFETY: `vec` has one byte per OS page of the range, as mincore needs;
    // mincore only reads the page tables.
    let r = unsafe { libc::mincore(addr as *mut _, size, vec.as_mut_ptr().cast()) };
    if r != 0 {
        return None;
    }
    Some(vec.iter().filter(|b| **b & 1 != 0).count())
}

/// The process's resident set size in bytes, from `/proc/self/statm`
/// (Linux); None elsewhere.
pub fn process_rss() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let os_page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    Some(pages * os_page)
}

//! Fixed-size allocator for the heap's own metadata (spans, and later
//! specials and finalizer records).
//!
//! Mirrors Go's `mfixalloc.go`: objects of one type are carved from 16 KiB
//! chunks that are never returned to the system while the heap lives, and
//! freed objects go on a free list for reuse. Chunks come from the system
//! allocator, outside the GC'd heap, so metadata never moves and never needs
//! scanning.
//!
//! One deliberate difference: Go threads its free list through the freed
//! objects themselves (overwriting their first word). We keep the free list
//! beside the chunks, so a freed object keeps a valid value of its type. An
//! `MSpan` is found through the page map by racing readers (a marker doing an
//! interior-pointer lookup), and keeping the struct intact means such a
//! reader sees atomics with stale-but-valid values, never a torn object.
//! A recycled object is therefore handed back *as is*; the caller
//! re-initialises it field by field.
//!
//! Invariants:
//! - `inuse == (objects handed out) - (objects freed)`, in objects;
//! - every pointer on `free` points into one of `chunks` and is not handed out;
//! - memory is released only when the `FixAlloc` is dropped, and the owner
//!   (the heap) guarantees nobody dereferences an object after that.
//!
//! Not thread-safe: the heap keeps its fixallocs under `mheap.lock`, as Go
//! does.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;

/// Size of the chunks objects are carved from (Go's `_FixAllocChunk`).
pub const FIX_ALLOC_CHUNK: usize = 16 << 10;

/// A free-list allocator of `T`s with stable addresses.
pub struct FixAlloc<T> {
    /// Chunks owned by this allocator, each `chunk_layout()` bytes.
    chunks: Vec<NonNull<T>>,
    /// Objects per chunk.
    per_chunk: usize,
    /// Objects already carved from the newest chunk.
    carved: usize,
    /// Freed objects, available for reuse; each still holds a valid `T`.
    free: Vec<NonNull<T>>,
    /// Objects currently handed out.
    inuse: usize,
}

// SAFETY: FixAlloc owns its chunks outright; the raw pointers are only
// handles to memory it allocated. Sending it to another thread moves that
// ownership, which is sound when T itself may be sent.
unsafe impl<T: Send> Send for FixAlloc<T> {}

impl<T> FixAlloc<T> {
    /// An allocator with no chunks yet.
    pub fn new() -> Self {
        const {
            assert!(
                std::mem::size_of::<T>() > 0,
                "FixAlloc of a zero-sized type"
            )
        };
        let per_chunk = (FIX_ALLOC_CHUNK / std::mem::size_of::<T>().max(1)).max(1);
        FixAlloc {
            chunks: Vec::new(),
            per_chunk,
            carved: per_chunk,
            free: Vec::new(),
            inuse: 0,
        }
    }

    fn chunk_layout(&self) -> Layout {
        // Cannot fail: per_chunk * size_of::<T>() is at most
        // max(FIX_ALLOC_CHUNK, size_of::<T>()), far below isize::MAX.
        Layout::array::<T>(self.per_chunk).unwrap_or_else(|_| Layout::new::<T>())
    }

    /// Returns an object: a recycled one (holding whatever value it had when
    /// freed, for the caller to re-initialise) or a fresh one initialised
    /// with `init()`. Returns None only if the system allocator fails.
    pub fn alloc(&mut self, init: impl FnOnce() -> T) -> Option<NonNull<T>> {
        if let Some(p) = self.free.pop() {
            self.inuse += 1;
            return Some(p);
        }
        if self.carved == self.per_chunk {
            let layout = self.chunk_layout();
            // SAFETY: the layout has non-zero size: per_chunk >= 1 and `new`
            // rejects zero-sized T at compile time.
            let p = unsafe { alloc(layout) }.cast::<T>();
            let p = NonNull::new(p)?;
            self.chunks.push(p);
            self.carved = 0;
        }
        let chunk = *self.chunks.last()?;
        // SAFETY: carved < per_chunk, so the slot lies inside the chunk.
        let slot = unsafe { chunk.add(self.carved) };
        self.carved += 1;
        // SAFETY: `slot` is properly aligned, in-bounds, unused memory.
        unsafe { slot.write(init()) };
        self.inuse += 1;
        Some(slot)
    }

    /// Returns `p` to the free list. Its value stays intact.
    ///
    /// # Safety
    /// 1. `p` was returned by `alloc` on this allocator and not freed since.
    pub unsafe fn free(&mut self, p: NonNull<T>) {
        debug_assert!(self.inuse > 0);
        self.inuse -= 1;
        self.free.push(p);
    }

    /// Objects currently handed out.
    pub fn inuse(&self) -> usize {
        self.inuse
    }

    /// Bytes of objects currently handed out.
    pub fn inuse_bytes(&self) -> usize {
        self.inuse * std::mem::size_of::<T>()
    }

    /// Bytes obtained from the system allocator.
    pub fn sys_bytes(&self) -> usize {
        self.chunks.len() * self.per_chunk * std::mem::size_of::<T>()
    }
}

impl<T> Default for FixAlloc<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for FixAlloc<T> {
    fn drop(&mut self) {
        let layout = self.chunk_layout();
        let n = self.chunks.len();
        for (i, chunk) in self.chunks.drain(..).enumerate() {
            let live = if i + 1 == n {
                self.carved
            } else {
                self.per_chunk
            };
            for j in 0..live {
                // SAFETY: slots below `live` were initialised by `alloc` and
                // are dropped exactly once, here.
                unsafe { std::ptr::drop_in_place(chunk.add(j).as_ptr()) };
            }
            // SAFETY: `chunk` was allocated with this layout in `alloc`.
            unsafe { dealloc(chunk.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_objects_and_keeps_values() {
        let mut fa = FixAlloc::<[u64; 4]>::new();
        let a = fa.alloc(|| [1; 4]).unwrap();
        let b = fa.alloc(|| [2; 4]).unwrap();
        assert_ne!(a, b);
        assert_eq!(fa.inuse(), 2);
        // SAFETY: `a` came from this allocator and is live.
        unsafe { fa.free(a) };
        assert_eq!(fa.inuse(), 1);
        let c = fa.alloc(|| [3; 4]).unwrap();
        assert_eq!(c, a, "freed object is reused first");
        // SAFETY: c is live and initialised; the value survives the free.
        assert_eq!(unsafe { *c.as_ptr() }, [1; 4]);
    }

    #[test]
    fn spans_many_chunks_without_overlap() {
        let mut fa = FixAlloc::<[u8; 200]>::new();
        let mut ptrs = Vec::new();
        for i in 0..1000u32 {
            ptrs.push(fa.alloc(|| [(i % 251) as u8; 200]).unwrap());
        }
        let mut addrs: Vec<usize> = ptrs.iter().map(|p| p.as_ptr() as usize).collect();
        addrs.sort_unstable();
        for w in addrs.windows(2) {
            assert!(w[1] - w[0] >= 200, "objects overlap");
        }
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: every pointer is live and initialised.
            assert_eq!(unsafe { (*p.as_ptr())[199] }, (i % 251) as u8);
        }
        assert!(fa.sys_bytes() >= 1000 * 200);
        assert_eq!(fa.inuse_bytes(), 1000 * 200);
    }

    #[test]
    fn drop_runs_destructors() {
        use std::rc::Rc;
        let rc = Rc::new(());
        {
            let mut fa = FixAlloc::<Rc<()>>::new();
            for _ in 0..5000 {
                fa.alloc(|| rc.clone()).unwrap();
            }
            assert_eq!(Rc::strong_count(&rc), 5001);
        }
        assert_eq!(Rc::strong_count(&rc), 1);
    }
}

//! Page allocator: which pages of the heap are free, and where the first free
//! run of a given length starts.
//!
//! # Role
//!
//! `PageAlloc` is the bookkeeping half of the heap's page layer. It knows
//! nothing about addresses or the OS: it works on a dense *page index space*
//! `0..pages()`, grown one chunk of [`PALLOC_CHUNK_PAGES`] pages at a time.
//! The caller (mheap) maps page indices to addresses, maps memory before
//! calling [`PageAlloc::add_fresh`], and releases memory to the OS between
//! [`PageAlloc::scavenge_take`] and [`PageAlloc::scavenge_return`].
//!
//! It is not synchronised: the caller holds the heap lock around every call,
//! which is why every mutating method simply takes `&mut self`.
//!
//! Every page is in exactly one of three states:
//!
//! | state              | `alloc` bit | `scav` bit |
//! |--------------------|-------------|------------|
//! | allocated / absent | 1           | 0          |
//! | free, dirty        | 0           | 0          |
//! | free, scavenged    | 0           | 1          |
//!
//! "Absent" pages (index space that has no memory behind it yet) are simply
//! allocated pages nobody will ever free, so they can never be handed out.
//! "Scavenged" means the memory is not resident and reads as zero: either
//! it was never touched since the OS mapped it, or the scavenger gave it back.
//!
//! # Invariants
//!
//! Writing `A_c` / `S_c` for the alloc / scavenged bitmaps of chunk `c`,
//! `C` for the number of chunks and `pc(x)` for popcount:
//!
//! * `A_c & S_c == 0` for every chunk (only free pages can be scavenged).
//! * `free_pages == Σ_c pc(!A_c)`.
//! * `scavenged_pages == Σ_c pc(S_c)`.
//! * `dirty[c] == pc(!A_c & !S_c)`, and bit `c` of `dirty_mask` is set iff
//!   `dirty[c] > 0`; every `dirty_mask` word at index `>= dirty_top` is 0.
//! * The summary tree is a complete binary tree over `cap` leaves, `cap` a
//!   power of two `>= max(C, 1)`, stored heap-style (`tree[1]` is the root,
//!   the children of `i` are `2i` and `2i + 1`, leaf `c` is `tree[cap + c]`):
//!   `tree[cap + c] == summarize(A_c)` for `c < C`, `== (0, 0, 0)` for the
//!   padding leaves `C <= c < cap` (padding behaves like absent memory), and
//!   `tree[i] == combine(tree[2i], tree[2i + 1])` for every inner node.
//!
//! A summary `(start, max, end)` of a page range is the length of the free
//! run at its start, of the longest free run inside it, and of the free run
//! at its end. Two adjacent ranges of `h` pages each combine as
//!
//! ```text
//! start = if L.start == h { h + R.start } else { L.start }
//! end   = if R.end   == h { h + L.end   } else { R.end   }
//! max   = max(L.max, R.max, L.end + R.start)
//! ```
//!
//! # Correspondence with Go
//!
//! * `src/runtime/mpagealloc.go`: the chunked bitmap plus summary tree,
//!   `alloc` ≈ `pageAlloc.find` + `allocRange`, `free` ≈ `pageAlloc.free`,
//!   the summary update ≈ `pageAlloc.update`; `grow_to` + `add_fresh` ≈
//!   `pageAlloc.grow` (which also marks new memory as scavenged).
//! * `src/runtime/mpallocbits.go`: the per-chunk bitmap, its summarisation
//!   (`pallocBits.summarize`) and the in-chunk searches (`find1`,
//!   `findSmallN`, `findLargeN`), here `summarize` and `find_in_chunk`.
//! * `src/runtime/mgcscavenge.go`: the parallel scavenged bitmap
//!   (`pallocData.scavenged`) and the top-down search for free, unscavenged
//!   memory (`scavengeOne` / `findScavengeCandidate`), here `scavenge_take`.
//!
//! # Design of the summary tree
//!
//! Go 1.12 and 1.13 kept free spans in a treap (`mgclarge.go`): a randomized
//! binary search tree of free spans keyed by address and augmented with the
//! largest span in each subtree, which gave address-ordered first fit in
//! expected O(log n) for n free spans, but needed a node per free span,
//! pointer chasing, and span splitting/merging on every allocation and free.
//! Go 1.14 replaced it with bitmaps per 4 MiB chunk and a radix tree of
//! summaries above them: 5 levels with fan-out 8, each summary packed into a
//! u64 (`pallocSum`, three 21-bit fields), each level a flat array indexed by
//! address bits so that it can cover the whole 48-bit address space sparsely,
//! with a root level of 2^14 entries scanned linearly.
//!
//! This module keeps Go's bitmaps and summaries but puts a *binary* segment
//! tree over the chunks. The index space is dense and starts at 0 (the caller
//! maps pages to addresses), so Go's address-indexed levels buy nothing here,
//! while a heap-ordered array of `2 * cap` nodes is compact, grows by doubling
//! (rebuilt in O(C), amortised O(1) per chunk) and needs no reservation.
//! The search is the same algorithm with fan-out 2 instead of 8: walk down,
//! carrying the length of the free run that ends just left of the current
//! node; at each node first test the run that begins in the carry, then the
//! left child's interior, then the run crossing the middle, and only then go
//! right. Because candidates are tested strictly in order of their start page
//! this is address-ordered first fit, exactly as in Go's level-by-level scan
//! of 8 entries. Cost: Go reads `log8 C` levels of one 64-byte block each;
//! this tree reads `log2 C` levels of one 24-byte sibling pair each; both are
//! O(log C) plus one bitmap scan of at most 8 words. Summary fields are u32
//! (12-byte nodes), which avoids the 21-bit packing limit of `pallocSum`;
//! the index space is bounded by [`MAX_CHUNKS`] so no node can overflow.
//! Updates recompute the touched leaves and walk their ancestors upwards,
//! stopping early at the first level where nothing changed.
//!
//! # Complexity (C = chunks, k = chunks touched by a run of n pages,
//! i.e. `k <= n / 512 + 2`)
//!
//! * `alloc(n)`: O(log C) descent + O(8) word scan of one chunk + O(k + log C)
//!   update. `alloc(1)` reads one sibling pair per tree level, one chunk's
//!   alloc words, and writes the touched words of both bitmaps.
//! * `free`, `add_fresh`, `scavenge_return`: O(k + log C).
//! * `scavenge_take(m)`: O(w + 8 + m / 64 + k + log C), where `w` is the
//!   number of all-zero words of the per-chunk dirty mask (one bit per chunk,
//!   64 chunks per word) that are skipped. `w` is 0 in the common case: the
//!   cursor `dirty_top` only moves down, except when a page above it is freed.
//!   Worst case `w <= C / 64`, never O(pages).
//! * `grow_to`: O(new chunks), plus O(C) when the tree capacity doubles.
//! * `free_pages`, `scavenged_pages`, `is_free`, `is_scavenged`, `chunks`,
//!   `pages`: O(1).
//! * `verify`: O(C).

use bitvec::BitArr;
use bitvec::array::BitArray;
use bitvec::order::Lsb0;

/// Pages per chunk: the unit in which the index space grows and the size of
/// one leaf bitmap (512 pages of 8 KiB = 4 MiB, as Go's `pallocChunkPages`).
pub const PALLOC_CHUNK_PAGES: usize = 512;

/// Largest number of chunks the index space may hold (2^22 chunks = 2^31
/// pages = 16 TiB of 8 KiB pages). Bounds every summary below `u32::MAX`.
pub const MAX_CHUNKS: usize = 1 << 22;

/// 64-bit words per chunk bitmap.
const WORDS: usize = PALLOC_CHUNK_PAGES / 64;

/// One chunk's bitmap: bit `i` is page `i` of the chunk (LSB-first in each word).
type ChunkBits = BitArr!(for PALLOC_CHUNK_PAGES, in u64, Lsb0);

/// A run handed out by [`PageAlloc::alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    /// Index of the first page of the run.
    pub base: usize,
    /// Length of the run in pages.
    pub npages: usize,
    /// How many of its pages were scavenged (zero, not resident) before this
    /// allocation. The caller must make those resident again / may rely on
    /// them reading as zero.
    pub scavenged: usize,
}

/// Summary of a page range: free run at its start, longest free run in it,
/// free run at its end. All three are `<=` the range length, and equal to it
/// exactly when the whole range is free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sum {
    start: u32,
    max: u32,
    end: u32,
}

impl Sum {
    /// A range with no free page (absent, allocated, or padding).
    const NONE: Sum = Sum {
        start: 0,
        max: 0,
        end: 0,
    };

    /// A completely free range of `len` pages.
    const fn all_free(len: u32) -> Sum {
        Sum {
            start: len,
            max: len,
            end: len,
        }
    }

    /// Summary of the concatenation `l ++ r`, each `half` pages long.
    fn combine(l: Sum, r: Sum, half: u32) -> Sum {
        let start = if l.start == half {
            half + r.start
        } else {
            l.start
        };
        let end = if r.end == half { half + l.end } else { r.end };
        let max = l.max.max(r.max).max(l.end + r.start);
        Sum { start, max, end }
    }
}

/// Bitmaps of one chunk. Aligned so that each bitmap is one cache line.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct Chunk {
    /// 1 = allocated or absent, 0 = free.
    alloc: ChunkBits,
    /// 1 = free and scavenged. Invariant: `alloc & scav == 0`.
    scav: ChunkBits,
}

impl Chunk {
    /// A chunk whose memory is not present yet: every page allocated.
    fn absent() -> Chunk {
        Chunk {
            alloc: BitArray::new([u64::MAX; WORDS]),
            scav: BitArray::ZERO,
        }
    }

    /// Free, unscavenged pages of word `w`, as a bit mask.
    fn dirty_word(&self, w: usize) -> u64 {
        !self.alloc.data[w] & !self.scav.data[w]
    }
}

/// Positions `p` of `f` such that bits `p .. p + n` are all ones
/// (1 <= n <= 64); runs are not continued past bit 63.
fn run_starts(f: u64, n: u32) -> u64 {
    debug_assert!((1..=64).contains(&n));
    let mut m = f;
    let mut s = 1;
    // Invariant: bit p of m is set iff bits p .. p + s of f are all ones.
    while s * 2 <= n {
        m &= m >> s;
        s *= 2;
    }
    if s < n {
        // n - s < s, so the two windows overlap and cover p .. p + n.
        m &= m >> (n - s);
    }
    m
}

/// Summary of one chunk from its alloc words (0 bits are free pages).
fn summarize(words: &[u64; WORDS]) -> Sum {
    let mut start = 0u32;
    for &w in words {
        if w == 0 {
            start += 64;
        } else {
            start += w.trailing_zeros();
            break;
        }
    }
    if start as usize == PALLOC_CHUNK_PAGES {
        return Sum::all_free(PALLOC_CHUNK_PAGES as u32);
    }
    let mut end = 0u32;
    for &w in words.iter().rev() {
        if w == 0 {
            end += 64;
        } else {
            end += w.leading_zeros();
            break;
        }
    }
    let mut max = start.max(end);
    // `cur` is the free run ending at the current word boundary.
    let mut cur = 0u32;
    for &w in words {
        if w == 0 {
            cur += 64;
            continue;
        }
        max = max.max(cur + w.trailing_zeros());
        // Runs strictly between the lowest and highest set bit of w are at
        // most 62 long; look for them only if they could beat `max`.
        if max < 62 {
            let x = w >> w.trailing_zeros();
            let inner = !x & (u64::MAX >> x.leading_zeros());
            let mut g = run_starts(inner, max + 1);
            while g != 0 {
                max += 1;
                g &= g >> 1;
            }
        }
        cur = w.leading_zeros();
    }
    Sum {
        start,
        max: max.max(cur),
        end,
    }
}

/// First free run of `npages` pages that ends inside this chunk, given that
/// the `carry` pages just before the chunk (at `base - carry .. base`) are
/// free. Returns the absolute first page of the run (possibly `< base`).
fn find_in_chunk(words: &[u64; WORDS], base: usize, npages: usize, carry: usize) -> Option<usize> {
    let mut cur = carry;
    for (i, &w) in words.iter().enumerate() {
        let wbase = base + i * 64;
        if w == 0 {
            if cur + 64 >= npages {
                return Some(wbase - cur);
            }
            cur += 64;
            continue;
        }
        if cur + w.trailing_zeros() as usize >= npages {
            return Some(wbase - cur);
        }
        if npages < 64 {
            // The run at bit 0 was just ruled out, so any match lies wholly
            // inside this word.
            let m = run_starts(!w, npages as u32);
            if m != 0 {
                return Some(wbase + m.trailing_zeros() as usize);
            }
        }
        cur = w.leading_zeros() as usize;
    }
    None
}

/// The heap's page allocator. See the module documentation.
#[derive(Clone, Debug)]
pub struct PageAlloc {
    /// Bitmaps, one entry per chunk; `chunks.len() == C <= MAX_CHUNKS`.
    chunks: Vec<Chunk>,
    /// `dirty[c] == pc(!A_c & !S_c)`: free, unscavenged pages of chunk `c`.
    dirty: Vec<u16>,
    /// Bit `c` set iff `dirty[c] > 0`; `dirty_mask.len() == ceil(C / 64)`.
    dirty_mask: Vec<u64>,
    /// Scavenger cursor: `dirty_mask[j] == 0` for every `j >= dirty_top`.
    dirty_top: usize,
    /// Summary segment tree, `tree.len() == 2 * cap` (see module invariants;
    /// `tree[0]` is unused).
    tree: Vec<Sum>,
    /// Leaves of the tree: a power of two, `>= max(C, 1)`.
    cap: usize,
    /// `== Σ_c pc(!A_c)`.
    free: usize,
    /// `== Σ_c pc(S_c)`.
    scavenged: usize,
}

impl Default for PageAlloc {
    fn default() -> Self {
        Self::new()
    }
}

impl PageAlloc {
    /// An empty allocator: zero chunks, nothing to allocate.
    pub fn new() -> Self {
        PageAlloc {
            chunks: Vec::new(),
            dirty: Vec::new(),
            dirty_mask: Vec::new(),
            dirty_top: 0,
            tree: vec![Sum::NONE; 2],
            cap: 1,
            free: 0,
            scavenged: 0,
        }
    }

    /// Number of chunks in the index space.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Number of pages in the index space: `chunks() * PALLOC_CHUNK_PAGES`.
    pub fn pages(&self) -> usize {
        self.chunks.len() * PALLOC_CHUNK_PAGES
    }

    /// Free pages, scavenged or not. O(1).
    pub fn free_pages(&self) -> usize {
        self.free
    }

    /// Free pages that are scavenged. O(1).
    pub fn scavenged_pages(&self) -> usize {
        self.scavenged
    }

    /// Whether `page` is free. Pages outside the index space are not.
    pub fn is_free(&self, page: usize) -> bool {
        self.chunks
            .get(page / PALLOC_CHUNK_PAGES)
            .is_some_and(|c| !c.alloc[page % PALLOC_CHUNK_PAGES])
    }

    /// Whether `page` is free and scavenged.
    pub fn is_scavenged(&self, page: usize) -> bool {
        self.chunks
            .get(page / PALLOC_CHUNK_PAGES)
            .is_some_and(|c| c.scav[page % PALLOC_CHUNK_PAGES])
    }

    /// Extends the index space to `nchunks` chunks (no-op if it already has
    /// that many). New chunks are not present, i.e. allocated.
    ///
    /// Precondition: `nchunks <= MAX_CHUNKS` (debug-asserted; release builds
    /// clamp to `MAX_CHUNKS`).
    pub fn grow_to(&mut self, nchunks: usize) {
        debug_assert!(
            nchunks <= MAX_CHUNKS,
            "grow_to({nchunks}) beyond MAX_CHUNKS"
        );
        let nchunks = nchunks.min(MAX_CHUNKS);
        let old = self.chunks.len();
        if nchunks <= old {
            return;
        }
        self.chunks.resize(nchunks, Chunk::absent());
        self.dirty.resize(nchunks, 0);
        self.dirty_mask.resize(nchunks.div_ceil(64), 0);
        // New leaves are absent, i.e. summary NONE, which is what padding
        // leaves already hold: the tree only changes if it needs more leaves.
        let cap = nchunks.next_power_of_two();
        if cap > self.cap {
            let mut tree = vec![Sum::NONE; 2 * cap];
            tree[cap..cap + old].copy_from_slice(&self.tree[self.cap..self.cap + old]);
            self.tree = tree;
            self.cap = cap;
            let mut half = PALLOC_CHUNK_PAGES as u32;
            let mut level = cap / 2;
            while level >= 1 {
                for i in level..2 * level {
                    self.tree[i] = Sum::combine(self.tree[2 * i], self.tree[2 * i + 1], half);
                }
                half *= 2;
                level /= 2;
            }
        }
    }

    /// Pages `[base, base + npages)` become free and scavenged (memory freshly
    /// mapped from the OS: zero and not resident).
    ///
    /// Precondition (debug-asserted): the pages are inside the index space and
    /// currently allocated / not present. An empty range is a no-op;
    /// release builds ignore an out-of-range request.
    pub fn add_fresh(&mut self, base: usize, npages: usize) {
        self.mark_free(base, npages, true);
    }

    /// Lowest-addressed run of `npages` free pages, marked allocated. Its
    /// scavenged bits are cleared and counted in [`PageRun::scavenged`].
    /// `None` if no free run is that long.
    ///
    /// Precondition: `npages >= 1` (debug-asserted; release builds return
    /// `None` for 0).
    pub fn alloc(&mut self, npages: usize) -> Option<PageRun> {
        let base = self.find_run(npages)?;
        Some(self.alloc_run(base, npages))
    }

    /// The search half of [`PageAlloc::alloc`]: the first page of the
    /// lowest-addressed free run of `npages` pages, left free.
    pub(crate) fn find_run(&self, npages: usize) -> Option<usize> {
        debug_assert!(npages >= 1, "alloc of zero pages");
        if npages == 0 || (self.tree[1].max as usize) < npages {
            return None;
        }
        self.find(npages)
    }

    /// The taking half of [`PageAlloc::alloc`]: marks the run found by
    /// [`PageAlloc::find_run`] allocated. Precondition (debug-asserted):
    /// the pages are still free.
    pub(crate) fn alloc_run(&mut self, base: usize, npages: usize) -> PageRun {
        let scavenged = self.mark_alloc(base, npages);
        PageRun {
            base,
            npages,
            scavenged,
        }
    }

    /// Pages `[base, base + npages)` become free and not scavenged (they were
    /// in use, so they are dirty and resident).
    ///
    /// Precondition (debug-asserted): the pages are inside the index space and
    /// currently allocated. An empty range is a no-op; release builds ignore
    /// an out-of-range request.
    pub fn free(&mut self, base: usize, npages: usize) {
        self.mark_free(base, npages, false);
    }

    /// Scavenger, step 1. Finds the highest free, unscavenged page `t`, and
    /// the run of free, unscavenged pages ending at `t`, cut to its top
    /// `max_pages` pages (the run may span chunks). Marks that run allocated
    /// so that nobody can allocate it while the caller releases it to the OS
    /// without the heap lock, and returns it as `(base, npages)`. `None` if
    /// every free page is already scavenged (or `max_pages == 0`).
    ///
    /// High addresses are scavenged first so that the low end of the heap,
    /// where first fit allocates, stays dense and resident.
    pub fn scavenge_take(&mut self, max_pages: usize) -> Option<(usize, usize)> {
        debug_assert!(max_pages >= 1, "scavenge_take of zero pages");
        if max_pages == 0 {
            return None;
        }
        let c = self.top_dirty_chunk()?;
        let chunk = &self.chunks[c];
        let w = (0..WORDS).rev().find(|&w| chunk.dirty_word(w) != 0)?;
        let bit = 63 - chunk.dirty_word(w).leading_zeros() as usize;
        let top = c * PALLOC_CHUNK_PAGES + w * 64 + bit;
        // Extend [lo, top] downwards one word at a time.
        let limit = (top + 1).saturating_sub(max_pages);
        let mut lo = top;
        while lo > limit {
            let p = lo - 1;
            let b = p % 64;
            let gw = p / 64;
            let word = self.chunks[gw / WORDS].dirty_word(gw % WORDS) << (63 - b);
            let k = (word.leading_ones() as usize).min(lo - limit);
            lo -= k;
            if k < b + 1 {
                break;
            }
        }
        let npages = top + 1 - lo;
        let was_scavenged = self.mark_alloc(lo, npages);
        debug_assert_eq!(was_scavenged, 0);
        Some((lo, npages))
    }

    /// Scavenger, step 2: the run taken by [`PageAlloc::scavenge_take`]
    /// becomes free and scavenged.
    ///
    /// Precondition (debug-asserted): the pages are inside the index space and
    /// currently allocated. An empty range is a no-op; release builds ignore
    /// an out-of-range request.
    pub fn scavenge_return(&mut self, base: usize, npages: usize) {
        self.mark_free(base, npages, true);
    }

    /// Recomputes every summary and counter from the bitmaps and compares
    /// them with the maintained ones. `Err` describes the first mismatch.
    pub fn verify(&self) -> Result<(), String> {
        let nchunks = self.chunks.len();
        if nchunks > MAX_CHUNKS {
            return Err(format!("{nchunks} chunks exceed MAX_CHUNKS"));
        }
        if !self.cap.is_power_of_two() || self.cap < nchunks.max(1) {
            return Err(format!("bad capacity {} for {nchunks} chunks", self.cap));
        }
        if self.tree.len() != 2 * self.cap {
            return Err(format!(
                "tree has {} nodes, cap {}",
                self.tree.len(),
                self.cap
            ));
        }
        if self.dirty.len() != nchunks || self.dirty_mask.len() != nchunks.div_ceil(64) {
            return Err("dirty bookkeeping has the wrong length".into());
        }
        let (mut free, mut scavenged) = (0usize, 0usize);
        for (c, chunk) in self.chunks.iter().enumerate() {
            if let Some(w) = (0..WORDS).find(|&w| chunk.alloc.data[w] & chunk.scav.data[w] != 0) {
                return Err(format!(
                    "chunk {c} word {w}: allocated pages marked scavenged"
                ));
            }
            let f = chunk.alloc.count_zeros();
            let s = chunk.scav.count_ones();
            free += f;
            scavenged += s;
            if self.dirty[c] as usize != f - s {
                return Err(format!("chunk {c}: dirty {} != {}", self.dirty[c], f - s));
            }
            let bit = self.dirty_mask[c / 64] >> (c % 64) & 1 == 1;
            if bit != (f > s) {
                return Err(format!(
                    "chunk {c}: dirty mask bit {bit}, dirty pages {}",
                    f - s
                ));
            }
            let want = summarize(&chunk.alloc.data);
            let have = self.tree[self.cap + c];
            if have != want {
                return Err(format!("chunk {c}: leaf {have:?} != {want:?}"));
            }
        }
        if let Some(c) = (nchunks..self.cap).find(|&c| self.tree[self.cap + c] != Sum::NONE) {
            return Err(format!("padding leaf {c} is {:?}", self.tree[self.cap + c]));
        }
        if let Some(j) = (nchunks..self.dirty_mask.len() * 64)
            .find(|&c| self.dirty_mask[c / 64] >> (c % 64) & 1 == 1)
        {
            return Err(format!("dirty mask bit {j} set beyond the index space"));
        }
        if let Some(j) = (self.dirty_top..self.dirty_mask.len()).find(|&j| self.dirty_mask[j] != 0)
        {
            return Err(format!(
                "dirty mask word {j} nonzero above cursor {}",
                self.dirty_top
            ));
        }
        let mut half = PALLOC_CHUNK_PAGES as u32;
        let mut level = self.cap / 2;
        while level >= 1 {
            for i in level..2 * level {
                let want = Sum::combine(self.tree[2 * i], self.tree[2 * i + 1], half);
                if self.tree[i] != want {
                    return Err(format!("tree node {i}: {:?} != {want:?}", self.tree[i]));
                }
            }
            half *= 2;
            level /= 2;
        }
        if free != self.free {
            return Err(format!("free_pages {} != counted {free}", self.free));
        }
        if scavenged != self.scavenged {
            return Err(format!(
                "scavenged_pages {} != counted {scavenged}",
                self.scavenged
            ));
        }
        Ok(())
    }

    /// First page of the lowest-addressed free run of `npages` pages.
    /// Requires `tree[1].max >= npages`.
    fn find(&self, npages: usize) -> Option<usize> {
        // Loop invariant: a free run of `npages` lies inside
        // `[lo - carry, lo + len)`, where `carry` is the free run ending at
        // `lo`, and none starts earlier.
        let (mut i, mut lo, mut len, mut carry) =
            (1usize, 0usize, self.cap * PALLOC_CHUNK_PAGES, 0usize);
        while i < self.cap {
            let half = len / 2;
            let (l, r) = (self.tree[2 * i], self.tree[2 * i + 1]);
            // 1. The run that began before this node, continued into L.
            if carry + l.start as usize >= npages {
                return Some(lo - carry);
            }
            // 2. A run inside L (L.max covers runs starting at L's start too,
            //    and 1. already ruled out extending the carry).
            if l.max as usize >= npages {
                i *= 2;
                len = half;
                continue;
            }
            // 3. The run crossing the middle.
            let mid_carry = if l.start as usize == half {
                carry + half
            } else {
                l.end as usize
            };
            if mid_carry + r.start as usize >= npages {
                return Some(lo + half - mid_carry);
            }
            // 4. Otherwise it must lie in R.
            i = 2 * i + 1;
            lo += half;
            len = half;
            carry = mid_carry;
        }
        let c = i - self.cap;
        let found = self
            .chunks
            .get(c)
            .and_then(|chunk| find_in_chunk(&chunk.alloc.data, lo, npages, carry));
        debug_assert!(
            found.is_some(),
            "summary tree promised a run of {npages} pages"
        );
        found
    }

    /// Checks that `[base, base + npages)` (nonempty) lies inside the index
    /// space and returns the first and last chunk it touches.
    fn chunk_span(&self, base: usize, npages: usize) -> Option<(usize, usize)> {
        let end = base.checked_add(npages)?;
        if end > self.pages() {
            return None;
        }
        Some((base / PALLOC_CHUNK_PAGES, (end - 1) / PALLOC_CHUNK_PAGES))
    }

    /// The part of `[base, end)` inside chunk `c`, as chunk-local bounds.
    fn piece(c: usize, base: usize, end: usize) -> (usize, usize) {
        let cb = c * PALLOC_CHUNK_PAGES;
        (base.max(cb) - cb, end.min(cb + PALLOC_CHUNK_PAGES) - cb)
    }

    /// Marks `[base, base + npages)` allocated and not scavenged, updates
    /// counters and summaries; returns how many pages were scavenged.
    fn mark_alloc(&mut self, base: usize, npages: usize) -> usize {
        if npages == 0 {
            return 0;
        }
        let Some((c0, c1)) = self.chunk_span(base, npages) else {
            debug_assert!(
                false,
                "alloc range {base}+{npages} outside {} pages",
                self.pages()
            );
            return 0;
        };
        let end = base + npages;
        let mut scav_total = 0;
        for c in c0..=c1 {
            let (lo, hi) = Self::piece(c, base, end);
            let chunk = &mut self.chunks[c];
            let was_alloc = chunk.alloc[lo..hi].count_ones();
            debug_assert_eq!(was_alloc, 0, "allocating pages that are not free");
            chunk.alloc[lo..hi].fill(true);
            let sc = chunk.scav[lo..hi].count_ones();
            chunk.scav[lo..hi].fill(false);
            let newly = hi - lo - was_alloc;
            self.free -= newly;
            self.scavenged -= sc;
            scav_total += sc;
            self.set_dirty(c, self.dirty[c] as usize - (newly - sc));
        }
        self.refresh(c0, c1);
        scav_total
    }

    /// Marks `[base, base + npages)` free, scavenged or not; updates counters
    /// and summaries.
    fn mark_free(&mut self, base: usize, npages: usize, scavenged: bool) {
        if npages == 0 {
            return;
        }
        let Some((c0, c1)) = self.chunk_span(base, npages) else {
            debug_assert!(
                false,
                "free range {base}+{npages} outside {} pages",
                self.pages()
            );
            return;
        };
        let end = base + npages;
        for c in c0..=c1 {
            let (lo, hi) = Self::piece(c, base, end);
            let n = hi - lo;
            let chunk = &mut self.chunks[c];
            let was_alloc = chunk.alloc[lo..hi].count_ones();
            debug_assert_eq!(was_alloc, n, "freeing pages that are already free");
            chunk.alloc[lo..hi].fill(false);
            let sc_before = chunk.scav[lo..hi].count_ones();
            chunk.scav[lo..hi].fill(scavenged);
            let sc_after = if scavenged { n } else { 0 };
            self.free += was_alloc;
            self.scavenged = self.scavenged + sc_after - sc_before;
            let dirty_before = n - was_alloc - sc_before;
            let dirty_after = n - sc_after;
            self.set_dirty(c, self.dirty[c] as usize + dirty_after - dirty_before);
        }
        self.refresh(c0, c1);
    }

    /// Sets chunk `c`'s dirty count and keeps the mask and cursor in step.
    fn set_dirty(&mut self, c: usize, count: usize) {
        debug_assert!(count <= PALLOC_CHUNK_PAGES);
        self.dirty[c] = count as u16;
        let (j, bit) = (c / 64, 1u64 << (c % 64));
        if count > 0 {
            self.dirty_mask[j] |= bit;
            self.dirty_top = self.dirty_top.max(j + 1);
        } else {
            self.dirty_mask[j] &= !bit;
        }
    }

    /// Highest chunk with a free, unscavenged page; lowers the cursor past
    /// empty mask words on the way.
    fn top_dirty_chunk(&mut self) -> Option<usize> {
        while self.dirty_top > 0 {
            let j = self.dirty_top - 1;
            let w = self.dirty_mask[j];
            if w != 0 {
                return Some(j * 64 + 63 - w.leading_zeros() as usize);
            }
            self.dirty_top = j;
        }
        None
    }

    /// Recomputes the leaves of chunks `c0..=c1` and their ancestors, stopping
    /// at the first level where no node changed.
    fn refresh(&mut self, c0: usize, c1: usize) {
        let mut changed = false;
        for c in c0..=c1 {
            let s = summarize(&self.chunks[c].alloc.data);
            let leaf = &mut self.tree[self.cap + c];
            changed |= *leaf != s;
            *leaf = s;
        }
        let (mut a, mut b) = (self.cap + c0, self.cap + c1);
        let mut half = PALLOC_CHUNK_PAGES as u32;
        while changed && a > 1 {
            a /= 2;
            b /= 2;
            changed = false;
            for i in a..=b {
                let s = Sum::combine(self.tree[2 * i], self.tree[2 * i + 1], half);
                changed |= self.tree[i] != s;
                self.tree[i] = s;
            }
            half *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: usize = PALLOC_CHUNK_PAGES;

    /// An allocator with `n` chunks, all fresh (free + scavenged).
    fn fresh(n: usize) -> PageAlloc {
        let mut pa = PageAlloc::new();
        pa.grow_to(n);
        pa.add_fresh(0, n * P);
        pa.verify().unwrap();
        pa
    }

    /// Summary computed one bit at a time, as a reference for `summarize`.
    fn naive_summary(words: &[u64; WORDS]) -> Sum {
        let free: Vec<bool> = (0..P).map(|i| words[i / 64] >> (i % 64) & 1 == 0).collect();
        let start = free.iter().take_while(|&&f| f).count() as u32;
        let end = free.iter().rev().take_while(|&&f| f).count() as u32;
        let (mut max, mut cur) = (0, 0);
        for &f in &free {
            cur = if f { cur + 1 } else { 0 };
            max = max.max(cur);
        }
        Sum { start, max, end }
    }

    #[test]
    fn empty_allocator() {
        let mut pa = PageAlloc::new();
        assert_eq!((pa.chunks(), pa.pages(), pa.free_pages()), (0, 0, 0));
        assert_eq!(pa.alloc(1), None);
        assert_eq!(pa.scavenge_take(10), None);
        assert!(!pa.is_free(0));
        pa.verify().unwrap();
        pa.grow_to(3);
        assert_eq!((pa.chunks(), pa.pages(), pa.free_pages()), (3, 3 * P, 0));
        assert_eq!(pa.alloc(1), None, "absent chunks are never handed out");
        pa.verify().unwrap();
        assert_eq!(PageAlloc::default().chunks(), 0);
    }

    #[test]
    fn single_page_alloc_free() {
        let mut pa = fresh(1);
        let r = pa.alloc(1).unwrap();
        assert_eq!(
            r,
            PageRun {
                base: 0,
                npages: 1,
                scavenged: 1
            }
        );
        assert!(!pa.is_free(0) && pa.is_free(1));
        assert_eq!(pa.free_pages(), P - 1);
        assert_eq!(pa.alloc(1).unwrap().base, 1);
        pa.free(0, 1);
        assert!(pa.is_free(0) && !pa.is_scavenged(0));
        assert_eq!(
            pa.alloc(1),
            Some(PageRun {
                base: 0,
                npages: 1,
                scavenged: 0
            })
        );
        pa.verify().unwrap();
    }

    #[test]
    fn runs_cross_chunk_boundaries() {
        let mut pa = fresh(8);
        let a = pa.alloc(P - 10).unwrap();
        assert_eq!(a.base, 0);
        let b = pa.alloc(20).unwrap();
        assert_eq!((b.base, b.npages), (P - 10, 20), "crosses one boundary");
        let c = pa.alloc(5 * P + 3).unwrap();
        assert_eq!(c.base, P + 10, "crosses many boundaries");
        assert_eq!(c.scavenged, 5 * P + 3);
        pa.verify().unwrap();
        // A run that begins in the middle of a chunk and ends inside a later one.
        pa.free(P + 100, 3 * P);
        let d = pa.alloc(3 * P).unwrap();
        assert_eq!((d.base, d.scavenged), (P + 100, 0));
        pa.verify().unwrap();
    }

    #[test]
    fn first_fit_takes_the_lowest_hole() {
        let mut pa = fresh(4);
        let runs: Vec<_> = (0..20).map(|_| pa.alloc(50).unwrap()).collect();
        pa.free(runs[15].base, 50);
        pa.free(runs[3].base, 50);
        pa.free(runs[9].base, 50);
        assert_eq!(pa.alloc(40).unwrap().base, runs[3].base);
        assert_eq!(pa.alloc(50).unwrap().base, runs[9].base);
        // 10 pages remain in hole 3; 11 pages must go to hole 15.
        assert_eq!(pa.alloc(11).unwrap().base, runs[15].base);
        assert_eq!(pa.alloc(10).unwrap().base, runs[3].base + 40);
        pa.verify().unwrap();
    }

    #[test]
    fn too_large_returns_none() {
        let mut pa = fresh(2);
        assert_eq!(pa.alloc(2 * P + 1), None);
        let a = pa.alloc(P).unwrap();
        pa.alloc(1).unwrap();
        pa.free(a.base, a.npages);
        assert_eq!(pa.alloc(P + 1), None, "free space split in two");
        assert_eq!(pa.alloc(P).unwrap().base, 0);
        assert_eq!(pa.free_pages(), P - 1);
        pa.verify().unwrap();
    }

    #[test]
    fn freeing_neighbours_coalesces() {
        let mut pa = fresh(3);
        let a = pa.alloc(300).unwrap();
        let b = pa.alloc(400).unwrap();
        let _c = pa.alloc(3 * P - 700).unwrap();
        assert_eq!(pa.alloc(1), None);
        pa.free(b.base, b.npages);
        assert_eq!(pa.alloc(700), None);
        pa.free(a.base, a.npages);
        let d = pa.alloc(700).unwrap();
        assert_eq!((d.base, d.scavenged), (0, 0));
        pa.verify().unwrap();
    }

    #[test]
    fn growth_and_fresh_memory_are_scavenged() {
        let mut pa = PageAlloc::new();
        pa.grow_to(1);
        pa.add_fresh(0, 100);
        assert_eq!((pa.free_pages(), pa.scavenged_pages()), (100, 100));
        let a = pa.alloc(60).unwrap();
        assert_eq!(
            a,
            PageRun {
                base: 0,
                npages: 60,
                scavenged: 60
            }
        );
        pa.free(10, 20);
        // Pages 10..30 are dirty, 60..100 fresh: 30 pages fit only at 60.
        let b = pa.alloc(30).unwrap();
        assert_eq!(
            b,
            PageRun {
                base: 60,
                npages: 30,
                scavenged: 30
            }
        );
        // Grow by several chunks (tree capacity doubles twice) and add the
        // tail of chunk 0 and most of the new space.
        pa.grow_to(5);
        pa.grow_to(3); // no-op
        assert_eq!(pa.chunks(), 5);
        pa.add_fresh(100, 4 * P);
        pa.verify().unwrap();
        // Dirty pages 10..30 are at the lowest address, so they go first.
        let c = pa.alloc(20).unwrap();
        assert_eq!(
            c,
            PageRun {
                base: 10,
                npages: 20,
                scavenged: 0
            }
        );
        let d = pa.alloc(2 * P).unwrap();
        assert_eq!(
            d,
            PageRun {
                base: 90,
                npages: 2 * P,
                scavenged: 2 * P
            }
        );
        assert!(!pa.is_free(4 * P + 100), "not added yet");
        assert_eq!(pa.free_pages(), 4 * P + 10 - 2 * P);
        assert_eq!(pa.scavenged_pages(), pa.free_pages());
        pa.verify().unwrap();
    }

    #[test]
    fn scavenger_takes_highest_dirty_runs() {
        let mut pa = fresh(4);
        assert_eq!(
            pa.scavenge_take(100),
            None,
            "all free memory already scavenged"
        );
        pa.alloc(4 * P).unwrap();
        pa.free(100, 50); // dirty run 100..150
        pa.free(P - 5, 10); // dirty run across the chunk 0/1 boundary
        pa.free(3 * P + 7, 1); // highest dirty page
        pa.verify().unwrap();
        assert_eq!(pa.scavenged_pages(), 0);

        assert_eq!(pa.scavenge_take(100), Some((3 * P + 7, 1)));
        assert!(!pa.is_free(3 * P + 7), "taken pages are reserved");
        assert_eq!(pa.free_pages(), 60);
        pa.verify().unwrap();
        pa.scavenge_return(3 * P + 7, 1);
        assert!(pa.is_free(3 * P + 7) && pa.is_scavenged(3 * P + 7));

        // max_pages cuts the run from below: the top 4 of P-5..P+5.
        assert_eq!(pa.scavenge_take(4), Some((P + 1, 4)));
        pa.scavenge_return(P + 1, 4);
        assert_eq!(pa.scavenge_take(100), Some((P - 5, 6)));
        pa.scavenge_return(P - 5, 6);
        assert_eq!(pa.scavenge_take(1000), Some((100, 50)));
        pa.scavenge_return(100, 50);
        assert_eq!(pa.scavenge_take(1000), None);
        assert_eq!((pa.free_pages(), pa.scavenged_pages()), (61, 61));
        pa.verify().unwrap();

        // Scavenged pages come back out of alloc with the right count.
        let r = pa.alloc(50).unwrap();
        assert_eq!(
            r,
            PageRun {
                base: 100,
                npages: 50,
                scavenged: 50
            }
        );
        // Mixed: free part of the run dirty again and allocate across both.
        pa.free(100, 10);
        assert_eq!(
            pa.alloc(1).unwrap(),
            PageRun {
                base: 100,
                npages: 1,
                scavenged: 0
            }
        );
        pa.verify().unwrap();
    }

    #[test]
    fn scavenger_cursor_moves_back_up_after_free() {
        let mut pa = fresh(130);
        pa.alloc(130 * P).unwrap();
        pa.free(3, 2);
        assert_eq!(pa.scavenge_take(8), Some((3, 2)));
        pa.scavenge_return(3, 2);
        assert_eq!(pa.scavenge_take(8), None);
        pa.free(129 * P + 500, 12);
        assert_eq!(pa.scavenge_take(8), Some((129 * P + 504, 8)));
        assert_eq!(pa.scavenge_take(8), Some((129 * P + 500, 4)));
        pa.scavenge_return(129 * P + 500, 12);
        assert_eq!(pa.scavenged_pages(), 14);
        pa.verify().unwrap();
    }

    #[test]
    fn counters_follow_every_operation() {
        let mut pa = fresh(2);
        assert_eq!((pa.free_pages(), pa.scavenged_pages()), (2 * P, 2 * P));
        let a = pa.alloc(700).unwrap();
        assert_eq!(
            (pa.free_pages(), pa.scavenged_pages()),
            (2 * P - 700, 2 * P - 700)
        );
        pa.free(a.base, 200);
        assert_eq!(
            (pa.free_pages(), pa.scavenged_pages()),
            (2 * P - 500, 2 * P - 700)
        );
        let (b, n) = pa.scavenge_take(150).unwrap();
        assert_eq!((b, n), (50, 150));
        assert_eq!(
            (pa.free_pages(), pa.scavenged_pages()),
            (2 * P - 650, 2 * P - 700)
        );
        pa.scavenge_return(b, n);
        assert_eq!(
            (pa.free_pages(), pa.scavenged_pages()),
            (2 * P - 500, 2 * P - 550)
        );
        pa.verify().unwrap();
    }

    #[test]
    fn summarize_matches_naive() {
        let patterns: [[u64; WORDS]; 6] = [
            [0; WORDS],
            [u64::MAX; WORDS],
            [1, 0, 0, 0, 0, 0, 0, 1 << 63],
            [0xAAAA_AAAA_AAAA_AAAA; WORDS],
            [0x8000_0000_0000_0001, u64::MAX, 0, 0, 0x10, 0, 0, 0xFF00],
            [
                u64::MAX,
                0xF0F0_0000_0000_000F,
                0,
                u64::MAX,
                0,
                0,
                1,
                u64::MAX,
            ],
        ];
        for p in &patterns {
            assert_eq!(summarize(p), naive_summary(p), "{p:x?}");
        }
    }

    proptest! {
        #[test]
        fn summarize_random(words in proptest::array::uniform8(any::<u64>()),
                            masks in proptest::array::uniform8(any::<u64>())) {
            // AND a few random words together to get longer free runs.
            let w: [u64; WORDS] = std::array::from_fn(|i| words[i] & masks[i]);
            prop_assert_eq!(summarize(&w), naive_summary(&w));
            let w2: [u64; WORDS] = std::array::from_fn(|i| words[i] & masks[i] & words[7 - i]);
            prop_assert_eq!(summarize(&w2), naive_summary(&w2));
        }
    }

    // ---- model-based test ----

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum PageState {
        NotPresent,
        Allocated,
        Dirty,
        Scavenged,
    }

    /// Naive reference: one state per page, linear scans.
    struct Model {
        pages: Vec<PageState>,
        live: Vec<(usize, usize)>,
    }

    impl Model {
        fn is_free(&self, p: usize) -> bool {
            matches!(self.pages[p], PageState::Dirty | PageState::Scavenged)
        }

        fn first_fit(&self, n: usize) -> Option<usize> {
            let mut run = 0;
            for p in 0..self.pages.len() {
                run = if self.is_free(p) { run + 1 } else { 0 };
                if run == n {
                    return Some(p + 1 - n);
                }
            }
            None
        }

        fn scavenge_candidate(&self, max: usize) -> Option<(usize, usize)> {
            let top = (0..self.pages.len())
                .rev()
                .find(|&p| self.pages[p] == PageState::Dirty)?;
            let mut lo = top;
            while lo > 0 && top + 1 - lo < max && self.pages[lo - 1] == PageState::Dirty {
                lo -= 1;
            }
            Some((lo, top + 1 - lo))
        }

        fn set(&mut self, base: usize, n: usize, s: PageState) {
            self.pages[base..base + n].fill(s);
        }

        fn count(&self, f: impl Fn(PageState) -> bool) -> usize {
            self.pages.iter().filter(|&&s| f(s)).count()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(usize),
        Free { pick: usize, half: bool },
        Grow(usize),
        AddFresh { pick: usize, off: usize, len: usize },
        Scavenge(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1usize..=8).prop_map(Op::Alloc),
            3 => (1usize..=2000).prop_map(Op::Alloc),
            1 => prop_oneof![63usize..=65, 510usize..=514, 1023usize..=1025].prop_map(Op::Alloc),
            5 => (any::<usize>(), any::<bool>()).prop_map(|(pick, half)| Op::Free { pick, half }),
            2 => (0usize..=3).prop_map(Op::Grow),
            3 => (any::<usize>(), any::<usize>(), any::<usize>())
                .prop_map(|(pick, off, len)| Op::AddFresh { pick, off, len }),
            2 => (1usize..=1200).prop_map(Op::Scavenge),
        ]
    }

    const MAX_TEST_CHUNKS: usize = 20;

    /// Proptest cases per property: 256 in release (under a second), fewer
    /// in unoptimised builds, where the per-op page-by-page check is slow.
    const CASES: u32 = if cfg!(debug_assertions) { 48 } else { 256 };

    fn check(pa: &PageAlloc, m: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(pa.pages(), m.pages.len());
        prop_assert_eq!(
            pa.free_pages(),
            m.count(|s| matches!(s, PageState::Dirty | PageState::Scavenged))
        );
        prop_assert_eq!(pa.scavenged_pages(), m.count(|s| s == PageState::Scavenged));
        if let Err(e) = pa.verify() {
            return Err(TestCaseError::fail(e));
        }
        for p in 0..m.pages.len() {
            prop_assert_eq!(pa.is_free(p), m.is_free(p), "page {}", p);
            prop_assert_eq!(
                pa.is_scavenged(p),
                m.pages[p] == PageState::Scavenged,
                "page {}",
                p
            );
        }
        Ok(())
    }

    fn run_ops(initial: usize, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut pa = PageAlloc::new();
        let mut m = Model {
            pages: Vec::new(),
            live: Vec::new(),
        };
        pa.grow_to(initial);
        m.pages.resize(initial * P, PageState::NotPresent);
        pa.add_fresh(0, initial * P);
        m.set(0, initial * P, PageState::Scavenged);
        check(&pa, &m)?;
        for op in ops {
            match *op {
                Op::Alloc(n) => {
                    let want = m.first_fit(n);
                    let got = pa.alloc(n);
                    prop_assert_eq!(got.map(|r| r.base), want, "alloc({})", n);
                    if let Some(r) = got {
                        prop_assert_eq!(r.npages, n);
                        let scav = m.pages[r.base..r.base + n]
                            .iter()
                            .filter(|&&s| s == PageState::Scavenged)
                            .count();
                        prop_assert_eq!(r.scavenged, scav);
                        for &(b, len) in &m.live {
                            prop_assert!(b + len <= r.base || r.base + n <= b, "overlap");
                        }
                        m.set(r.base, n, PageState::Allocated);
                        m.live.push((r.base, n));
                    }
                }
                Op::Free { pick, half } => {
                    if m.live.is_empty() {
                        continue;
                    }
                    let i = pick % m.live.len();
                    let (b, n) = m.live[i];
                    if half && n >= 2 {
                        // Free the front half, keep the back half live.
                        let k = n / 2;
                        pa.free(b, k);
                        m.set(b, k, PageState::Dirty);
                        m.live[i] = (b + k, n - k);
                    } else {
                        pa.free(b, n);
                        m.set(b, n, PageState::Dirty);
                        m.live.swap_remove(i);
                    }
                }
                Op::Grow(k) => {
                    let target = (pa.chunks() + k).min(MAX_TEST_CHUNKS);
                    pa.grow_to(target);
                    m.pages.resize(target * P, PageState::NotPresent);
                }
                Op::AddFresh { pick, off, len } => {
                    let mut runs = Vec::new();
                    let mut p = 0;
                    while p < m.pages.len() {
                        if m.pages[p] == PageState::NotPresent {
                            let s = p;
                            while p < m.pages.len() && m.pages[p] == PageState::NotPresent {
                                p += 1;
                            }
                            runs.push((s, p));
                        } else {
                            p += 1;
                        }
                    }
                    if runs.is_empty() {
                        continue;
                    }
                    let (s, e) = runs[pick % runs.len()];
                    let base = s + off % (e - s);
                    let n = 1 + len % (e - base);
                    pa.add_fresh(base, n);
                    m.set(base, n, PageState::Scavenged);
                }
                Op::Scavenge(max) => {
                    let want = m.scavenge_candidate(max);
                    let got = pa.scavenge_take(max);
                    prop_assert_eq!(got, want, "scavenge_take({})", max);
                    if let Some((b, n)) = got {
                        m.set(b, n, PageState::Allocated);
                        check(&pa, &m)?;
                        pa.scavenge_return(b, n);
                        m.set(b, n, PageState::Scavenged);
                    }
                }
            }
            check(&pa, &m)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn matches_naive_model(initial in 0usize..=4, ops in proptest::collection::vec(op(), 1..150)) {
            run_ops(initial, &ops)?;
        }
    }

    #[test]
    fn many_chunks_deep_tree() {
        // 1000 chunks: a 10-level tree; fill almost everything, punch holes
        // and check first fit against the model on a larger space.
        let n = 1000;
        let mut pa = fresh(n);
        let all = pa.alloc(n * P).unwrap();
        assert_eq!(all.base, 0);
        assert_eq!(pa.alloc(1), None);
        for &(b, len) in &[
            (777 * P + 3, 1),
            (400 * P + 511, 2),
            (999 * P, P),
            (5 * P + 1, 1000),
        ] {
            pa.free(b, len);
        }
        assert_eq!(pa.alloc(1).unwrap().base, 5 * P + 1);
        assert_eq!(pa.alloc(1001), None);
        assert_eq!(pa.alloc(999).unwrap().base, 5 * P + 2);
        assert_eq!(pa.alloc(2).unwrap().base, 400 * P + 511);
        assert_eq!(pa.alloc(1).unwrap().base, 777 * P + 3);
        assert_eq!(pa.alloc(P).unwrap().base, 999 * P);
        assert_eq!(pa.free_pages(), 0);
        pa.verify().unwrap();
    }

    /// Builds an allocator whose alloc bitmaps are exactly `free` (true =
    /// free page, unscavenged), bypassing the public API.
    fn from_pattern(free: &[bool]) -> PageAlloc {
        let nchunks = free.len() / P;
        let mut pa = PageAlloc::new();
        pa.grow_to(nchunks);
        for (p, &f) in free.iter().enumerate() {
            if f {
                pa.chunks[p / P].alloc.set(p % P, false);
            }
        }
        for c in 0..nchunks {
            let f = pa.chunks[c].alloc.count_zeros();
            pa.free += f;
            pa.set_dirty(c, f);
        }
        if nchunks > 0 {
            pa.refresh(0, nchunks - 1);
        }
        pa
    }

    /// Free-run lengths biased towards word and chunk boundaries.
    fn run_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            1usize..=4,
            60usize..=68,
            505usize..=520,
            1020usize..=1030,
            1usize..=1100
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        /// Every tree node summarises exactly its page range, and `find`
        /// agrees with a linear first-fit scan, on patterns dense in runs that
        /// end near word and chunk boundaries.
        #[test]
        fn tree_and_find_match_naive(
            nchunks in 1usize..=9,
            runs in proptest::collection::vec((run_len(), run_len()), 1..40),
            extra in 1usize..=3000,
        ) {
            let mut free = Vec::new();
            for &(a, f) in &runs {
                free.extend(std::iter::repeat_n(false, a));
                free.extend(std::iter::repeat_n(true, f));
            }
            free.resize(nchunks * P, false);
            let pa = from_pattern(&free);
            if let Err(e) = pa.verify() {
                return Err(TestCaseError::fail(e));
            }
            // Node i covers `len` pages from `lo`; padding pages count as allocated.
            let mut stack = vec![(1usize, 0usize, pa.cap * P)];
            while let Some((i, lo, len)) = stack.pop() {
                let bits: Vec<bool> = (lo..lo + len).map(|p| free.get(p).copied().unwrap_or(false)).collect();
                let start = bits.iter().take_while(|&&f| f).count() as u32;
                let end = bits.iter().rev().take_while(|&&f| f).count() as u32;
                let (mut max, mut cur) = (0u32, 0u32);
                for &f in &bits {
                    cur = if f { cur + 1 } else { 0 };
                    max = max.max(cur);
                }
                prop_assert_eq!(pa.tree[i], Sum { start, max, end }, "node {}", i);
                if i < pa.cap {
                    stack.push((2 * i, lo, len / 2));
                    stack.push((2 * i + 1, lo + len / 2, len / 2));
                }
            }
            let model = Model {
                pages: free.iter().map(|&f| if f { PageState::Dirty } else { PageState::Allocated }).collect(),
                live: Vec::new(),
            };
            for n in [1, 2, 3, 63, 64, 65, 511, 512, 513, 1024, 1025, 2000, extra] {
                let got = if pa.tree[1].max as usize >= n { pa.find(n) } else { None };
                prop_assert_eq!(got, model.first_fit(n), "find({})", n);
            }
        }
    }

    #[test]
    fn verify_detects_corruption() {
        let mut pa = fresh(3);
        pa.alloc(700).unwrap();
        pa.free(10, 5);
        pa.verify().unwrap();

        let mut bad = pa.clone();
        bad.free += 1;
        assert!(bad.verify().is_err(), "free counter");
        let mut bad = pa.clone();
        bad.scavenged -= 1;
        assert!(bad.verify().is_err(), "scavenged counter");
        let mut bad = pa.clone();
        bad.tree[1].max += 1;
        assert!(bad.verify().is_err(), "root summary");
        let mut bad = pa.clone();
        bad.tree[bad.cap + 2].start -= 1;
        assert!(bad.verify().is_err(), "leaf summary");
        let mut bad = pa.clone();
        bad.tree[bad.cap + 3] = Sum::all_free(1);
        assert!(bad.verify().is_err(), "padding leaf");
        let mut bad = pa.clone();
        bad.chunks[0].scav.set(0, true);
        assert!(bad.verify().is_err(), "allocated page marked scavenged");
        let mut bad = pa.clone();
        bad.chunks[2].alloc.set(5, true);
        assert!(bad.verify().is_err(), "bitmap changed behind the summaries");
        let mut bad = pa.clone();
        bad.dirty[0] += 1;
        assert!(bad.verify().is_err(), "dirty count");
        let mut bad = pa.clone();
        bad.dirty_mask[0] = 0;
        assert!(bad.verify().is_err(), "dirty mask");
        let mut bad = pa.clone();
        bad.dirty_top = 0;
        assert!(bad.verify().is_err(), "scavenger cursor");
    }
}

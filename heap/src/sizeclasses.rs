//! Size classes for small objects: the tables every other layer of the heap
//! (mspan, mcache, mcentral, mheap) uses to turn a byte count into a class,
//! a class into an object size and a span length, and a byte offset inside a
//! span into an object index.
//!
//! # Correspondence with Go
//!
//! This module stands in for three pieces of the Go runtime:
//!
//! * `src/internal/runtime/gc/sizeclasses.go` — the generated tables
//!   (`SizeClassToSize`, `SizeClassToNPages`, `SizeClassToDivMagic`,
//!   `SizeToSizeClass8`, `SizeToSizeClass128`) and constants. Older Go kept
//!   the same file as `src/runtime/sizeclasses.go`.
//! * `src/runtime/_mkmalloc/mksizeclasses.go` — the program that generates
//!   those tables (formerly `src/runtime/mksizeclasses.go`).
//! * `src/runtime/msize.go` — `roundupsize`, here [`round_up_size`].
//!
//! Go runs its generator by hand and commits the output. Here the generator
//! is a set of `const fn`s that the compiler evaluates while building the
//! crate, so the tables cannot drift from the rule that defines them; a unit
//! test then compares the result with the table Go publishes.
//!
//! # How the classes are chosen
//!
//! Candidate object sizes are visited in increasing order. The step between
//! candidates starts at 8 bytes and widens as sizes grow: on reaching 32 bytes
//! it becomes 16, from 128 bytes on it becomes one eighth of the most recent
//! power of two passed (16 at 128, 32 at 256, ... 128 at 1024), and from 2048
//! bytes on it stays at 256. The widening keeps the relative gap between
//! neighbouring candidates at or below roughly one eighth of the size.
//!
//! For each candidate the span length is the smallest whole number of 8 KiB
//! pages for which the bytes left over after packing as many objects as fit
//! (the "tail") are no more than one eighth of the span.
//!
//! When a candidate gets the same span length and the same object count as
//! the class just before it, the two would behave identically except that
//! the larger one serves more requests, so the earlier class is widened to
//! the candidate instead of adding a new class.
//!
//! Once all candidates are placed, a final pass grows every class to the
//! largest multiple of 128 bytes that still packs the same number of objects
//! into the same span (for instance 8448 bytes, 6 per 7 pages, becomes 9472
//! bytes, still 6 per 7 pages): the memory was being wasted as tail anyway.
//! Keeping the 128-byte granularity is what lets the coarse lookup table
//! below work.
//!
//! The procedure yields exactly [`NUM_SIZE_CLASSES`] entries (class 0 being
//! the placeholder for "large object, no class"); a compile-time assertion
//! stops the build if it ever yields any other count.
//!
//! # Waste bounds
//!
//! There are two independent ways memory goes unused. Rounding a request up
//! to its class costs at most about 12.5% (the candidate spacing above), and
//! the span tail costs at most 12.5% of the span (the page-count rule). The
//! two compound: in the worst case a request pays 1.125 × 1.125 ≈ 1.266, i.e.
//! about 26.6% overhead. In practice one of the two dominates — small classes
//! lose mostly to rounding, larger ones mostly to the tail — and for the very
//! smallest sizes the 8- and 16-byte alignment floor makes the rounding loss
//! higher than 12.5% (a 1-byte request occupies 8 bytes).
//!
//! # Invariants (checked at compile time, and again by the tests)
//!
//! * Class sizes strictly increase; class [`NUM_SIZE_CLASSES`]` - 1` is
//!   exactly [`MAX_SMALL_SIZE`].
//! * Every class size up to [`SMALL_SIZE_MAX`] is a multiple of
//!   [`SMALL_SIZE_DIV`], and every larger one a multiple of
//!   [`LARGE_SIZE_DIV`]; hence a lookup at that granularity is exact.
//! * No span is longer than [`MAX_SIZE_CLASS_NPAGES`] pages, and no span
//!   holds more than [`MAX_OBJS_PER_SPAN`] objects.
//! * Class [`TINY_SIZE_CLASS`] has size [`TINY_SIZE`].
//! * For every class, multiplying by its `CLASS_TO_DIVMAGIC` entry and
//!   shifting right by 32 divides exactly by the class size for every offset
//!   from 0 to the span length inclusive.

/// log2 of the heap page size.
pub const PAGE_SHIFT: usize = 13;

/// Heap page size in bytes (8 KiB). Spans are whole numbers of pages.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// Number of size classes, counting the placeholder class 0, which stands for
/// objects too large for any class (they get whole pages of their own).
pub const NUM_SIZE_CLASSES: usize = 68;

/// Largest object size served by a size class; anything bigger is a large
/// object.
pub const MAX_SMALL_SIZE: usize = 32768;

/// Granularity of [`SIZE_TO_CLASS8`], the lookup table for sizes up to
/// [`SMALL_SIZE_MAX`].
pub const SMALL_SIZE_DIV: usize = 8;

/// Largest size looked up in the fine-grained table [`SIZE_TO_CLASS8`].
pub const SMALL_SIZE_MAX: usize = 1024;

/// Granularity of [`SIZE_TO_CLASS128`], the lookup table for sizes above
/// [`SMALL_SIZE_MAX`].
pub const LARGE_SIZE_DIV: usize = 128;

/// Most objects any span of any class holds (class 1: 8192 / 8).
pub const MAX_OBJS_PER_SPAN: usize = 1024;

/// Most pages any class's span occupies.
pub const MAX_SIZE_CLASS_NPAGES: usize = 10;

/// Block size of the tiny allocator, which packs several small pointer-free
/// allocations into one block.
pub const TINY_SIZE: usize = 16;

/// The size class whose objects are [`TINY_SIZE`] bytes: the tiny allocator's
/// blocks come from it.
pub const TINY_SIZE_CLASS: u8 = 2;

/// Smallest alignment, and so the first step between candidate sizes.
const MIN_ALIGN: usize = 8;

/// Room for the generator's scratch arrays. Far above the real count; if the
/// rule ever produced more classes than this, constant evaluation would fail
/// on an out-of-bounds index, which is also a compile error.
const GEN_CAPACITY: usize = 128;

/// Classes as the generator produces them, before narrowing to the public
/// table types.
struct RawClasses {
    /// Number of classes produced, counting the placeholder class 0.
    count: usize,
    /// Object size per class; entry 0 is 0.
    size: [usize; GEN_CAPACITY],
    /// Pages per span per class; entry 0 is 0.
    npages: [usize; GEN_CAPACITY],
}

/// Fewest pages whose span leaves a tail of at most one eighth of the span
/// when cut into `size`-byte objects.
const fn pages_for(size: usize) -> usize {
    let mut span = PAGE_SIZE;
    while span % size > span / 8 {
        span += PAGE_SIZE;
    }
    span / PAGE_SIZE
}

/// Runs the class-selection rule described in the module documentation.
const fn generate_raw() -> RawClasses {
    let mut size = [0usize; GEN_CAPACITY];
    let mut npages = [0usize; GEN_CAPACITY];
    // Class 0 is the placeholder and is already in place (all zeros).
    let mut count = 1;

    let mut step = MIN_ALIGN;
    let mut candidate = MIN_ALIGN;
    while candidate <= MAX_SMALL_SIZE {
        if candidate.is_power_of_two() {
            if candidate >= 2048 {
                step = 256;
            } else if candidate >= 128 {
                step = candidate / 8;
            } else if candidate >= 32 {
                step = 16;
            }
        }
        assert!(step.is_power_of_two());

        let pages = pages_for(candidate);
        let span = pages * PAGE_SIZE;
        let last = count - 1;
        if last != 0 && npages[last] == pages && span / size[last] == span / candidate {
            // Same span, same object count: widen the previous class.
            size[last] = candidate;
        } else {
            size[count] = candidate;
            npages[count] = pages;
            count += 1;
        }
        candidate += step;
    }

    // Grow each class to the largest 128-byte multiple that keeps its object
    // count in the same span.
    let mut class = 1;
    while class < count {
        let span = npages[class] * PAGE_SIZE;
        let grown = (span / (span / size[class])) & !(LARGE_SIZE_DIV - 1);
        if grown > size[class] {
            size[class] = grown;
        }
        class += 1;
    }

    RawClasses {
        count,
        size,
        npages,
    }
}

/// The generator's output, evaluated once at compile time.
const RAW: RawClasses = generate_raw();

// The rule must produce exactly Go's 68 classes; anything else means the
// generator (or a constant it depends on) has changed.
const _: () = assert!(
    RAW.count == NUM_SIZE_CLASSES,
    "size-class rule no longer yields NUM_SIZE_CLASSES classes"
);

/// All public tables, built together so they share one generator run.
struct Tables {
    size: [u32; NUM_SIZE_CLASSES],
    npages: [u8; NUM_SIZE_CLASSES],
    nobjs: [u16; NUM_SIZE_CLASSES],
    divmagic: [u32; NUM_SIZE_CLASSES],
    size_to_class8: [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1],
    size_to_class128: [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1],
}

/// `x` as a `u8`, failing constant evaluation if it does not fit.
const fn narrow_u8(x: usize) -> u8 {
    assert!(x <= u8::MAX as usize);
    x as u8
}

/// `x` as a `u16`, failing constant evaluation if it does not fit.
const fn narrow_u16(x: usize) -> u16 {
    assert!(x <= u16::MAX as usize);
    x as u16
}

/// `x` as a `u32`, failing constant evaluation if it does not fit.
const fn narrow_u32(x: usize) -> u32 {
    assert!(x <= u32::MAX as usize);
    x as u32
}

/// Smallest class (possibly the placeholder 0, whose size is 0) whose size
/// is at least `bytes`. Fails constant evaluation if none is.
const fn smallest_class_holding(size: &[usize; GEN_CAPACITY], bytes: usize) -> u8 {
    let mut class = 0;
    while class < NUM_SIZE_CLASSES {
        if size[class] >= bytes {
            return narrow_u8(class);
        }
        class += 1;
    }
    panic!("no size class is large enough");
}

/// Narrows the generator's output into the public tables and derives the
/// object counts, division magic numbers and lookup tables.
const fn build_tables() -> Tables {
    let mut t = Tables {
        size: [0; NUM_SIZE_CLASSES],
        npages: [0; NUM_SIZE_CLASSES],
        nobjs: [0; NUM_SIZE_CLASSES],
        divmagic: [0; NUM_SIZE_CLASSES],
        size_to_class8: [0; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1],
        size_to_class128: [0; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1],
    };

    // Same check as the free-standing assertion below `RAW`; repeated here so
    // a wrong count reports that, not a division by an empty class's size.
    const {
        assert!(
            RAW.count == NUM_SIZE_CLASSES,
            "size-class rule no longer yields NUM_SIZE_CLASSES classes"
        );
    }
    let mut class = 1;
    while class < NUM_SIZE_CLASSES {
        let size = RAW.size[class];
        let span = RAW.npages[class] * PAGE_SIZE;
        t.size[class] = narrow_u32(size);
        t.npages[class] = narrow_u8(RAW.npages[class]);
        t.nobjs[class] = narrow_u16(span / size);
        t.divmagic[class] = u32::MAX / narrow_u32(size) + 1;
        class += 1;
    }

    let mut i = 0;
    while i < t.size_to_class8.len() {
        t.size_to_class8[i] = smallest_class_holding(&RAW.size, i * SMALL_SIZE_DIV);
        i += 1;
    }
    let mut i = 0;
    while i < t.size_to_class128.len() {
        t.size_to_class128[i] =
            smallest_class_holding(&RAW.size, SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
        i += 1;
    }
    t
}

/// The public tables, evaluated once at compile time.
const TABLES: Tables = build_tables();

/// Bytes per object for each class; 0 for class 0.
pub static CLASS_TO_SIZE: [u32; NUM_SIZE_CLASSES] = TABLES.size;

/// Pages per span for each class; 0 for class 0.
pub static CLASS_TO_NPAGES: [u8; NUM_SIZE_CLASSES] = TABLES.npages;

/// Objects per span for each class (`npages * PAGE_SIZE / size`, rounded
/// down); 0 for class 0.
pub static CLASS_TO_NOBJS: [u16; NUM_SIZE_CLASSES] = TABLES.nobjs;

/// Reciprocal multipliers for [`divide_by_class_size`]: `u32::MAX / size + 1`
/// for each class, 0 for class 0.
pub static CLASS_TO_DIVMAGIC: [u32; NUM_SIZE_CLASSES] = TABLES.divmagic;

/// Class lookup for sizes up to [`SMALL_SIZE_MAX`]: entry `i` is the
/// smallest class whose size is at least `i * 8`, so a size `s` is looked up
/// at index `ceil(s / 8)`. Entry 0 is class 0.
pub static SIZE_TO_CLASS8: [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1] = TABLES.size_to_class8;

/// Class lookup for sizes above [`SMALL_SIZE_MAX`]: entry `i` is the
/// smallest class whose size is at least `1024 + i * 128`, so a size `s` is
/// looked up at index `ceil((s - 1024) / 128)`.
pub static SIZE_TO_CLASS128: [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1] =
    TABLES.size_to_class128;

/// Compile-time check of every invariant listed in the module documentation.
const fn check_invariants() {
    let t = &TABLES;
    assert!(t.size[0] == 0 && t.npages[0] == 0 && t.nobjs[0] == 0 && t.divmagic[0] == 0);
    assert!(t.size[NUM_SIZE_CLASSES - 1] as usize == MAX_SMALL_SIZE);
    assert!(t.size[TINY_SIZE_CLASS as usize] as usize == TINY_SIZE);

    let mut max_objs = 0;
    let mut max_pages = 0;
    let mut class = 1;
    while class < NUM_SIZE_CLASSES {
        let size = t.size[class] as usize;
        let span = t.npages[class] as usize * PAGE_SIZE;
        assert!(size > t.size[class - 1] as usize, "sizes must increase");
        assert!(span % size <= span / 8, "tail waste above 12.5%");
        if size <= SMALL_SIZE_MAX {
            assert!(size.is_multiple_of(SMALL_SIZE_DIV));
        } else {
            assert!(size.is_multiple_of(LARGE_SIZE_DIV));
        }

        // Division by multiplication is exact on 0..=span when
        // span * (magic * size - 2^32) < 2^32: writing n = q*size + r, the
        // product n * magic / 2^32 equals q + (r * 2^32 + n * err) / (size * 2^32),
        // and with r <= size - 1 the fraction stays below 1.
        let magic = t.divmagic[class] as u64;
        let err = magic * size as u64 - (1u64 << 32);
        assert!(err < size as u64);
        assert!((span as u64) * err < (1u64 << 32), "divmagic not exact");

        if t.nobjs[class] as usize > max_objs {
            max_objs = t.nobjs[class] as usize;
        }
        if t.npages[class] as usize > max_pages {
            max_pages = t.npages[class] as usize;
        }
        class += 1;
    }
    assert!(max_objs == MAX_OBJS_PER_SPAN);
    assert!(max_pages == MAX_SIZE_CLASS_NPAGES);
}

const _: () = check_invariants();

/// Table lookup shared by [`size_to_class`] and [`round_up_size`]; no
/// precondition. Sizes above [`MAX_SMALL_SIZE`] map to class 0 (large).
#[inline(always)]
fn lookup_class(size: usize) -> u8 {
    if size <= SMALL_SIZE_MAX {
        // size <= 1024, so the index is at most 128: always in bounds.
        SIZE_TO_CLASS8[size.div_ceil(SMALL_SIZE_DIV)]
    } else {
        // ceil((size - 1024) / 128), folded into one subtraction: size > 1024
        // here, so neither this nor the addition it replaces can overflow.
        let index = (size - (SMALL_SIZE_MAX + 1 - LARGE_SIZE_DIV)) / LARGE_SIZE_DIV;
        match SIZE_TO_CLASS128.get(index) {
            Some(&class) => class,
            None => 0,
        }
    }
}

/// Smallest class whose objects hold `size` bytes.
///
/// Requires `1 <= size <= MAX_SMALL_SIZE` (checked by `debug_assert!`). O(1):
/// one branch on the size range, one table load. Never panics in release
/// builds: a size above [`MAX_SMALL_SIZE`] yields class 0, the large-object
/// placeholder, and size 0 yields class 0 as well.
#[inline]
pub fn size_to_class(size: usize) -> u8 {
    debug_assert!(
        (1..=MAX_SMALL_SIZE).contains(&size),
        "size_to_class: size {size} outside 1..={MAX_SMALL_SIZE}"
    );
    lookup_class(size)
}

/// Bytes per object of `class`.
///
/// Requires `class < NUM_SIZE_CLASSES` (checked by `debug_assert!`); an
/// out-of-range class reads as 0 in release builds, like class 0.
#[inline]
pub fn class_size(class: u8) -> usize {
    debug_assert!((class as usize) < NUM_SIZE_CLASSES, "bad class {class}");
    CLASS_TO_SIZE.get(class as usize).map_or(0, |&s| s as usize)
}

/// Pages per span of `class`.
///
/// Requires `class < NUM_SIZE_CLASSES` (checked by `debug_assert!`); an
/// out-of-range class reads as 0 in release builds, like class 0.
#[inline]
pub fn class_npages(class: u8) -> usize {
    debug_assert!((class as usize) < NUM_SIZE_CLASSES, "bad class {class}");
    CLASS_TO_NPAGES
        .get(class as usize)
        .map_or(0, |&n| n as usize)
}

/// Objects per span of `class`.
///
/// Requires `class < NUM_SIZE_CLASSES` (checked by `debug_assert!`); an
/// out-of-range class reads as 0 in release builds, like class 0.
#[inline]
pub fn class_nobjs(class: u8) -> usize {
    debug_assert!((class as usize) < NUM_SIZE_CLASSES, "bad class {class}");
    CLASS_TO_NOBJS
        .get(class as usize)
        .map_or(0, |&n| n as usize)
}

/// `offset / class_size(class)` computed as `(offset * magic) >> 32`, where
/// `magic` is `CLASS_TO_DIVMAGIC[class]`.
///
/// Exact for every `0 <= offset <= class_npages(class) * PAGE_SIZE` (proved
/// at compile time and brute-forced by the tests). Requires `offset` to fit
/// in 32 bits (checked by `debug_assert!`); the multiplication wraps rather
/// than panicking if it does not.
#[inline]
pub fn divide_by_class_size(offset: usize, magic: u32) -> usize {
    debug_assert!(
        offset <= u32::MAX as usize,
        "divide_by_class_size: offset {offset} too large"
    );
    ((offset as u64).wrapping_mul(u64::from(magic)) >> 32) as usize
}

/// The number of bytes actually reserved for a `size`-byte request (Go's
/// `roundupsize`, without malloc headers).
///
/// Sizes up to [`MAX_SMALL_SIZE`] round up to their class size (0 stays 0);
/// larger sizes round up to a whole number of pages. If rounding up to pages
/// would overflow, `size` is returned unchanged so the caller's allocation
/// fails on its own terms.
pub fn round_up_size(size: usize) -> usize {
    if size <= MAX_SMALL_SIZE {
        class_size(lookup_class(size))
    } else {
        match size.checked_add(PAGE_SIZE - 1) {
            Some(padded) => padded & !(PAGE_SIZE - 1),
            None => size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's published table, copied from the header comment of
    /// `src/internal/runtime/gc/sizeclasses.go`:
    /// (class, bytes/obj, bytes/span, objects, tail waste).
    const GO_TABLE: [(u8, u32, u32, u16, u32); NUM_SIZE_CLASSES - 1] = [
        (1, 8, 8192, 1024, 0),
        (2, 16, 8192, 512, 0),
        (3, 24, 8192, 341, 8),
        (4, 32, 8192, 256, 0),
        (5, 48, 8192, 170, 32),
        (6, 64, 8192, 128, 0),
        (7, 80, 8192, 102, 32),
        (8, 96, 8192, 85, 32),
        (9, 112, 8192, 73, 16),
        (10, 128, 8192, 64, 0),
        (11, 144, 8192, 56, 128),
        (12, 160, 8192, 51, 32),
        (13, 176, 8192, 46, 96),
        (14, 192, 8192, 42, 128),
        (15, 208, 8192, 39, 80),
        (16, 224, 8192, 36, 128),
        (17, 240, 8192, 34, 32),
        (18, 256, 8192, 32, 0),
        (19, 288, 8192, 28, 128),
        (20, 320, 8192, 25, 192),
        (21, 352, 8192, 23, 96),
        (22, 384, 8192, 21, 128),
        (23, 416, 8192, 19, 288),
        (24, 448, 8192, 18, 128),
        (25, 480, 8192, 17, 32),
        (26, 512, 8192, 16, 0),
        (27, 576, 8192, 14, 128),
        (28, 640, 8192, 12, 512),
        (29, 704, 8192, 11, 448),
        (30, 768, 8192, 10, 512),
        (31, 896, 8192, 9, 128),
        (32, 1024, 8192, 8, 0),
        (33, 1152, 8192, 7, 128),
        (34, 1280, 8192, 6, 512),
        (35, 1408, 16384, 11, 896),
        (36, 1536, 8192, 5, 512),
        (37, 1792, 16384, 9, 256),
        (38, 2048, 8192, 4, 0),
        (39, 2304, 16384, 7, 256),
        (40, 2688, 8192, 3, 128),
        (41, 3072, 24576, 8, 0),
        (42, 3200, 16384, 5, 384),
        (43, 3456, 24576, 7, 384),
        (44, 4096, 8192, 2, 0),
        (45, 4864, 24576, 5, 256),
        (46, 5376, 16384, 3, 256),
        (47, 6144, 24576, 4, 0),
        (48, 6528, 32768, 5, 128),
        (49, 6784, 40960, 6, 256),
        (50, 6912, 49152, 7, 768),
        (51, 8192, 8192, 1, 0),
        (52, 9472, 57344, 6, 512),
        (53, 9728, 49152, 5, 512),
        (54, 10240, 40960, 4, 0),
        (55, 10880, 32768, 3, 128),
        (56, 12288, 24576, 2, 0),
        (57, 13568, 40960, 3, 256),
        (58, 14336, 57344, 4, 0),
        (59, 16384, 16384, 1, 0),
        (60, 18432, 73728, 4, 0),
        (61, 19072, 57344, 3, 128),
        (62, 20480, 40960, 2, 0),
        (63, 21760, 65536, 3, 256),
        (64, 24576, 24576, 1, 0),
        (65, 27264, 81920, 3, 128),
        (66, 28672, 57344, 2, 0),
        (67, 32768, 32768, 1, 0),
    ];

    /// Go's `SizeToSizeClass8`, verbatim.
    const GO_SIZE_TO_CLASS8: [u8; 129] = [
        0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15,
        15, 16, 16, 17, 17, 18, 18, 19, 19, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21, 22, 22, 22, 22,
        23, 23, 23, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27, 27, 27, 27, 27,
        27, 28, 28, 28, 28, 28, 28, 28, 28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30,
        30, 30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 32, 32, 32, 32, 32,
        32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    ];

    /// Go's `SizeToSizeClass128`, verbatim.
    const GO_SIZE_TO_CLASS128: [u8; 249] = [
        32, 33, 34, 35, 36, 37, 37, 38, 38, 39, 39, 40, 40, 40, 41, 41, 41, 42, 43, 43, 44, 44, 44,
        44, 44, 45, 45, 45, 45, 45, 45, 46, 46, 46, 46, 47, 47, 47, 47, 47, 47, 48, 48, 48, 49, 49,
        50, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 52, 52, 52, 52, 52, 52, 52, 52, 52, 52, 53, 53,
        54, 54, 54, 54, 55, 55, 55, 55, 55, 56, 56, 56, 56, 56, 56, 56, 56, 56, 56, 56, 57, 57, 57,
        57, 57, 57, 57, 57, 57, 57, 58, 58, 58, 58, 58, 58, 59, 59, 59, 59, 59, 59, 59, 59, 59, 59,
        59, 59, 59, 59, 59, 59, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 61,
        61, 61, 61, 61, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62, 63, 63, 63, 63, 63, 63, 63, 63,
        63, 63, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
        64, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 66,
        66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67,
        67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67,
    ];

    #[test]
    fn matches_go_class_count() {
        assert_eq!(CLASS_TO_SIZE.len(), GO_TABLE.len() + 1);
        assert_eq!(NUM_SIZE_CLASSES, 68);
        for (i, row) in GO_TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i + 1, "Go table rows out of order");
        }
    }

    #[test]
    fn matches_go_sizes_pages_objects_and_tail() {
        assert_eq!(CLASS_TO_SIZE[0], 0);
        assert_eq!(CLASS_TO_NPAGES[0], 0);
        assert_eq!(CLASS_TO_NOBJS[0], 0);
        for &(class, size, span, objs, tail) in &GO_TABLE {
            let c = class as usize;
            assert_eq!(CLASS_TO_SIZE[c], size, "size of class {class}");
            assert_eq!(
                CLASS_TO_NPAGES[c] as usize * PAGE_SIZE,
                span as usize,
                "span of class {class}"
            );
            assert_eq!(CLASS_TO_NOBJS[c], objs, "objects of class {class}");
            let our_span = class_npages(class) * PAGE_SIZE;
            assert_eq!(
                our_span - class_nobjs(class) * class_size(class),
                tail as usize,
                "tail waste of class {class}"
            );
        }
    }

    #[test]
    fn matches_go_divmagic() {
        // Go writes this column as `^uint32(0)/size + 1` over its own sizes.
        assert_eq!(CLASS_TO_DIVMAGIC[0], 0);
        for &(class, size, ..) in &GO_TABLE {
            assert_eq!(CLASS_TO_DIVMAGIC[class as usize], u32::MAX / size + 1);
        }
    }

    #[test]
    fn matches_go_lookup_tables() {
        assert_eq!(SIZE_TO_CLASS8, GO_SIZE_TO_CLASS8);
        assert_eq!(SIZE_TO_CLASS128, GO_SIZE_TO_CLASS128);
    }

    #[test]
    fn tail_waste_at_most_one_eighth() {
        for class in 1..NUM_SIZE_CLASSES as u8 {
            let span = class_npages(class) * PAGE_SIZE;
            assert!(span % class_size(class) <= span / 8, "class {class}");
            assert_eq!(class_nobjs(class), span / class_size(class));
        }
    }

    #[test]
    fn small_classes_use_one_page() {
        for class in 1..NUM_SIZE_CLASSES as u8 {
            if class_size(class) <= 512 {
                assert_eq!(class_npages(class), 1, "class {class}");
            }
        }
    }

    #[test]
    fn sizes_strictly_increase_and_end_at_max() {
        for class in 1..NUM_SIZE_CLASSES {
            assert!(CLASS_TO_SIZE[class] > CLASS_TO_SIZE[class - 1]);
        }
        assert_eq!(class_size(NUM_SIZE_CLASSES as u8 - 1), MAX_SMALL_SIZE);
    }

    #[test]
    fn span_limits_are_tight() {
        let max_pages = (1..NUM_SIZE_CLASSES as u8).map(class_npages).max();
        let max_objs = (1..NUM_SIZE_CLASSES as u8).map(class_nobjs).max();
        assert_eq!(max_pages, Some(MAX_SIZE_CLASS_NPAGES));
        assert_eq!(max_objs, Some(MAX_OBJS_PER_SPAN));
    }

    #[test]
    fn size_granularity() {
        for class in 1..NUM_SIZE_CLASSES as u8 {
            let size = class_size(class);
            if size >= SMALL_SIZE_MAX {
                assert_eq!(size % LARGE_SIZE_DIV, 0, "class {class}");
            } else {
                assert_eq!(size % SMALL_SIZE_DIV, 0, "class {class}");
            }
        }
    }

    #[test]
    fn tiny_class() {
        assert_eq!(class_size(TINY_SIZE_CLASS), TINY_SIZE);
        assert_eq!(size_to_class(TINY_SIZE), TINY_SIZE_CLASS);
    }

    #[test]
    fn lookup_tables_follow_rule() {
        let smallest = |bytes: usize| {
            (0..NUM_SIZE_CLASSES)
                .find(|&c| CLASS_TO_SIZE[c] as usize >= bytes)
                .map(|c| c as u8)
        };
        for (i, &class) in SIZE_TO_CLASS8.iter().enumerate() {
            assert_eq!(Some(class), smallest(i * SMALL_SIZE_DIV), "index {i}");
        }
        for (i, &class) in SIZE_TO_CLASS128.iter().enumerate() {
            let bytes = SMALL_SIZE_MAX + i * LARGE_SIZE_DIV;
            assert_eq!(Some(class), smallest(bytes), "index {i}");
        }
    }

    #[test]
    fn size_to_class_picks_smallest_fitting_class() {
        for size in 1..=MAX_SMALL_SIZE {
            let class = size_to_class(size);
            assert!(class >= 1, "size {size}");
            assert!(class_size(class) >= size, "size {size} class {class}");
            assert!(
                class_size(class - 1) < size,
                "size {size}: class {} also fits",
                class - 1
            );
        }
    }

    #[test]
    fn divide_by_class_size_is_exact() {
        for class in 1..NUM_SIZE_CLASSES as u8 {
            let size = class_size(class);
            let magic = CLASS_TO_DIVMAGIC[class as usize];
            // Inclusive of the span end, as Go's generator checks.
            for offset in 0..=class_npages(class) * PAGE_SIZE {
                assert_eq!(
                    divide_by_class_size(offset, magic),
                    offset / size,
                    "class {class} offset {offset}"
                );
            }
        }
    }

    #[test]
    fn round_up_small() {
        assert_eq!(round_up_size(0), 0);
        assert_eq!(round_up_size(1), 8);
        assert_eq!(round_up_size(8), 8);
        assert_eq!(round_up_size(9), 16);
        assert_eq!(round_up_size(17), 24);
        assert_eq!(round_up_size(25), 32);
        assert_eq!(round_up_size(33), 48);
        assert_eq!(round_up_size(513), 576);
        assert_eq!(round_up_size(1024), 1024);
        assert_eq!(round_up_size(1025), 1152);
        assert_eq!(round_up_size(8193), 9472);
        assert_eq!(round_up_size(32767), 32768);
        assert_eq!(round_up_size(MAX_SMALL_SIZE), MAX_SMALL_SIZE);
        for size in 1..=MAX_SMALL_SIZE {
            let r = round_up_size(size);
            assert_eq!(r, class_size(size_to_class(size)));
            assert_eq!(round_up_size(r), r, "not idempotent at {size}");
        }
    }

    #[test]
    fn round_up_large() {
        assert_eq!(round_up_size(MAX_SMALL_SIZE + 1), 5 * PAGE_SIZE);
        assert_eq!(round_up_size(5 * PAGE_SIZE), 5 * PAGE_SIZE);
        assert_eq!(round_up_size(5 * PAGE_SIZE + 1), 6 * PAGE_SIZE);
        assert_eq!(round_up_size(1 << 30), 1 << 30);
        assert_eq!(round_up_size((1 << 30) + 1), (1 << 30) + PAGE_SIZE);
        let top = usize::MAX & !(PAGE_SIZE - 1);
        assert_eq!(round_up_size(top), top);
        // Rounding would overflow: the size comes back unchanged.
        assert_eq!(round_up_size(top + 1), top + 1);
        assert_eq!(round_up_size(usize::MAX), usize::MAX);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "outside")]
    fn size_to_class_rejects_zero_in_debug() {
        size_to_class(0);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "outside")]
    fn size_to_class_rejects_large_in_debug() {
        size_to_class(MAX_SMALL_SIZE + 1);
    }

    #[test]
    fn out_of_range_lookup_is_large_class() {
        // The precondition-free path used by release builds.
        assert_eq!(lookup_class(0), 0);
        assert_eq!(lookup_class(MAX_SMALL_SIZE + 1), 0);
        assert_eq!(lookup_class(usize::MAX), 0);
    }
}

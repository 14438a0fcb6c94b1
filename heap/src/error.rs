//! Errors the allocator reports instead of aborting.
//!
//! Go's runtime throws (a fatal error) when it runs out of memory. A library
//! cannot do that to its host program, so every way an allocation or a heap
//! construction can fail is a variant of [`AllocError`] or [`ConfigError`],
//! returned as a `Result`. None of them leaves the heap inconsistent: a failed
//! allocation has no effect other than possibly having swept some spans.
//!
//! Corresponds to the `throw("out of memory")` paths of Go's `malloc.go` and
//! `mheap.go`.

use std::fmt;

/// Why an allocation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocError {
    /// A request for zero bytes. The heap never hands out zero-sized blocks
    /// (Go returns a shared `zerobase`; a typed layer on top of this crate
    /// should not need heap memory for zero-sized values at all).
    ZeroSize,
    /// The request is larger than the heap's configured `max_object_size`.
    TooLarge {
        /// Bytes asked for.
        requested: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The alignment is not a power of two, or larger than a page
    /// (8 KiB), which is the largest alignment spans can guarantee.
    BadAlignment {
        /// The alignment asked for.
        align: usize,
    },
    /// Serving the request would take the heap's in-use memory past its
    /// configured hard limit (`heap_limit`).
    HeapLimit {
        /// Bytes the request needed from the page heap (whole pages).
        requested: usize,
        /// Bytes of spans in use before the request.
        in_use: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The operating system refused to reserve or map address space
    /// (`mmap`/`mprotect` failed), or the arena index is full.
    OutOfMemory {
        /// Bytes the heap tried to reserve or map.
        requested: usize,
        /// The OS error number (`errno`), or 0 when the arena index is full.
        errno: i32,
    },
    /// Not an error: the collector asked this mcache's owner to reach a
    /// handshake (`MHeap::request_handshake`) and the mcache was set to
    /// report it (`MCache::report_handshakes`). Nothing was allocated;
    /// the owner runs its handshake, calls `MCache::sync` and retries.
    /// Never returned by a cache that does not report handshakes, and
    /// never seen by users of the typed API.
    #[doc(hidden)]
    Handshake,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::ZeroSize => write!(f, "zero-sized allocation request"),
            AllocError::TooLarge { requested, max } => write!(
                f,
                "allocation of {requested} bytes exceeds the maximum object size of {max} bytes"
            ),
            AllocError::BadAlignment { align } => write!(
                f,
                "alignment {align} is not a power of two no larger than the page size (8192)"
            ),
            AllocError::HeapLimit {
                requested,
                in_use,
                limit,
            } => write!(
                f,
                "heap limit exceeded: {in_use} bytes in use + {requested} requested > limit of {limit} bytes"
            ),
            AllocError::OutOfMemory { requested, errno } if *errno == 0 => write!(
                f,
                "out of address space: the arena index is full ({requested} bytes requested)"
            ),
            AllocError::OutOfMemory { requested, errno } => write!(
                f,
                "the OS refused to map {requested} bytes: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            AllocError::Handshake => {
                f.write_str("the collector requested a handshake (retry after it)")
            }
        }
    }
}

impl std::error::Error for AllocError {}

/// Why a heap configuration was rejected by [`crate::HeapConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `arena_size` must be a power of two of at least 4 MiB (one page
    /// allocator chunk) and at most 1 GiB.
    BadArenaSize(usize),
    /// `max_object_size` must be at least 1 byte.
    BadMaxObjectSize(usize),
    /// `heap_limit` must be at least one arena.
    BadHeapLimit(usize),
    /// The collector's `mark_workers` must be between 1 and
    /// [`MAX_MARK_WORKERS`] (checked by the typed layer's builder).
    BadMarkWorkers(usize),
}

/// The most mark workers a collector may be configured with.
pub const MAX_MARK_WORKERS: usize = 256;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadArenaSize(n) => write!(
                f,
                "arena_size {n} must be a power of two between 4 MiB and 1 GiB"
            ),
            ConfigError::BadMaxObjectSize(n) => {
                write!(f, "max_object_size {n} must be at least 1")
            }
            ConfigError::BadHeapLimit(n) => {
                write!(f, "heap_limit {n} must be at least one arena")
            }
            ConfigError::BadMarkWorkers(n) => write!(
                f,
                "mark_workers {n} must be between 1 and {MAX_MARK_WORKERS}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

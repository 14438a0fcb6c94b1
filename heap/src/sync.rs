//! The one door to atomics, locks, threads and shared cells.
//!
//! Every atomic, lock, `Arc`, `UnsafeCell` shared between threads, and thread
//! spawn in `spanheap-heap`, `spanheap-gc` and `spanheap` goes through this
//! module. Under `RUSTFLAGS="--cfg loom"` it maps to [loom]'s types, so the
//! models in `loom-tests/` explore the interleavings of the *real* allocator
//! and collector code, not a copy of it (the approach of crossbeam's
//! `primitive` module and tokio's `loom` module).
//!
//! The two back ends expose one API:
//!
//! | item | normal build | `cfg(loom)` |
//! |---|---|---|
//! | `atomic::*` | `std::sync::atomic` | `loom::sync::atomic`, wrapped so that `SeqCst` is sequentially consistent (loom models it as `AcqRel`) |
//! | `Mutex`, `MutexGuard` | `parking_lot` (no poisoning) | `loom::sync::Mutex`, wrapped to drop poisoning |
//! | `Condvar` | `parking_lot::Condvar` | `loom::sync::Condvar`, wrapped |
//! | `RwLock` | `parking_lot::RwLock` | `loom::sync::RwLock`, wrapped to drop poisoning |
//! | `Arc` | `std::sync::Arc` | `loom::sync::Arc` |
//! | `UnsafeCell` | `std::cell::UnsafeCell` with loom's `with`/`with_mut` API | `loom::cell::UnsafeCell` (checks every access for races) |
//! | `thread` | `std::thread` | `loom::thread` |
//! | `deque` (`Worker`, `Stealer`, `Injector`) | `crossbeam_deque` | a loom-mutex model of it with the same semantics (see `deque`) |
//! | `hint::spin_loop` | `std::hint::spin_loop` | `loom::hint::spin_loop` (a yield point) |
//! | `thread_local!` | `std::thread_local!` | `loom::thread_local!` (one value per loom thread) |
//!
//! `.ci/check-sync-shim` fails CI if library code anywhere else names
//! `std::sync`, `core::sync`, `parking_lot` or `std::thread` directly.
//! (clippy's `disallowed_types` cannot do this job: it sees through the
//! re-exports below and would flag the shim's own users.)
//!
//! Large non-protocol tables (statistics per size class, the arena index)
//! use [`unmodeled`] atomics, `std`'s in both builds.
//!
//! Constants that size buffers shrink under loom (see [`LOOM`]) so that models
//! stay small.
//!
//! [loom]: https://docs.rs/loom

/// True when compiled for the loom model checker. Code uses it to shrink
/// batch sizes and buffers so that models stay tractable.
pub const LOOM: bool = cfg!(loom);

#[cfg(not(loom))]
mod imp {
    pub use std::sync::Arc;

    /// A `Copy` value read and written atomically: lock-free for sizes a
    /// native atomic covers, a striped seqlock otherwise
    /// (`crossbeam_utils::atomic::AtomicCell`). `GcCell` stores its value
    /// in one, so the collector may read it while a mutator writes.
    pub use crossbeam_utils::atomic::AtomicCell;

    /// Loads the value of a lock-free `AtomicCell` with the same native
    /// atomic load its `load` uses, without requiring `T: Copy`, as a
    /// bitwise copy that is never dropped. Returns `None` if `T` is not
    /// lock-free (the cell then uses a lock this function cannot take).
    ///
    /// # Safety
    /// 1. Every value ever stored in the cell may be duplicated bitwise
    ///    (its type is `Copy` in fact; the caller's API only stores through
    ///    `Copy`-bounded methods).
    pub unsafe fn atomic_cell_load_raw<T>(
        cell: &AtomicCell<T>,
    ) -> Option<std::mem::ManuallyDrop<T>> {
        use std::mem::{ManuallyDrop, align_of, size_of, transmute_copy};
        use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
        let p = cell.as_ptr();
        // The same selection as crossbeam's `atomic!` (`can_transmute`).
        macro_rules! try_width {
            ($a:ty) => {
                if size_of::<T>() == size_of::<$a>() && align_of::<T>() >= align_of::<$a>() {
                    // The cell's storage is a `T` with the size and at
                    // least the alignment of `$a`, which crossbeam accesses
                    // only through `$a` (lock-free path).
                    // SAFETY: as just said; the copy: obligation 1.
                    return Some(unsafe {
                        let v = (&*(p as *const $a)).load(Ordering::Acquire);
                        ManuallyDrop::new(transmute_copy::<_, T>(&v))
                    });
                }
            };
        }
        if size_of::<T>() == 0 {
            // SAFETY: a zero-sized value has no bytes to read.
            return Some(unsafe { ManuallyDrop::new(std::ptr::read(p)) });
        }
        try_width!(AtomicU8);
        try_width!(AtomicU16);
        try_width!(AtomicU32);
        try_width!(AtomicU64);
        None
    }

    /// Atomic integer and pointer types, and fences.
    pub mod atomic {
        pub use std::sync::atomic::{
            AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU16, AtomicU32, AtomicU64,
            AtomicUsize, Ordering, fence,
        };
    }

    /// Thread spawning and yielding.
    pub mod thread {
        pub use std::thread::{
            Builder, JoinHandle, available_parallelism, current, park, sleep, spawn, yield_now,
        };
    }

    /// Work-stealing deques for the parallel mark workers
    /// (`crossbeam_deque`).
    pub mod deque {
        pub use crossbeam_deque::{Injector, Steal, Stealer, Worker};
    }

    /// Spin-wait hint.
    pub mod hint {
        pub use std::hint::spin_loop;
    }

    /// Thread-local statics (`std`'s macro).
    pub use std::thread_local;

    /// A mutual-exclusion lock without poisoning (`parking_lot`).
    pub type Mutex<T> = parking_lot::Mutex<T>;
    /// The guard of [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A reader-writer lock without poisoning (`parking_lot`). `read`
    /// is recursive: a thread holding it shared may take it shared again
    /// even while a writer waits (parking_lot's `read_recursive`), because
    /// an mcache slow path can reach another mcache's flush through a
    /// `Drop` run by lazy sweeping.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(parking_lot::RwLock<T>);
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;

    impl<T> RwLock<T> {
        /// A new lock around `value`.
        pub const fn new(value: T) -> Self {
            RwLock(parking_lot::RwLock::new(value))
        }
        /// Acquires the lock shared (recursively).
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read_recursive()
        }
        /// Acquires the lock exclusively.
        pub fn write(&self) -> parking_lot::RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }

    /// A condition variable paired with [`Mutex`].
    #[derive(Default, Debug)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub const fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        /// Blocks until notified; `guard` is released while waiting.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }
        /// Blocks until notified or `timeout` passes. Returns true on timeout.
        pub fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: std::time::Duration,
        ) -> bool {
            self.0.wait_for(guard, timeout).timed_out()
        }
        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
        /// Wakes all waiters.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// `std::cell::UnsafeCell` with loom's closure-based access API, so the
    /// same call sites compile against both back ends.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// Wraps `value`.
        #[inline(always)]
        pub const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }
    }

    impl<T: ?Sized> UnsafeCell<T> {
        /// Gives `f` a shared raw pointer to the contents.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        /// Gives `f` a mutable raw pointer to the contents.
        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
        /// Exclusive access through `&mut self` (no synchronisation needed).
        #[inline(always)]
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut()
        }
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::cell::UnsafeCell;
    pub use loom::sync::Arc;

    /// loom's model of `AtomicCell`: a mutex around the value, so every
    /// load and store is a point where loom can switch threads.
    #[derive(Debug)]
    pub struct AtomicCell<T>(loom::sync::Mutex<T>);

    impl<T: Copy> AtomicCell<T> {
        /// A new cell.
        pub fn new(v: T) -> Self {
            AtomicCell(loom::sync::Mutex::new(v))
        }
        /// Reads the value.
        pub fn load(&self) -> T {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        /// Writes the value.
        pub fn store(&self, v: T) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
        }
        /// Writes the value and returns the old one.
        pub fn swap(&self, v: T) -> T {
            std::mem::replace(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()), v)
        }
    }

    /// Atomic integer and pointer types, and fences: loom's, with
    /// `SeqCst` made sequentially consistent.
    ///
    /// loom treats a `SeqCst` load, store or read-modify-write as
    /// `AcqRel` (its README, "Unsupported features"), so the store-buffer
    /// outcome of a Dekker handshake — each thread stores its flag, then
    /// misses the other's — would be explored although the real program
    /// cannot produce it, and the models would report bugs that are not
    /// there. loom does implement `fence(SeqCst)`. So these wrappers put a
    /// `SeqCst` fence after every `SeqCst` store and before every
    /// `SeqCst` load, and around every `SeqCst` read-modify-write (the
    /// leading/trailing-fence mapping of C11 `SeqCst` accesses). This is
    /// slightly *stronger* than C11: a `SeqCst` store followed by a
    /// `Relaxed` load of another location is also kept in order, so a
    /// model cannot find a bug that needs that reordering (on x86-64 a
    /// `SeqCst` store is a full barrier anyway). Other orderings pass
    /// through unchanged.
    pub mod atomic {
        use loom::sync::atomic as l;
        pub use loom::sync::atomic::{Ordering, fence};

        #[inline]
        fn before(o: Ordering) {
            if o == Ordering::SeqCst {
                l::fence(Ordering::SeqCst);
            }
        }

        /// A read-modify-write `f` with fences on both sides if `SeqCst`.
        #[inline]
        fn fenced<R>(o: Ordering, f: impl FnOnce() -> R) -> R {
            before(o);
            let r = f();
            before(o);
            r
        }

        macro_rules! seqcst_atomic {
            ($name:ident, $t:ty $(, $int:ident)?) => {
                /// loom's atomic of the same name with `SeqCst` made
                /// sequentially consistent (see the module docs).
                #[derive(Debug, Default)]
                pub struct $name(l::$name);

                impl $name {
                    /// A new atomic.
                    pub fn new(v: $t) -> Self {
                        $name(l::$name::new(v))
                    }
                    /// Loads the value.
                    pub fn load(&self, o: Ordering) -> $t {
                        before(o);
                        self.0.load(o)
                    }
                    /// Stores a value.
                    pub fn store(&self, v: $t, o: Ordering) {
                        self.0.store(v, o);
                        before(o);
                    }
                    /// Swaps the value.
                    pub fn swap(&self, v: $t, o: Ordering) -> $t {
                        fenced(o, || self.0.swap(v, o))
                    }
                    /// Compare-and-exchange.
                    pub fn compare_exchange(
                        &self,
                        c: $t,
                        n: $t,
                        s: Ordering,
                        f: Ordering,
                    ) -> Result<$t, $t> {
                        fenced(s, || self.0.compare_exchange(c, n, s, f))
                    }
                    /// Compare-and-exchange (may fail spuriously).
                    pub fn compare_exchange_weak(
                        &self,
                        c: $t,
                        n: $t,
                        s: Ordering,
                        f: Ordering,
                    ) -> Result<$t, $t> {
                        fenced(s, || self.0.compare_exchange_weak(c, n, s, f))
                    }
                }
                $(seqcst_atomic!(@$int $name, $t);)?
            };
            (@int $name:ident, $t:ty) => {
                impl $name {
                    seqcst_atomic!(@rmw $t, fetch_add, fetch_sub, fetch_or, fetch_and, fetch_xor, fetch_max, fetch_min);
                }
            };
            (@bool $name:ident, $t:ty) => {
                impl $name {
                    seqcst_atomic!(@rmw $t, fetch_or, fetch_and, fetch_xor);
                }
            };
            (@rmw $t:ty, $($op:ident),*) => {$(
                /// Read-modify-write.
                pub fn $op(&self, v: $t, o: Ordering) -> $t {
                    fenced(o, || self.0.$op(v, o))
                }
            )*};
        }

        seqcst_atomic!(AtomicBool, bool, bool);
        seqcst_atomic!(AtomicU8, u8, int);
        seqcst_atomic!(AtomicU16, u16, int);
        seqcst_atomic!(AtomicU32, u32, int);
        seqcst_atomic!(AtomicU64, u64, int);
        seqcst_atomic!(AtomicUsize, usize, int);
        seqcst_atomic!(AtomicIsize, isize, int);

        /// loom's `AtomicPtr` with `SeqCst` made sequentially consistent.
        #[derive(Debug)]
        pub struct AtomicPtr<T>(l::AtomicPtr<T>);

        impl<T> Default for AtomicPtr<T> {
            fn default() -> Self {
                AtomicPtr::new(std::ptr::null_mut())
            }
        }

        impl<T> AtomicPtr<T> {
            /// A new atomic pointer.
            pub fn new(v: *mut T) -> Self {
                AtomicPtr(l::AtomicPtr::new(v))
            }
            /// Loads the pointer.
            pub fn load(&self, o: Ordering) -> *mut T {
                before(o);
                self.0.load(o)
            }
            /// Stores a pointer.
            pub fn store(&self, v: *mut T, o: Ordering) {
                self.0.store(v, o);
                before(o);
            }
            /// Swaps the pointer.
            pub fn swap(&self, v: *mut T, o: Ordering) -> *mut T {
                fenced(o, || self.0.swap(v, o))
            }
            /// Compare-and-exchange.
            pub fn compare_exchange(
                &self,
                c: *mut T,
                n: *mut T,
                s: Ordering,
                f: Ordering,
            ) -> Result<*mut T, *mut T> {
                fenced(s, || self.0.compare_exchange(c, n, s, f))
            }
            /// Compare-and-exchange (may fail spuriously).
            pub fn compare_exchange_weak(
                &self,
                c: *mut T,
                n: *mut T,
                s: Ordering,
                f: Ordering,
            ) -> Result<*mut T, *mut T> {
                fenced(s, || self.0.compare_exchange_weak(c, n, s, f))
            }
        }
    }

    /// Thread spawning and yielding (loom's).
    pub mod thread {
        pub use loom::thread::{Builder, JoinHandle, current, park, spawn, yield_now};
        /// Under loom, sleeping is a yield point.
        pub fn sleep(_d: std::time::Duration) {
            loom::thread::yield_now();
        }
        /// Under loom, two hardware threads.
        pub fn available_parallelism() -> std::io::Result<std::num::NonZeroUsize> {
            Ok(std::num::NonZeroUsize::new(2).expect("2 > 0"))
        }

        /// Scoped fan-out for loom, which has no scoped threads: runs
        /// `job(item)` for every item of `rest` on a loom thread of its
        /// own and `here` on this thread, and joins them all before
        /// returning. (The normal build fans out on a rayon pool.)
        pub fn fan_out<'a, T: Send + 'a>(
            rest: Vec<T>,
            job: &'a (dyn Fn(T) + Sync + 'a),
            here: impl FnOnce(),
        ) {
            /// Joins the spawned threads, also when `here` unwinds.
            struct JoinAll(Vec<loom::thread::JoinHandle<()>>);
            impl Drop for JoinAll {
                fn drop(&mut self) {
                    for h in self.0.drain(..) {
                        // A panicking thread has failed the model already.
                        let _ = h.join();
                    }
                }
            }
            let mut spawned = JoinAll(Vec::with_capacity(rest.len()));
            for item in rest {
                let f: Box<dyn FnOnce() + Send + 'a> = Box::new(move || job(item));
                // SAFETY: only the lifetime changes (same fat pointer).
                // `spawned` joins every thread started here before this
                // function returns or unwinds past its frame, so the
                // closure, and what it borrows for 'a, is not used after
                // 'a ends.
                let f: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(f) };
                spawned.0.push(loom::thread::spawn(f));
            }
            here();
            drop(spawned);
        }
    }

    /// loom's model of `crossbeam_deque`: crossbeam's lock-free deques are
    /// opaque to loom (their atomics are `std`'s), so loom would neither
    /// switch threads inside a deque operation nor see that a push and a
    /// steal conflict — and would prune the interleavings in which work
    /// moves between workers. This model keeps each queue in a loom
    /// mutex, so every operation is a visible step, with crossbeam's
    /// semantics where the collector relies on them: a worker pops its own
    /// end (LIFO), stealers and the injector take the other; a batch
    /// steal takes half of the source (at least one) into the thief's
    /// deque — in transit in the thief's hands between the two locks, as
    /// crossbeam's batch is between its CAS and its buffer write — and
    /// pops one. `Steal::Retry` is never returned (the collector's retry
    /// loops are not modelled).
    #[allow(missing_docs)] // crossbeam_deque's API, documented there
    pub mod deque {
        pub use crossbeam_deque::Steal;

        use super::{Arc, Mutex};
        use std::collections::VecDeque;

        /// One queue: the owner's end is the back.
        struct Queue<T>(Mutex<VecDeque<T>>);

        impl<T> Queue<T> {
            fn new() -> Self {
                Queue(Mutex::new(VecDeque::new()))
            }
            fn steal(&self) -> Steal<T> {
                self.0
                    .lock()
                    .pop_front()
                    .map_or(Steal::Empty, Steal::Success)
            }
            /// Moves half of the queue (at least one, from its steal end)
            /// into `dest` and pops one of them from `dest`'s pop end.
            fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
                let mut batch: VecDeque<T> = {
                    let mut q = self.0.lock();
                    let n = q.len().div_ceil(2);
                    q.drain(..n).collect()
                };
                let first = if dest.lifo {
                    batch.pop_back()
                } else {
                    batch.pop_front()
                };
                let Some(first) = first else {
                    return Steal::Empty;
                };
                if !batch.is_empty() {
                    dest.q.0.lock().extend(batch);
                }
                Steal::Success(first)
            }
            fn is_empty(&self) -> bool {
                self.0.lock().is_empty()
            }
        }

        /// A worker's own deque.
        pub struct Worker<T> {
            q: Arc<Queue<T>>,
            lifo: bool,
        }

        /// Another worker's handle on a deque.
        pub struct Stealer<T> {
            q: Arc<Queue<T>>,
        }

        /// The shared FIFO queue.
        pub struct Injector<T> {
            q: Queue<T>,
        }

        impl<T> Worker<T> {
            pub fn new_lifo() -> Self {
                Worker {
                    q: Arc::new(Queue::new()),
                    lifo: true,
                }
            }
            pub fn new_fifo() -> Self {
                Worker {
                    q: Arc::new(Queue::new()),
                    lifo: false,
                }
            }
            pub fn push(&self, t: T) {
                self.q.0.lock().push_back(t);
            }
            pub fn pop(&self) -> Option<T> {
                let mut q = self.q.0.lock();
                if self.lifo {
                    q.pop_back()
                } else {
                    q.pop_front()
                }
            }
            pub fn is_empty(&self) -> bool {
                self.q.is_empty()
            }
            pub fn stealer(&self) -> Stealer<T> {
                Stealer { q: self.q.clone() }
            }
        }

        impl<T> Stealer<T> {
            pub fn steal(&self) -> Steal<T> {
                self.q.steal()
            }
            pub fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
                self.q.steal_batch_and_pop(dest)
            }
            pub fn is_empty(&self) -> bool {
                self.q.is_empty()
            }
        }

        impl<T> Injector<T> {
            pub fn new() -> Self {
                Injector { q: Queue::new() }
            }
            pub fn push(&self, t: T) {
                self.q.0.lock().push_back(t);
            }
            pub fn steal(&self) -> Steal<T> {
                self.q.steal()
            }
            pub fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
                self.q.steal_batch_and_pop(dest)
            }
            pub fn is_empty(&self) -> bool {
                self.q.is_empty()
            }
        }

        impl<T> Default for Injector<T> {
            fn default() -> Self {
                Self::new()
            }
        }
    }

    /// Spin-wait hint (a loom yield point).
    pub mod hint {
        pub use loom::hint::spin_loop;
    }

    /// Thread-local statics, per loom thread: loom runs a model's threads
    /// as coroutines on one OS thread, where `std`'s would be shared.
    /// (Takes `std`'s `= const { .. }` form, which loom's macro does not.)
    pub use crate::__loom_thread_local as thread_local;

    #[doc(hidden)]
    pub use loom as __loom;

    /// loom's mutex with poisoning removed from the API.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`].
    #[derive(Debug)]
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        /// A new lock around `value`.
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        /// Acquires the lock.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            // A panic inside a loom model aborts the model anyway, so
            // poisoning carries no information here.
            MutexGuard(Some(self.0.lock().unwrap_or_else(|p| p.into_inner())))
        }
        /// Tries to acquire the lock without blocking.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }
        /// Exclusive access through `&mut self`.
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|p| p.into_inner())
        }
        /// Consumes the lock.
        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0
                .as_deref()
                .expect("guard present outside Condvar::wait")
        }
    }
    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0
                .as_deref_mut()
                .expect("guard present outside Condvar::wait")
        }
    }

    /// See the normal build's `atomic_cell_load_raw`: under loom the cell
    /// is a mutex, read under it.
    ///
    /// # Safety
    /// 1. As in the normal build.
    pub unsafe fn atomic_cell_load_raw<T>(
        cell: &AtomicCell<T>,
    ) -> Option<std::mem::ManuallyDrop<T>> {
        let g = cell.0.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: obligation 1: a bitwise copy that is never dropped.
        Some(std::mem::ManuallyDrop::new(unsafe { std::ptr::read(&*g) }))
    }

    /// loom's reader-writer lock with poisoning removed from the API.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;

    impl<T> RwLock<T> {
        /// A new lock around `value`.
        pub fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }
        /// Acquires the lock shared.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|p| p.into_inner())
        }
        /// Acquires the lock exclusively.
        pub fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// loom's condition variable with the shim's API.
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        /// Blocks until notified; `guard` is released while waiting.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let g = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(g).unwrap_or_else(|p| p.into_inner()));
        }
        /// Under loom time does not pass: a timed wait is a plain wait that
        /// reports no timeout (models must notify).
        pub fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, _t: std::time::Duration) -> bool {
            self.wait(guard);
            false
        }
        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
        /// Wakes all waiters.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub use imp::*;

/// `thread_local!` for loom: `std`'s const-initialised form, forwarded to
/// `loom::thread_local!` (see `imp::thread_local`).
#[cfg(loom)]
#[doc(hidden)]
#[macro_export]
macro_rules! __loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        $crate::sync::__loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
    };
}

/// Atomics that loom does not model, in both builds `std`'s.
///
/// Only for large tables that are not a protocol: per-size-class
/// statistics counters (read only for reporting), and the arena index,
/// whose entries are written once, under the heap lock, before any
/// pointer into the arena is published through modelled atomics. Under
/// loom every modelled atomic is an object that each `SeqCst` fence
/// visits; the 16 384 entries of the index made one model execution cost
/// tens of milliseconds. What loom loses: the weak-memory behaviours of
/// these loads and stores (they act as sequentially consistent), and no
/// thread switch is explored at them.
pub mod unmodeled {
    pub use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
}

/// Test-only breakages of the concurrent protocols, for `loom-tests`.
///
/// Each model in `loom-tests/` comes with a *broken variant*: the same
/// model run with one step of the protocol it guards switched off (a CAS
/// replaced by a plain store, a barrier skipped, a termination check
/// dropped). The model must fail on it; that is how a model shows it can
/// catch the bug it exists for. Library code asks [`broken::is`] at the
/// step in question, naming the breakage with a short string.
///
/// Outside `cfg(loom)` `is` is a `const fn` returning `false`, so the
/// normal build compiles to the correct protocol with no trace of the
/// switch. Under loom the switch is thread-local: loom runs every thread of
/// a model as a coroutine on the test's own OS thread, so a switch set by
/// one test is seen by all threads of its model and by no other test.
pub mod broken {
    #[cfg(loom)]
    std::thread_local! {
        static ACTIVE: std::cell::Cell<Option<&'static str>> =
            const { std::cell::Cell::new(None) };
    }

    /// True if the breakage `name` is switched on (only ever under loom).
    #[cfg(loom)]
    #[inline]
    pub fn is(name: &'static str) -> bool {
        ACTIVE.with(|a| a.get() == Some(name))
    }

    /// True if the breakage `name` is switched on (never, in this build).
    #[cfg(not(loom))]
    #[inline(always)]
    pub const fn is(_name: &'static str) -> bool {
        false
    }

    /// Switches breakage `name` on for the current test thread (or all of
    /// them off with `None`). Only loom models call this.
    #[cfg(loom)]
    pub fn set(name: Option<&'static str>) {
        ACTIVE.with(|a| a.set(name));
    }
}

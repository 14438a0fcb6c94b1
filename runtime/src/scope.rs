//! Heaps, mutators and scopes: the entry points of the API.
//!
//! - [`Heap`]: a handle on one garbage-collected heap (cheap to clone,
//!   `Send + Sync`); built with [`Heap::builder`].
//! - [`Mutator`]: one per thread that allocates (Go: a P with its mcache).
//!   `Send`, not `Sync`.
//! - [`Scope`]: what a mutator's [`Mutator::scope`] closure receives.
//!   Inside it the thread may hold unrooted [`Gc`] pointers (branded with a
//!   borrow of the scope). Collections run concurrently; leaving the
//!   scope, or calling [`Scope::safepoint`], is a clean point that lets a
//!   running collection finish (see `docs/concurrency.md`).
//!
//! Object layout (see `spanheap_gc::object`): a type with GC pointers or
//! drop glue gets an 8-byte header (its `TypeInfo`) and a scan span; any
//! other type is stored bare in a noscan span (and in a tiny block when
//! smaller than 16 bytes).

use crate::gc::Gc;
use crate::root::{Root, Weak};
use crate::trace::{Rebrand, Trace};
use spanheap_gc::sync::Arc;
use spanheap_gc::{
    BuildError, Census, Collector, GcConfig, GcStats, MutatorCore, Tracer, TypeInfo, VerifyError,
};
use spanheap_heap::{AllocError, AllocRequest};
use std::marker::PhantomData;
use std::mem::{align_of, needs_drop, size_of};
use std::ptr::NonNull;

/// A garbage-collected heap. Clones share the heap; it is torn down —
/// every object still allocated is dropped — when the last handle, mutator,
/// [`Root`] and [`Weak`] are gone.
#[derive(Clone)]
pub struct Heap {
    pub(crate) c: Arc<Collector>,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("cycles", &self.c.cycles())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Heap`]. Starts from the defaults and the debug environment
/// variables (`SPANHEAP_GCTRACE`, `SPANHEAP_GCSTRESS`,
/// `SPANHEAP_CHECKMARK`, `SPANHEAP_MARKWORKERS`, `SPANHEAP_VERIFY`,
/// `SPANHEAP_STW`, `SPANHEAP_SATB`, `SPANHEAP_POISON`, `SPANHEAP_EFENCE`;
/// docs/reliability.md); the methods override them.
#[derive(Clone, Debug)]
pub struct HeapBuilder {
    config: GcConfig,
}

impl Default for HeapBuilder {
    fn default() -> Self {
        HeapBuilder {
            config: GcConfig::default().with_env(),
        }
    }
}

impl HeapBuilder {
    /// GOGC: the heap may grow by this percentage of the live heap before
    /// the next collection (default 100).
    pub fn gc_percent(mut self, percent: u32) -> Self {
        self.config.pacer.gc_percent = Some(percent);
        self
    }

    /// GOGC=off: no proportional collections (a memory limit, `collect()`
    /// and stress mode still collect).
    pub fn gc_off(mut self) -> Self {
        self.config.pacer.gc_percent = None;
        self
    }

    /// A soft limit on the heap's memory, in bytes (GOMEMLIMIT): collections
    /// come sooner as the heap approaches it.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.pacer.memory_limit = Some(bytes);
        self
    }

    /// A hard limit on the heap's in-use pages, in bytes: an allocation
    /// that would exceed it fails with [`AllocError::HeapLimit`] — after
    /// the allocator has swept whatever garbage the last collection found.
    /// While collections are on, the pacer keeps its goal an eighth below
    /// the limit, so garbage alone rarely reaches it; with
    /// [`HeapBuilder::gc_off`] only the user collects, and one
    /// [`Heap::collect`] makes the room garbage held.
    pub fn heap_limit(mut self, bytes: usize) -> Self {
        self.config.heap.heap_limit = Some(bytes);
        self
    }

    /// The largest object, in bytes (default 1 TiB).
    pub fn max_object_size(mut self, bytes: usize) -> Self {
        self.config.heap.max_object_size = bytes;
        self
    }

    /// Arena size (a power of two, 4 MiB to 1 GiB; default 64 MiB).
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.config.heap.arena_size = bytes;
        self
    }

    /// Stress mode: a collection at the first safepoint after every `n`
    /// allocations of a mutator (`None` turns it off).
    pub fn stress(mut self, n: Option<u64>) -> Self {
        self.config.stress = n.filter(|&n| n > 0);
        self
    }

    /// Checkmark mode: after each mark, mark again from scratch and abort
    /// with a message if a reachable object was missed.
    pub fn checkmark(mut self, on: bool) -> Self {
        self.config.checkmark = on;
        self
    }

    /// Print one line per collection to stderr, like Go's `gctrace=1`.
    pub fn trace(mut self, on: bool) -> Self {
        self.config.trace = on;
        self
    }

    /// Mark workers per collection, the collecting thread included
    /// (default: a quarter of the hardware threads, rounded up, at most 8
    /// — Go's 25 % GC CPU goal; `SPANHEAP_MARKWORKERS`). Heaps under 8 MiB
    /// are marked by one thread regardless. [`HeapBuilder::build`] refuses
    /// 0 and more than 256 ([`ConfigError::BadMarkWorkers`]).
    ///
    /// [`ConfigError::BadMarkWorkers`]: spanheap_heap::ConfigError::BadMarkWorkers
    pub fn mark_workers(mut self, n: usize) -> Self {
        self.config.mark_workers = n;
        self
    }

    /// Sweep on a background thread after each collection (default on).
    pub fn background_sweep(mut self, on: bool) -> Self {
        self.config.background_sweep = on;
        self
    }

    /// Debug: check the heap's structure (every span's bitmaps, counts,
    /// allocation cache and sweep generation, the page allocator, the
    /// page map, every mcache) twice per collection with the world
    /// stopped, and abort with a message on the first fault. Slow: for
    /// stress and CI runs. [`Heap::verify`] runs the same check once.
    pub fn verify_heap(mut self, on: bool) -> Self {
        self.config.verify = on;
        self
    }

    /// Debug (Go's `GODEBUG=gcstoptheworld=2`): each collection stops the
    /// world — every mutator parks at its next clean point (entering or
    /// leaving a scope, [`Scope::safepoint`]) — marks, and sweeps
    /// everything before any mutator runs again. The same program in this
    /// mode and in the default concurrent mode must keep the same objects;
    /// a difference points at the barrier or the concurrent protocol.
    /// A mutator that stays inside one scope without a safepoint delays
    /// every collection until it reaches one.
    pub fn stop_the_world(mut self, on: bool) -> Self {
        self.config.stop_the_world = on;
        self
    }

    /// Debug: the snapshot-at-the-beginning verifier. When each mark
    /// starts (every write barrier on), the world is stopped and
    /// everything reachable from the roots is recorded; at mark
    /// termination the process aborts with a message if any of it was
    /// left unmarked.
    pub fn verify_snapshot(mut self, on: bool) -> Self {
        self.config.verify_snapshot = on;
        self
    }

    /// Debug: fill each freed object with `0xDB` bytes when it is swept
    /// (after its `Drop` ran), so that a use after free reads poison.
    pub fn poison_freed(mut self, on: bool) -> Self {
        self.config.heap.poison_freed = on;
        self
    }

    /// Debug (Go's `GODEBUG=efence=1`): every object gets pages of its own
    /// and freed pages are never reused (they stay mapped, poisoned with
    /// `0xDB`), so a dangling pointer reads poison, never a newer object.
    /// Memory is never returned: for tests of modest size.
    pub fn never_reuse(mut self, on: bool) -> Self {
        self.config.heap.never_reuse = on;
        self
    }

    /// **Testing only**: the collector thread sleeps this long in every
    /// cycle before mutators may assist (a starved collector thread).
    #[doc(hidden)]
    pub fn __fault_stall_before_t(mut self, d: std::time::Duration) -> Self {
        self.config.fault_stall_before_t = Some(d);
        self
    }

    /// **Testing only — breaks the collector**: marking loses every n-th
    /// object, so that a test can show checkmark mode catching it.
    #[doc(hidden)]
    pub fn __fault_lose_every(mut self, n: u64) -> Self {
        self.config.fault_lose_every = Some(n);
        self
    }

    /// Builds the heap. No memory is reserved until the first allocation.
    ///
    /// # Errors
    /// [`BuildError::Config`] for an invalid setting (arena size, maximum
    /// object size, heap limit, mark workers: see
    /// [`ConfigError`](spanheap_heap::ConfigError)); the other variants if
    /// the collector's threads cannot start.
    pub fn build(self) -> Result<Heap, BuildError> {
        let w = self.config.mark_workers;
        if !(1..=spanheap_heap::MAX_MARK_WORKERS).contains(&w) {
            return Err(BuildError::Config(
                spanheap_heap::ConfigError::BadMarkWorkers(w),
            ));
        }
        Ok(Heap {
            c: Collector::new(self.config)?,
        })
    }
}

impl Heap {
    /// A builder with the defaults (see [`HeapBuilder`]).
    pub fn builder() -> HeapBuilder {
        HeapBuilder::default()
    }

    /// A heap with the defaults.
    pub fn new() -> Result<Heap, BuildError> {
        Self::builder().build()
    }

    /// A new mutator for the calling thread (or any thread it is sent to).
    pub fn mutator(&self) -> Mutator {
        Mutator {
            core: Collector::mutator(&self.c),
        }
    }

    /// Runs a full collection and waits for it (Go's `runtime.GC`).
    /// Waits for mutators that are inside a scope to leave it.
    ///
    /// # Panics
    /// If called inside a scope of this heap on this thread.
    pub fn collect(&self) {
        self.c.collect();
    }

    /// Runs the finalizers waiting to run on this thread, with a mutator
    /// of its own (see [`Scope::set_finalizer`]); returns how many ran.
    pub fn run_finalizers(&self) -> usize {
        self.mutator().run_finalizers()
    }

    /// Statistics (Go's `runtime.ReadMemStats`).
    pub fn stats(&self) -> GcStats {
        self.c.stats()
    }

    /// The reachable objects counted by type name (`std::any::type_name`),
    /// with their bytes, largest first: a full collection whose mark
    /// termination stops the world and walks the heap from the roots.
    /// Objects reachable only from a thread's stack inside a scope are
    /// not counted, nor the contents of a `GcRefCell` another thread holds
    /// mutably borrowed at that moment; types without GC pointers and
    /// without drop glue are counted together (no header records their
    /// type). A debugging tool: its pause is as long as the walk.
    ///
    /// # Panics
    /// If called inside a scope of this heap on this thread.
    pub fn census(&self) -> Census {
        self.c.census()
    }

    /// Sets GOGC at run time (`None`: off) and returns the previous
    /// setting, like Go's `debug.SetGCPercent`: the heap goal and the next
    /// cycle's trigger follow at once (a collection starts if the heap is
    /// already past the new trigger).
    pub fn set_gc_percent(&self, percent: Option<u32>) -> Option<u32> {
        self.c.set_gc_percent(percent)
    }

    /// Checks the heap's structure: runs a full collection whose sweep
    /// termination stops the world and walks every span (bitmaps,
    /// `allocCount`, allocation cache, sweep generation against the list
    /// or cache holding it), the page allocator, the page map and every
    /// idle or parked mutator's cache. An `Err` means the heap is corrupt
    /// (a spanheap bug or memory corruption from outside safe Rust).
    ///
    /// # Panics
    /// If called inside a scope of this heap on this thread.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.c.verify()
    }

    /// Whether two handles are the same heap.
    pub fn ptr_eq(a: &Heap, b: &Heap) -> bool {
        Arc::ptr_eq(&a.c, &b.c)
    }

    /// The underlying collector (untyped; for tools and tests).
    pub fn collector(&self) -> &Arc<Collector> {
        &self.c
    }
}

/// A thread's allocation context on a heap (Go: a P with its mcache).
pub struct Mutator {
    core: MutatorCore,
}

impl std::fmt::Debug for Mutator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutator").finish_non_exhaustive()
    }
}

impl Mutator {
    /// Runs `f` inside a scope. Returns what `f` returns, which cannot hold
    /// a `Gc` (use [`Scope::root`] to keep objects).
    ///
    /// Entering and leaving never wait for a collection (except in
    /// checkmark mode, which stops the world to verify each mark);
    /// collections run on the heap's collector thread while scopes are
    /// open.
    ///
    /// # Panics
    /// If this thread is already inside a scope of another heap.
    ///
    /// Finalizers whose objects were found unreachable run first, on this
    /// thread, each in a scope of its own (see [`Scope::set_finalizer`]).
    pub fn scope<R>(&mut self, f: impl FnOnce(&mut Scope<'_>) -> R) -> R {
        if self.core.collector().has_ready_finalizers() {
            self.run_finalizers();
        }
        self.scope_only(f)
    }

    /// [`Mutator::scope`] without running finalizers first.
    fn scope_only<R>(&mut self, f: impl FnOnce(&mut Scope<'_>) -> R) -> R {
        self.core.enter();
        let mut cx = Scope {
            core: &mut self.core,
            _not_send: PhantomData,
        };
        f(&mut cx)
    }

    /// Runs the finalizers whose objects were found unreachable, on this
    /// thread, each in a scope of its own; returns how many ran. A
    /// finalizer that panics is counted (`GcStats::finalizer_panics`) and
    /// the others still run. [`Mutator::scope`] calls this first whenever
    /// one is waiting.
    pub fn run_finalizers(&mut self) -> usize {
        let mut ran = 0;
        loop {
            let ready = self.core.collector().take_ready_finalizers();
            if ready.is_empty() {
                return ran;
            }
            for r in ready {
                let panicked = match r.payload.downcast::<FinalizerFn>() {
                    Ok(f) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.scope_only(|cx| f(cx, r.addr))
                    }))
                    .is_err(),
                    // Not ours: every payload comes from `set_finalizer`.
                    Err(_) => true,
                };
                // SAFETY: the slot of a ready finalizer taken above,
                // released once.
                unsafe { self.core.collector().finalizer_done(r.slot, panicked) };
                ran += 1;
            }
        }
    }

    /// The heap.
    pub fn heap(&self) -> Heap {
        Heap {
            c: self.core.collector().clone(),
        }
    }

    /// Runs a full collection and waits for it.
    ///
    /// # Panics
    /// If this thread is inside a scope of this heap (through another
    /// mutator).
    pub fn collect(&mut self) {
        self.core.collect();
    }
}

/// The context of a mutator's scope: allocates, roots, and is the proof
/// that the world is not being collected. `'gc` lifetimes of [`Gc`]
/// pointers are shared borrows of it.
pub struct Scope<'m> {
    core: &'m mut MutatorCore,
    /// A scope belongs to its thread (the collector tracks scopes per
    /// thread).
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        // SAFETY: matches the enter in Mutator::scope on this thread (Scope
        // is !Send); every Gc borrowed this scope, and the scope is being
        // dropped, so none is left.
        unsafe { self.core.leave() };
    }
}

/// The per-type descriptor of `T`.
struct InfoOf<T>(PhantomData<T>);

impl<T: Trace> InfoOf<T> {
    const INFO: &'static TypeInfo = &TypeInfo {
        name: std::any::type_name::<T>,
        value_offset: TypeInfo::scan_request(size_of::<T>(), align_of::<T>()).1,
        trace: trace_erased::<T>,
        drop: if needs_drop::<T>() {
            Some(drop_erased::<T>)
        } else {
            None
        },
    };
}

/// # Safety
/// `p` points at an initialised `T` that stays valid during the call.
unsafe fn trace_erased<T: Trace>(p: *const u8, t: &mut Tracer<'_>) {
    // SAFETY: caller's obligation.
    unsafe { &*(p as *const T) }.trace(t)
}

/// # Safety
/// `p` points at an initialised `T` that is never used again.
unsafe fn drop_erased<T>(p: *mut u8) {
    // SAFETY: caller's obligation.
    unsafe { std::ptr::drop_in_place(p as *mut T) }
}

impl<'m> Scope<'m> {
    /// Allocates `value` in the heap.
    ///
    /// Types without GC pointers and without drop glue go to noscan spans
    /// (never scanned); others get a type header in a scan span. `T: Send`
    /// because the object's `Drop` may run on the thread that sweeps it.
    /// `T::At<'gc> == T` pins the value's brand to *this* scope's borrow:
    /// a value holding pointers of another scope (of another heap, carried
    /// here by a scoped thread) has another brand and does not compile.
    ///
    /// # Errors
    /// [`AllocError::HeapLimit`] past the heap limit, [`AllocError::TooLarge`]
    /// above the maximum object size, [`AllocError::BadAlignment`] for
    /// alignments above 8 KiB, [`AllocError::OutOfMemory`] if the OS
    /// refuses memory. A collection never runs inside `alloc`: if the heap
    /// is over its goal, the collection runs at the next safepoint.
    #[inline]
    pub fn alloc<'gc, T>(&'gc self, value: T) -> Result<Gc<'gc, T>, AllocError>
    where
        T: Trace + Send + Rebrand<At<'gc> = T> + 'gc,
    {
        let headerless = T::NO_GC && !needs_drop::<T>();
        if headerless {
            let req = AllocRequest {
                size: size_of::<T>().max(1),
                align: align_of::<T>(),
                noscan: true,
                free_hook: false,
            };
            // SAFETY: we are inside this mutator's scope on its thread, and
            // alloc is not reentrant (Drop of swept objects cannot reach
            // this Scope).
            let p = unsafe { self.core.alloc(req) }?.cast::<T>();
            // SAFETY: `p` is a fresh, exclusive block of at least
            // size_of::<T>() bytes aligned to align_of::<T>().
            unsafe { p.as_ptr().write(value) };
            // SAFETY: the object is initialised and allocated in this
            // scope's heap; no collection runs while the scope lasts.
            Ok(unsafe { Gc::from_ptr(p) })
        } else {
            let (req, off) = TypeInfo::scan_request(size_of::<T>(), align_of::<T>());
            // Only objects with drop glue need the free hook: spans that
            // never held one are swept without reading any header.
            let req = req.with_free_hook(needs_drop::<T>());
            // SAFETY: as above.
            let base = unsafe { self.core.alloc(req) }?;
            // SAFETY: `base` is a fresh exclusive block of `off + size`
            // bytes aligned to max(8, align): the header fits at `base`
            // and the value at `base + off` (a multiple of its alignment).
            let p = unsafe {
                (base.as_ptr() as *mut &'static TypeInfo).write(InfoOf::<T>::INFO);
                let p = base.as_ptr().add(off).cast::<T>();
                p.write(value);
                NonNull::new_unchecked(p)
            };
            if !T::NO_GC && self.core.before_clean_point() {
                // The new object may be black (never scanned) while the
                // pointers it was initialised with may be only on this
                // pre-S stack: shade them (the insertion half of the
                // barrier, for initialising stores).
                // SAFETY: `p` was just initialised.
                self.barrier_slow_all(unsafe { p.as_ref() });
            }
            // SAFETY: initialised object (header and value) in this heap.
            Ok(unsafe { Gc::from_ptr(p) })
        }
    }

    /// A persistent handle to `gc`'s object that keeps it alive and can
    /// leave the scope (and the thread, if `T` is `Send + Sync`).
    pub fn root<'gc, T: Rebrand + 'gc>(&'gc self, gc: Gc<'gc, T>) -> Root<T::At<'static>> {
        let a = Gc::as_ptr(gc) as usize;
        if self.barrier_active() {
            // The mark's root scan may have passed the new slot already:
            // shade the object (it came from this scope's stack).
            self.barrier_slow_addr(a);
        }
        Root::new(self.core.collector(), a)
    }

    /// A weak reference to `gc`'s object: it does not keep the object
    /// alive and is cleared when the object is collected.
    pub fn downgrade<'gc, T: Rebrand + 'gc>(&'gc self, gc: Gc<'gc, T>) -> Weak<T::At<'static>> {
        Weak::new(self.core.collector(), Gc::as_ptr(gc) as usize)
    }

    /// A safepoint without leaving the scope: acknowledges whatever the
    /// collector asked of this mutator — turning the write barrier on,
    /// proving a clean stack, flushing the barrier buffer — so that a
    /// concurrent collection can finish while this scope stays open.
    /// Takes the scope exclusively, so no unrooted `Gc` survives across
    /// it; reach objects again through [`Root`]s afterwards. Never waits
    /// for a collection, and costs a few loads when nothing changed, so an
    /// interpreter loop can call it every few thousand instructions.
    ///
    /// A collection cannot *finish* while a mutator stays inside a scope
    /// without reaching a safepoint (or leaving): its stack may hold the
    /// only pointer to an object. Nothing else waits for it.
    pub fn safepoint(&mut self) {
        // SAFETY: `&mut self`: no Gc borrowed from this scope is alive.
        unsafe { self.core.safepoint() };
    }

    /// The heap.
    pub fn heap(&self) -> Heap {
        Heap {
            c: self.core.collector().clone(),
        }
    }

    /// Runs a full collection and waits for it without closing the scope:
    /// an interpreter's `collectgarbage()` builtin, or the forced
    /// collection before retrying an allocation that failed with
    /// [`AllocError::HeapLimit`] in a scope that never closes.
    /// ([`Heap::collect`] inside a scope panics: the cycle would wait for
    /// the scope to end.) Takes the scope exclusively, like
    /// [`Scope::safepoint`]: no unrooted `Gc` survives across it; reach
    /// objects again through [`Root`]s. Finalizers of objects it finds
    /// unreachable run at this mutator's next [`Mutator::scope`] or
    /// [`Mutator::run_finalizers`].
    ///
    /// # Panics
    /// If this thread is also inside a scope of this heap through another
    /// mutator (the collection would wait for that scope).
    pub fn collect(&mut self) {
        // SAFETY: `&mut self`: no Gc borrowed from this scope is alive, so
        // every GC pointer the thread holds is reachable from a root; we
        // are inside this mutator's scope (a Scope exists only there).
        unsafe { self.core.collect_in_scope() };
    }

    /// Sets `f` as the finalizer of `gc`'s object (Go's
    /// `runtime.SetFinalizer`), replacing any it had; returns whether it
    /// had one. When a collection finds the object unreachable, the object
    /// — and everything it points to — is kept alive, weak references to
    /// it are cleared, and `f` later runs once with it, on a mutator thread
    /// at the start of a [`Mutator::scope`] (or in
    /// [`Mutator::run_finalizers`] / [`Heap::run_finalizers`]), inside a
    /// scope of its own. A later cycle frees the object, unless `f` made it
    /// reachable again (it then lives on, without a finalizer).
    ///
    /// As in Go: an object that reaches itself (a cycle through it) is
    /// never found unreachable by its own finalizer's bookkeeping, so its
    /// finalizer never runs; of two objects with finalizers where one
    /// reaches the other, the reached one is finalized a cycle later.
    /// Finalizers still registered or waiting when the heap is dropped do
    /// not run (the objects are dropped with the heap).
    pub fn set_finalizer<'gc, T, F>(&'gc self, gc: Gc<'gc, T>, f: F) -> bool
    where
        T: Rebrand + 'gc,
        F: for<'a, 's> FnOnce(&'a Scope<'s>, Gc<'a, T::At<'a>>) + Send + 'static,
    {
        let a = Gc::as_ptr(gc) as usize;
        let call: FinalizerFn = Box::new(move |cx: &Scope<'_>, addr: usize| {
            // SAFETY: `addr` is this object's value address; the ready
            // finalizer's root slot keeps it alive while this scope runs
            // the callback, so the `Gc` invariants hold for the scope's
            // borrow; it was allocated as a `T`, which `T::At<'_>` renames.
            let gc = unsafe { gc_at::<T>(cx, addr) };
            f(cx, gc)
        });
        if self.barrier_active() {
            // The mark's root scan may have passed: its scan of registered
            // objects' fields may not have seen this one. Keep the object
            // (and so what it points to) for this cycle.
            self.barrier_slow_addr(a);
        }
        self.collector().set_finalizer(a, Box::new(call)).is_some()
    }

    /// Removes `gc`'s finalizer, if it has one not yet queued; returns
    /// whether it had one.
    pub fn clear_finalizer<'gc, T: 'gc>(&'gc self, gc: Gc<'gc, T>) -> bool {
        let a = Gc::as_ptr(gc) as usize;
        if self.barrier_active() {
            // The registration kept the object's referents in this mark's
            // snapshot, and the mark's scan of registrations may not have
            // run yet: removing it is a deletion. Keep the object (and so
            // what it points to) for this cycle.
            self.barrier_slow_addr(a);
        }
        self.collector().clear_finalizer(a).is_some()
    }

    pub(crate) fn collector(&self) -> &Arc<Collector> {
        self.core.collector()
    }

    /// This scope's mutator.
    pub(crate) fn core(&self) -> &MutatorCore {
        self.core
    }

    /// Whether a pointer store must run the barrier's slow path.
    #[inline(always)]
    pub(crate) fn barrier_active(&self) -> bool {
        self.core.marking()
    }

    /// Test hook: whether this scope's mutator has acknowledged a running
    /// mark (its write barrier is on). Lets tests order threads around a
    /// mark's phases; not part of the API.
    #[doc(hidden)]
    pub fn __barrier_on(&self) -> bool {
        self.core.marking()
    }

    /// The hybrid barrier's slow path: shade the old and the new value.
    #[cold]
    pub(crate) fn barrier_slow<T: Trace>(&self, old: &T, new: &T) {
        self.barrier_slow_all(old);
        self.barrier_slow_all(new);
    }

    /// Shades one object address (a root created during a mark).
    #[cold]
    pub(crate) fn barrier_slow_addr(&self, a: usize) {
        // SAFETY: we are inside this mutator's scope on its thread.
        unsafe { self.core.shade(a) };
    }

    /// Shades everything `value` points to (scan before first write, the
    /// insertion half before S, both halves of `GcCell::set`).
    #[cold]
    pub(crate) fn barrier_slow_all<T: Trace>(&self, value: &T) {
        crate::cell::shade_all(self.core, value);
    }
}

/// A finalizer as stored in the collector (boxed again as its payload):
/// the callback with the object's type erased.
type FinalizerFn = Box<dyn for<'a, 's> FnOnce(&'a Scope<'s>, usize) + Send>;

/// The object at `addr`, as a `Gc` of the scope borrow `'a`.
///
/// # Safety
/// 1. `addr` is the value address of a live `T` (any brand) of `cx`'s
///    heap that stays allocated while `'a` lasts.
unsafe fn gc_at<'a, T: Rebrand>(_cx: &'a Scope<'_>, addr: usize) -> Gc<'a, T::At<'a>> {
    let p =
        std::ptr::NonNull::new(addr as *mut T::At<'a>).expect("a heap object address is non-null");
    // SAFETY: obligation 1; `T::At<'a>` is `T` with its brand renamed
    // (Rebrand's contract), the same layout.
    unsafe { Gc::from_ptr(p) }
}

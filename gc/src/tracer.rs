//! The marker's view of the object graph: greying, the grey work list and
//! the drain loop (Go's `greyobject`, `scanobject`, `gcDrain` in
//! `mgcmark.go`, and `gcWork` in `mgcwork.go`).
//!
//! Tri-color marking over the heap's `gcmarkBits`:
//! - **white**: mark bit clear;
//! - **grey**: mark bit set, object on a grey list (scan objects only: a
//!   noscan object has nothing to scan and goes straight to black);
//! - **black**: mark bit set, object scanned.
//!
//! Invariants:
//! - an object is pushed onto a grey list only by the call that flipped its
//!   mark bit from 0 to 1 (the bit is set atomically), so each object is
//!   scanned at most once per cycle;
//! - only scan objects are pushed; their header is valid (see `object.rs`).
//!
//! A [`Tracer`] also runs the **checkmark** pass (Go's `checkmark.go`):
//! after marking, it walks the graph again from the roots with a private
//! visited set instead of mark bits and records every reachable object
//! whose mark bit is clear — each one would be a lost object.

use crate::object::header_of;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::deque::{Injector, Steal, Stealer, Worker};
use spanheap_heap::{MHeap, MSpan, ObjectRef};
use std::collections::HashSet;

/// Reports GC pointers to the collector. Given to [`trace`]
/// functions (`Trace::trace` in the typed layer); concrete, not a trait
/// object, so that the per-pointer call inlines into the mark loop.
///
/// [`trace`]: crate::object::TypeInfo::trace
pub struct Tracer<'h> {
    heap: &'h MHeap,
    grey: Vec<usize>,
    mode: Mode<'h>,
    /// Objects this tracer marked (or, in checkmark mode, visited).
    pub(crate) marked_objects: u64,
    /// Bytes (slot sizes) of those objects.
    pub(crate) marked_bytes: u64,
    /// Scan objects whose trace function ran.
    pub(crate) scanned_objects: u64,
    /// Fault injection for testing checkmark: if non-zero, every
    /// `skip_every`-th newly found object is left white (a lost object).
    skip_every: u64,
    found: u64,
    /// The span the last edge fell in, and its object range
    /// `[cache_lo, cache_lo + cache_len)`: edges into the same span skip
    /// the arena index (a span holding a reachable object stays in use,
    /// with the same geometry, until this cycle's sweep).
    cache_span: Option<&'h MSpan>,
    cache_lo: usize,
    cache_len: usize,
    /// The collection cycle this tracer marks for (0: none). Cells use it
    /// for their once-per-cycle scan claim (see [`Tracer::marking_cycle`]).
    cycle: u64,
    /// The collector's count of cells a marker skipped because a writer
    /// held them, whose writers have not yet shaded and flushed them
    /// (markers only; see [`Tracer::owe_cell`]).
    owed: Option<&'h AtomicUsize>,
}

enum Mode<'h> {
    /// Mark bits are set atomically (mutators allocate black and other
    /// markers run concurrently).
    Mark,
    /// Collect the reported addresses into a buffer without marking (the
    /// write barrier's shading into a mutator's barrier buffer).
    Record(&'h mut Vec<usize>),
    Check {
        visited: HashSet<usize>,
        unmarked: Vec<usize>,
    },
}

impl<'h> Tracer<'h> {
    fn with_mode(heap: &'h MHeap, mode: Mode<'h>, cycle: u64, grey: Vec<usize>) -> Self {
        Tracer {
            heap,
            grey,
            mode,
            marked_objects: 0,
            marked_bytes: 0,
            scanned_objects: 0,
            skip_every: 0,
            found: 0,
            cache_span: None,
            cache_lo: 0,
            cache_len: 0,
            cycle,
            owed: None,
        }
    }

    /// A mark worker of cycle `cycle` (a grey stack sized for a long
    /// drain).
    pub(crate) fn marker(heap: &'h MHeap, cycle: u64, owed: &'h AtomicUsize) -> Self {
        Tracer {
            owed: Some(owed),
            ..Self::with_mode(heap, Mode::Mark, cycle, Vec::with_capacity(1024))
        }
    }

    /// A marker of cycle `cycle` whose grey stack starts empty (no
    /// up-front allocation): for barrier-buffer flushes, weak upgrades,
    /// the root scan and mark assists.
    pub(crate) fn new_light(heap: &'h MHeap, cycle: u64, owed: &'h AtomicUsize) -> Self {
        Tracer {
            owed: Some(owed),
            ..Self::with_mode(heap, Mode::Mark, cycle, Vec::new())
        }
    }

    /// Records that this marker skipped a cell because a mutator holds it
    /// exclusively: that mutator now owes the mark a scan of the cell when
    /// its borrow ends ([`MutatorCore::take_owed_cell`]), and the mark
    /// cannot terminate until it has paid. Call it *before* publishing the
    /// "owed" state in the cell.
    ///
    /// Only `GcRefCell`'s `Trace` impl calls it; a spurious call would keep
    /// the mark from ending (liveness, not soundness: the count only
    /// errs high).
    ///
    /// [`MutatorCore::take_owed_cell`]: crate::MutatorCore::take_owed_cell
    #[doc(hidden)]
    pub fn owe_cell(&mut self) {
        if let Some(o) = self.owed {
            o.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `Some(cycle)` if this tracer is a marker of a concurrent cycle: a
    /// `Trace` impl of an interior-mutable cell must then claim the cell
    /// for this cycle before reading it, and skip it if a mutator holds it
    /// (the cell's owner scans it instead). `None` for the barrier's
    /// recorder and the checkmark walk, which read what the caller's
    /// borrow or a stopped world allows.
    #[inline]
    pub fn marking_cycle(&self) -> Option<u64> {
        match self.mode {
            Mode::Mark if self.cycle != 0 => Some(self.cycle),
            _ => None,
        }
    }

    /// True for the checkmark walk (the world is stopped, but a parked
    /// mutator may hold a cell's exclusive borrow: skip such cells).
    #[inline]
    pub fn is_checkmark(&self) -> bool {
        matches!(self.mode, Mode::Check { .. })
    }

    /// A marking tracer that deliberately loses every `n`-th object it
    /// would mark (n = 0: none). Only for showing that checkmark catches a
    /// broken mark; see `GcConfig::fault_lose_every`.
    pub(crate) fn with_fault(mut self, n: u64) -> Self {
        self.skip_every = n;
        self
    }

    pub(crate) fn new_checkmark(heap: &'h MHeap) -> Self {
        let mode = Mode::Check {
            visited: HashSet::new(),
            unmarked: Vec::new(),
        };
        Self::with_mode(heap, mode, 0, Vec::with_capacity(1024))
    }

    /// Reports the GC pointer `addr` (the address a `Gc` holds: the value
    /// of a scan object, or a noscan object or part of a tiny block).
    /// Marks the object and queues it for scanning if it has a header.
    ///
    /// An address outside this heap means memory corruption (a pointer from
    /// another heap stored here despite the API's checks, or an `unsafe
    /// impl Trace` reporting a non-GC pointer); marking cannot continue
    /// safely, so the process aborts with a message.
    #[inline]
    pub fn edge(&mut self, addr: usize) {
        if let Mode::Record(buf) = &mut self.mode {
            // Checked when the collector drains the barrier buffer. (A
            // filter that left out objects already marked lost objects
            // under the stress + checkmark pass; its cause is not known
            // yet, so every address is recorded.)
            buf.push(addr);
            return;
        }
        let o = match self.cache_span {
            Some(span) if addr.wrapping_sub(self.cache_lo) < self.cache_len => {
                let index = span.object_index(addr);
                ObjectRef {
                    span,
                    index,
                    base: span.object_addr(index),
                }
            }
            _ => {
                let Some(o) = self.heap.find_object(addr) else {
                    foreign_pointer(addr)
                };
                self.cache_span = Some(o.span);
                self.cache_lo = o.span.base();
                self.cache_len = o.span.nelems() * o.span.elemsize();
                o
            }
        };
        match &mut self.mode {
            Mode::Record(_) => {}
            Mode::Mark => {
                if self.skip_every != 0 && !o.span.is_marked(o.index) {
                    self.found += 1;
                    if self.found.is_multiple_of(self.skip_every) {
                        return; // injected fault: the object stays white
                    }
                }
                let was = self.heap.mark_found(&o);
                if was {
                    return;
                }
            }
            Mode::Check { visited, unmarked } => {
                if !visited.insert(o.base) {
                    return;
                }
                if !o.span.is_marked(o.index) {
                    unmarked.push(o.base);
                }
            }
        }
        self.marked_objects += 1;
        self.marked_bytes += o.span.elemsize() as u64;
        if !o.span.spanclass().noscan() {
            self.grey.push(o.base);
        }
    }

    /// Whether the object at `addr` (a GC pointer's address) is marked in
    /// the current cycle. For ephemeron tables: their `Trace` impls trace
    /// a value only if its key is marked.
    pub fn is_marked(&self, addr: usize) -> bool {
        match self.heap.find_object(addr) {
            Some(o) => o.span.is_marked(o.index),
            None => foreign_pointer(addr),
        }
    }

    /// Scans the fields of the object whose value is at `addr`, without
    /// marking the object itself (finalizer roots: what a registered object
    /// points to stays alive for its finalizer). Nothing for an object
    /// without a header (it has no GC pointers).
    pub(crate) fn scan_fields(&mut self, addr: usize) {
        let Some(o) = self.heap.find_object(addr) else {
            foreign_pointer(addr)
        };
        if o.span.spanclass().noscan() {
            return;
        }
        // SAFETY: a registered object is allocated (it was registered
        // through a live `Gc` and is freed only after its finalizer ran and
        // released it), initialised, and in a scan span.
        unsafe { self.scan(o.base) };
    }

    /// Runs the trace function of the object at `base` on its value.
    ///
    /// # Safety
    /// 1. `base` is the base of an allocated, initialised scan object
    ///    that stays allocated until this returns.
    #[inline(always)]
    unsafe fn scan(&mut self, base: usize) {
        // SAFETY: obligation 1: a scan object starts with its header.
        let info = unsafe { header_of(base) };
        self.scanned_objects += 1;
        let guard = TracePanicGuard(info.name);
        // SAFETY: `base + value_offset` holds the initialised value `info`
        // describes (object.rs invariants, obligation 1).
        unsafe { (info.trace)((base + info.value_offset) as *const u8, self) };
        guard.disarm();
    }

    /// A tracer that only records the addresses reported to it, appending
    /// them to `buf` (the write barrier shades a value's pointers straight
    /// into its mutator's barrier buffer).
    pub fn recorder_into(heap: &'h MHeap, buf: &'h mut Vec<usize>) -> Self {
        Self::with_mode(heap, Mode::Record(buf), 0, Vec::new())
    }

    /// Scans grey objects until none is left (Go's `gcDrain`).
    ///
    /// Objects pass through a small FIFO between the grey stack and the
    /// scan, and are prefetched on entering it, so the cache miss on an
    /// object's header overlaps the scanning of the ones before it
    /// (Boehm's mark-stack prefetching; Go prefetches in `scanobject`).
    pub(crate) fn drain(&mut self) {
        self.drain_with(|_| false);
    }

    /// Drains until the grey stack is empty (returns false) or `stop`,
    /// called after each `STOP_EVERY` (64) scanned objects, returns true
    /// (returns true; the grey objects not yet scanned are back on the
    /// stack).
    ///
    /// Under loom, `stop` runs after every object and the prefetch ring
    /// holds one, so that a model's handful of objects is enough for a
    /// worker to share work (model 4).
    #[cfg_attr(loom, allow(clippy::modulo_one))] // AHEAD is 1 under loom
    fn drain_with(&mut self, mut stop: impl FnMut(&mut Self) -> bool) -> bool {
        const AHEAD: usize = if cfg!(loom) { 1 } else { 8 };
        const STOP_EVERY: u32 = if cfg!(loom) { 1 } else { 64 };
        let mut ring = [0usize; AHEAD];
        let (mut head, mut len) = (0usize, 0usize);
        let mut n = 0u32;
        loop {
            while len < AHEAD {
                let Some(b) = self.grey.pop() else { break };
                prefetch(b);
                ring[(head + len) % AHEAD] = b;
                len += 1;
            }
            if len == 0 {
                return false;
            }
            let base = ring[head];
            head = (head + 1) % AHEAD;
            len -= 1;
            // Only scan objects are pushed, by the edge that marked them;
            // they are allocated and initialised (object.rs invariants) and
            // not freed while marking runs (this cycle's sweep starts
            // after mark termination).
            // SAFETY: `base` is an initialised scan object, as argued.
            unsafe { self.scan(base) };
            n = n.wrapping_add(1);
            if n.is_multiple_of(STOP_EVERY) && stop(self) {
                // Put back what the prefetch ring holds, oldest last so it
                // is scanned first again.
                for k in (0..len).rev() {
                    self.grey.push(ring[(head + k) % AHEAD]);
                }
                return true;
            }
        }
    }

    /// One parallel mark worker's loop (Go's `gcDrain` with `gcw.balance`
    /// and the `work.nwait` termination check): drain the local stack,
    /// sharing half of it whenever another worker is idle; when out of
    /// work, steal (injector first, then the other workers); terminate
    /// when no worker is active.
    ///
    /// Termination is sound because work is only ever in the injector
    /// (filled before any worker starts), in a worker's local stack, or in
    /// its shared deque, and a worker counts itself active whenever it
    /// holds any: it decrements `active` only with both empty, and
    /// increments it *before* trying to steal. So `active == 0` with an
    /// empty injector means no grey object is left anywhere.
    ///
    /// `counted`: the caller already counted this worker in `active` (the
    /// collector thread does, before starting the others, so that they cannot
    /// see `active == 0` before it has shared its roots).
    pub(crate) fn drain_parallel(&mut self, ctx: &MarkCtx<'_>, own: &Worker<usize>, counted: bool) {
        if !counted {
            ctx.active.fetch_add(1, Ordering::SeqCst);
        }
        loop {
            self.drain_with(|t| {
                if ctx.idle.load(Ordering::Relaxed) > 0 && t.grey.len() > 1 {
                    let half = t.grey.len() / 2;
                    for b in t.grey.drain(..half) {
                        own.push(b);
                    }
                }
                false
            });
            if let Some(b) = ctx.find_work(own) {
                self.grey.push(b);
                continue;
            }
            // Out of work: go idle, and come back only to work.
            ctx.idle.fetch_add(1, Ordering::SeqCst);
            ctx.active.fetch_sub(1, Ordering::SeqCst);
            let mut spins = 0u32;
            let found = loop {
                if ctx.active.load(Ordering::SeqCst) == 0 && ctx.injector.is_empty() {
                    break None;
                }
                if ctx.work_visible() {
                    if crate::sync::broken::is("steal_before_counting_active") {
                        // loom-tests broken variant: take work first and
                        // count ourselves active after, so another worker
                        // can see `active == 0` while we hold grey objects.
                        if let Some(b) = ctx.find_work(own) {
                            ctx.active.fetch_add(1, Ordering::SeqCst);
                            break Some(b);
                        }
                    } else {
                        ctx.active.fetch_add(1, Ordering::SeqCst);
                        if let Some(b) = ctx.find_work(own) {
                            break Some(b);
                        }
                        ctx.active.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                spins += 1;
                if spins < 64 {
                    crate::sync::hint::spin_loop();
                } else {
                    crate::sync::thread::yield_now();
                }
            };
            ctx.idle.fetch_sub(1, Ordering::SeqCst);
            match found {
                Some(b) => self.grey.push(b),
                None => {
                    // loom model 4 checks, at this moment, that every
                    // reachable object has been scanned.
                    #[cfg(loom)]
                    loom_hooks::mark_worker_exits();
                    return;
                }
            }
        }
    }

    /// Drains grey objects taken from `inj` until it is empty and the
    /// local stack too (a single mark worker's loop).
    pub(crate) fn drain_from(&mut self, inj: &Injector<usize>) {
        loop {
            // Keep some work where mark assists can take it (Go's
            // gcw.balance): when the shared queue runs dry, hand it half
            // of a long local stack.
            self.drain_with(|t| {
                if t.grey.len() > 64 && inj.is_empty() {
                    let half = t.grey.len() / 2;
                    for b in t.grey.drain(..half) {
                        inj.push(b);
                    }
                }
                false
            });
            match inj.steal() {
                Steal::Success(b) => self.grey.push(b),
                Steal::Retry => {}
                Steal::Empty => return,
            }
        }
    }

    /// Scans grey objects taken from `inj` until about `budget` bytes of
    /// objects were marked or no work is left; the grey objects left on
    /// the local stack go back to `inj`. Returns the bytes marked.
    pub(crate) fn assist_from(&mut self, inj: &Injector<usize>, budget: u64) -> u64 {
        let start = self.marked_bytes;
        loop {
            let done = self.drain_with(|t| t.marked_bytes - start >= budget);
            if done {
                break;
            }
            match inj.steal() {
                Steal::Success(b) => self.grey.push(b),
                Steal::Retry => {}
                Steal::Empty => break,
            }
        }
        for b in self.grey.drain(..) {
            inj.push(b);
        }
        self.marked_bytes - start
    }

    /// Takes the grey objects this tracer holds (for another tracer's
    /// [`Tracer::give_grey`]).
    pub(crate) fn take_grey(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.grey)
    }

    /// Adds grey objects to this tracer's local stack.
    pub(crate) fn give_grey(&mut self, grey: Vec<usize>) {
        self.grey.extend(grey);
    }

    /// Moves the grey objects this tracer holds to `inj`.
    pub(crate) fn publish_grey(&mut self, inj: &Injector<usize>) {
        for b in self.grey.drain(..) {
            inj.push(b);
        }
    }

    /// In checkmark mode: the base of every object visited so far.
    pub(crate) fn visited(&self) -> Vec<usize> {
        match &self.mode {
            Mode::Check { visited, .. } => visited.iter().copied().collect(),
            Mode::Mark | Mode::Record(_) => Vec::new(),
        }
    }

    /// In checkmark mode: the reachable objects found unmarked.
    pub(crate) fn checkmark_failures(&self) -> &[usize] {
        match &self.mode {
            Mode::Mark | Mode::Record(_) => &[],
            Mode::Check { unmarked, .. } => unmarked,
        }
    }
}

/// Aborts the process if the `Trace::trace` call it guards unwinds.
///
/// A `trace` that panics has not reported all of its object's pointers:
/// the mark cannot complete, and finishing the cycle would free objects
/// that are still reachable. Unwinding further is no better — a marker
/// that unwinds out of the collector thread, a mark worker or a mark
/// assist leaves the cycle waiting forever, and one that unwinds out of
/// the write barrier leaves a stored pointer unshaded. So the guard's
/// `Drop`, which runs only while unwinding (the normal path
/// [`disarm`](TracePanicGuard::disarm)s it with `mem::forget`: no code, no
/// flag), reports the type and aborts. The panic's own message has been
/// printed by the panic hook just before.
///
/// Markers guard each object they scan ([`Tracer`]'s scan); the typed
/// layer guards the write barrier's and the ephemeron passes' `trace`
/// calls, which do not go through a scan.
#[must_use = "a guard protects the code until it is disarmed"]
pub struct TracePanicGuard(pub fn() -> &'static str);

impl TracePanicGuard {
    /// The guarded call returned normally: forget the guard.
    #[inline(always)]
    pub fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TracePanicGuard {
    #[cold]
    #[inline(never)]
    fn drop(&mut self) {
        let thread = crate::sync::thread::current();
        crate::collector::fatal(&format!(
            "`Trace::trace` of `{}` panicked on thread {}; the mark cannot complete \
             (a reachable object could be freed)",
            (self.0)(),
            thread.name().unwrap_or("<unnamed>")
        ))
    }
}

/// A hint to bring the cache line at `addr` in (no-op off x86-64).
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and has no
    // architectural effect, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(addr as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cold]
#[inline(never)]
fn foreign_pointer(addr: usize) -> ! {
    crate::collector::fatal(&format!(
        "the marker found a GC pointer {addr:#x} that is not in this heap \
         (memory corruption, or an `unsafe impl Trace` reporting a pointer that is not a Gc \
         of this heap)"
    ))
}

/// What parallel mark workers share: the injector with the roots, every
/// worker's stealer, and the active/idle counts of the termination
/// protocol (see [`Tracer::drain_parallel`]).
pub(crate) struct MarkCtx<'a> {
    pub(crate) injector: &'a Injector<usize>,
    pub(crate) stealers: Vec<Stealer<usize>>,
    /// Workers that hold or may hold work.
    pub(crate) active: AtomicUsize,
    /// Each worker's counters (marked objects, marked bytes, scanned
    /// objects), summed by the runner after the workers are joined.
    pub(crate) totals: crate::sync::Mutex<(u64, u64, u64)>,
    /// Workers waiting for work (a hint to share).
    pub(crate) idle: AtomicUsize,
}

impl MarkCtx<'_> {
    /// One grey object from our own deque, the injector or another worker.
    fn find_work(&self, own: &Worker<usize>) -> Option<usize> {
        if let Some(b) = own.pop() {
            return Some(b);
        }
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(own) {
                Steal::Success(b) => return Some(b),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            for s in &self.stealers {
                match s.steal_batch_and_pop(own) {
                    Steal::Success(b) => return Some(b),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Adds a finished worker's counters to the totals.
    pub(crate) fn add_totals(&self, t: &Tracer<'_>) {
        let mut g = self.totals.lock();
        g.0 += t.marked_objects;
        g.1 += t.marked_bytes;
        g.2 += t.scanned_objects;
    }

    fn work_visible(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

/// Test hooks for the loom models (`loom-tests`); only under `cfg(loom)`.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_hooks {
    std::thread_local! { // sync-shim: allow (an observer's hook, not part of the model)
        /// Called when a parallel mark worker declares termination. (A
        /// `std` thread-local: loom runs all of a model's threads on one
        /// OS thread, so the model's hook is seen by all of them.)
        static ON_EXIT: std::cell::Cell<Option<fn()>> = const { std::cell::Cell::new(None) };
    }

    /// Sets (or clears) the hook a parallel mark worker calls as it
    /// declares that no grey object is left.
    pub fn set_mark_worker_exit(hook: Option<fn()>) {
        ON_EXIT.with(|h| h.set(hook));
    }

    pub(crate) fn mark_worker_exits() {
        if let Some(f) = ON_EXIT.with(|h| h.get()) {
            f();
        }
    }
}

//! The collector: stopping the world at safepoints, marking from the roots,
//! clearing weak references, starting the sweep, pacing, statistics, the
//! background sweeper, and heap teardown (Go's `mgc.go`: `gcStart`,
//! `gcMarkDone`, `gcMarkTermination`, `gcSweep`; `mgcsweep.go`'s
//! `bgsweep`).
//!
//! ## Safepoints and the world word
//! A mutator is at a safepoint whenever it is outside every scope: it then
//! holds no unrooted GC pointer (the typed layer's lifetimes guarantee it),
//! so the collector needs nothing from its stack. One atomic word,
//! `state = count << 2 | RUNNING | PENDING`, counts the mutators inside a
//! scope:
//! - entering a scope increments `count`, unless `PENDING` or `RUNNING` is
//!   set — then the thread waits for the cycle to end (slow path);
//! - leaving decrements it; the thread that brings `count` to 0 while
//!   `PENDING` is set claims the cycle (`PENDING → RUNNING`) and runs it
//!   itself, as Go's mutators run `gcStart`/`stopTheWorld` themselves;
//! - a request (`collect()`, an allocation debt at scope exit, stress
//!   mode) sets `PENDING`, and runs the cycle at once if `count == 0`.
//!
//! So a mutator outside its scopes — idle, blocked, parked — never delays a
//! collection, and a collection waits only for mutators inside a scope,
//! until they leave it or call `safepoint()` (issue 4 shrinks this to a
//! handshake). Allocation inside a scope never blocks on a collection.
//!
//! Invariants:
//! - while `RUNNING` is set, `count == 0` and no mutator is in a scope: the
//!   world is stopped, the runner owns every mcache (it may flush them) and
//!   no object is written;
//! - the runner is the only marker: no other thread sets mark bits while a
//!   cycle runs (the tracer relies on it to mark without locked
//!   instructions; parallel marking will use `MSpan::mark`);
//! - mark bits are set only between `finish_sweep` and `begin_sweep` of one
//!   run (the heap's sweep protocol requires it);
//! - a thread in a scope of a heap never enters a scope of another heap
//!   (checked, panics) and never waits for a cycle of its own heap (nested
//!   scopes of the same heap on one thread count once).

use crate::object::drop_dead_object;
use crate::pacer::{Overhead, PacerConfig, heap_goal};
use crate::slots::SlotTable;
use crate::stats::{CycleTrace, GcStats, History};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Arc, Condvar, Mutex, UnsafeCell};
use crate::tracer::{MarkCtx, Tracer};
use crossbeam_deque::{Injector, Worker};
use spanheap_heap::{AllocError, AllocRequest, ConfigError, HeapConfig, MCache, MHeap};
use std::fmt;

/// Why a collector could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The heap configuration is invalid.
    Config(ConfigError),
    /// The background sweeper thread could not be started.
    SweeperThread(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => write!(f, "invalid heap configuration: {e}"),
            BuildError::SweeperThread(e) => write!(f, "cannot start the background sweeper: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Config(e) => Some(e),
            BuildError::SweeperThread(_) => None,
        }
    }
}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}
use std::cell::Cell;
use std::ptr::NonNull;
use std::time::Instant;

/// Below this `heap_live` a cycle is marked by the runner alone (waking
/// helper threads costs more than the work they would take).
const PARALLEL_MARK_MIN_HEAP: u64 = 8 << 20;

const PENDING: usize = 1;
const RUNNING: usize = 2;
const ONE: usize = 4;

/// Configuration of a collector (the typed layer's builder fills it in).
#[derive(Clone, Debug)]
pub struct GcConfig {
    /// The allocator's configuration.
    pub heap: HeapConfig,
    /// GOGC / GOMEMLIMIT.
    pub pacer: PacerConfig,
    /// Stress mode: request a collection every this many allocations.
    pub stress: Option<u64>,
    /// After each mark, re-mark from scratch and abort if any reachable
    /// object was left unmarked (Go's `GODEBUG=gccheckmark=1`).
    pub checkmark: bool,
    /// Print one line per cycle to stderr (Go's `GODEBUG=gctrace=1`).
    pub trace: bool,
    /// Sweep (and run `Drop` of dead objects) on a background thread after
    /// each cycle, besides the lazy sweeping of allocations.
    pub background_sweep: bool,
    /// Mark workers for a cycle (the cycle runner is one of them); 1 marks
    /// on the runner alone. Default: the machine's hardware threads, at
    /// most 8. Heaps under 8 MiB are always marked by the runner alone.
    pub mark_workers: usize,
    /// **Testing only — breaks the collector.** Marking deliberately
    /// loses every n-th object it finds, so that tests can show checkmark
    /// mode catching a lost object. Never set it otherwise.
    #[doc(hidden)]
    pub fault_lose_every: Option<u64>,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            heap: HeapConfig::default(),
            pacer: PacerConfig::default(),
            stress: None,
            checkmark: false,
            trace: false,
            background_sweep: true,
            mark_workers: crate::sync::thread::available_parallelism()
                .map_or(1, |n| n.get().min(8)),
            fault_lose_every: None,
        }
    }
}

impl GcConfig {
    /// Applies the debug environment variables: `SPANHEAP_GCTRACE=1`,
    /// `SPANHEAP_GCSTRESS=N` (collect every N allocations),
    /// `SPANHEAP_MARKWORKERS=N`,
    /// `SPANHEAP_CHECKMARK=1`. Unset or unparsable values change nothing.
    pub fn with_env(mut self) -> Self {
        let on = |k: &str| std::env::var(k).is_ok_and(|v| v != "0" && !v.is_empty());
        if on("SPANHEAP_GCTRACE") {
            self.trace = true;
        }
        if on("SPANHEAP_CHECKMARK") {
            self.checkmark = true;
        }
        if let Some(n) = std::env::var("SPANHEAP_MARKWORKERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
        {
            self.mark_workers = n;
        }
        if let Some(n) = std::env::var("SPANHEAP_GCSTRESS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&n| n > 0)
        {
            self.stress = Some(n);
        }
        self
    }
}

thread_local! {
    /// The collector whose scope this thread is in (address, 0 if none)
    /// and the nesting depth.
    static ACTIVE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A garbage collector and its heap.
pub struct Collector {
    heap: Arc<MHeap>,
    config: GcConfig,
    /// `count << 2 | RUNNING | PENDING` (module docs).
    state: AtomicUsize,
    /// Cycle bookkeeping for waiters.
    sync: Mutex<WorldSync>,
    cycle_done: Condvar,
    /// Every registered mutator. Locked by the cycle runner while it
    /// flushes mcaches and drains barrier buffers, and by (de)registration.
    mutators: Mutex<Vec<MutPtr>>,
    roots: SlotTable,
    weaks: SlotTable,
    history: Mutex<History>,
    /// `Drop` impls of collected objects that panicked (counted by the
    /// free hook, which holds a clone).
    drop_panics: Arc<AtomicU64>,
    /// Taken by `Drop`.
    sweeper: Option<Arc<Sweeper>>,
    sweeper_thread: Mutex<Option<crate::sync::thread::JoinHandle<()>>>,
    /// Helper threads for parallel marking, started at the first cycle
    /// that needs them.
    mark_pool: Mutex<Option<Arc<rayon::ThreadPool>>>,
    epoch: Instant,
}

struct WorldSync {
    /// Cycles completed.
    completed: u64,
    /// Cycles started.
    started: u64,
    /// A pending request came from `collect()`.
    forced: bool,
}

#[derive(Clone, Copy)]
struct MutPtr(NonNull<MutatorInner>);
// SAFETY: the registry only dereferences these with the world stopped
// (module invariants) or under the registry lock on deregistration.
unsafe impl Send for MutPtr {}

/// Background sweeper control (Go's `bgsweep` and its park/ready).
struct Sweeper {
    heap: Arc<MHeap>,
    ctl: Mutex<SweeperCtl>,
    cv: Condvar,
    /// Retained-memory target for scavenging after a sweep (bytes;
    /// `u64::MAX`: none). Set by each cycle.
    retain: AtomicU64,
}

struct SweeperCtl {
    work: bool,
    stop: bool,
}

impl Sweeper {
    fn run(&self) {
        loop {
            {
                let mut c = self.ctl.lock();
                while !c.work && !c.stop {
                    self.cv.wait(&mut c);
                }
                if c.stop {
                    return;
                }
                c.work = false;
            }
            // Sweep span by span, yielding so that mutators sweeping lazily
            // are not starved on a small machine (Go's bgsweep yields
            // after each span via Gosched when others want to run).
            while self.heap.sweep_one().is_some() {
                if self.ctl.lock().stop {
                    return;
                }
                crate::sync::thread::yield_now();
            }
            // Give back free pages above the target only: pages the heap
            // will reuse before the next cycle stay (releasing them cost a
            // madvise now and page faults soon after).
            let target = self.retain.load(Ordering::Relaxed);
            if target != u64::MAX {
                self.heap.scavenge(target as usize, 64 << 20);
            }
        }
    }
}

impl Collector {
    /// A new collector with an empty heap.
    pub fn new(config: GcConfig) -> Result<Arc<Collector>, BuildError> {
        let drop_panics = Arc::new(AtomicU64::new(0));
        let dp = drop_panics.clone();
        let hook: spanheap_heap::FreeHook = Box::new(move |base| {
            if !drop_dead_object(base) {
                dp.fetch_add(1, Ordering::Relaxed);
            }
        });
        let heap = Arc::new(MHeap::with_free_hook(config.heap.clone(), Some(hook))?);
        let first_goal = heap_goal(&config.pacer, 0, Overhead::default());
        heap.set_gc_trigger(first_goal);
        let sweeper = config.background_sweep.then(|| {
            Arc::new(Sweeper {
                heap: heap.clone(),
                ctl: Mutex::new(SweeperCtl {
                    work: false,
                    stop: false,
                }),
                cv: Condvar::new(),
                retain: AtomicU64::new(u64::MAX),
            })
        });
        let thread = match &sweeper {
            Some(s) => {
                let s = s.clone();
                Some(
                    crate::sync::thread::Builder::new()
                        .name("spanheap-sweep".into())
                        .spawn(move || s.run())
                        .map_err(|e| BuildError::SweeperThread(e.to_string()))?,
                )
            }
            None => None,
        };
        Ok(Arc::new(Collector {
            history: Mutex::new(History {
                heap_goal: first_goal,
                ..History::default()
            }),
            heap,
            config,
            state: AtomicUsize::new(0),
            sync: Mutex::new(WorldSync {
                completed: 0,
                started: 0,
                forced: false,
            }),
            cycle_done: Condvar::new(),
            mutators: Mutex::new(Vec::new()),
            roots: SlotTable::new(),
            weaks: SlotTable::new(),
            drop_panics,
            sweeper,
            sweeper_thread: Mutex::new(thread),
            mark_pool: Mutex::new(None),
            epoch: Instant::now(),
        }))
    }

    /// The heap.
    pub fn heap(&self) -> &Arc<MHeap> {
        &self.heap
    }

    /// The configuration.
    pub fn config(&self) -> &GcConfig {
        &self.config
    }

    /// The root table.
    pub fn roots(&self) -> &SlotTable {
        &self.roots
    }

    /// The weak-reference table.
    pub fn weaks(&self) -> &SlotTable {
        &self.weaks
    }

    /// Registers a new mutator (Go: a new P with its mcache).
    pub fn mutator(self: &Arc<Self>) -> MutatorCore {
        let core = Box::new(MutatorInner {
            mcache: UnsafeCell::new(MCache::new(self.heap.clone())),
            allocs: Cell::new(0),
            stress: self.config.stress,
            wbuf: UnsafeCell::new(Vec::new()),
        });
        let ptr = NonNull::from(Box::leak(core));
        self.mutators.lock().push(MutPtr(ptr));
        MutatorCore {
            collector: self.clone(),
            inner: ptr,
        }
    }

    /// Runs a full collection now and waits for it (Go's `runtime.GC`
    /// without the final sweep). Waits for mutators inside scopes to leave
    /// them.
    ///
    /// # Panics
    /// If the calling thread is inside a scope of this heap (the cycle
    /// would wait for the caller itself).
    pub fn collect(&self) {
        self.check_not_in_scope("collect()");
        if crate::object::in_drop() {
            // The thread may be the cycle runner itself (sweeping inside a
            // cycle): waiting for a cycle would wait for itself.
            panic!("spanheap: collect() called from the Drop of a collected object");
        }
        let target = {
            let mut s = self.sync.lock();
            s.forced = true;
            s.started + 1
        };
        loop {
            if self.sync.lock().completed >= target {
                return;
            }
            self.request();
            let mut s = self.sync.lock();
            if s.completed >= target {
                return;
            }
            // Checked under the lock (try_run notifies under it), so the
            // wake-up for the cycle we wait for cannot be missed.
            if self.state.load(Ordering::Acquire) & (PENDING | RUNNING) != 0 {
                self.cycle_done.wait(&mut s);
            }
        }
    }

    /// Cycles completed so far.
    pub fn cycles(&self) -> u64 {
        self.sync.lock().completed
    }

    fn check_not_in_scope(&self, what: &str) {
        if ACTIVE.with(|a| a.get().0) == self as *const Self as usize {
            panic!(
                "spanheap: {what} called inside a scope of the same heap (it would wait for itself)"
            );
        }
    }

    /// Asks for a cycle; runs it here if no mutator is in a scope.
    pub(crate) fn request(&self) {
        let s = self.state.fetch_or(PENDING, Ordering::AcqRel);
        if s & RUNNING == 0 && s >> 2 == 0 {
            self.try_run();
        }
    }

    /// Claims and runs pending cycles while the world is empty.
    fn try_run(&self) {
        loop {
            if self
                .state
                .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            self.run_cycle();
            // Release: the next scope entry (Acquire) sees the whole cycle.
            let s = self.state.fetch_and(!RUNNING, Ordering::Release) & !RUNNING;
            {
                let _s = self.sync.lock();
                self.cycle_done.notify_all();
            }
            if s != PENDING {
                return; // nothing more requested, or mutators are back
            }
        }
    }

    /// Enters a scope (module docs). Called by `MutatorCore::enter`.
    fn enter(&self) {
        let me = self as *const Self as usize;
        let (cur, depth) = ACTIVE.with(|a| a.get());
        if cur == me {
            ACTIVE.with(|a| a.set((me, depth + 1)));
            return;
        }
        if cur != 0 {
            panic!(
                "spanheap: cannot enter a scope of one heap while inside a scope of another heap \
                 on the same thread (their GC pointers could be mixed)"
            );
        }
        if crate::object::in_drop() {
            panic!("spanheap: the Drop impl of a collected object tried to enter a scope");
        }
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (PENDING | RUNNING) != 0 {
                self.enter_slow();
                break;
            }
            match self
                .state
                .compare_exchange_weak(s, s + ONE, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(v) => s = v,
            }
        }
        ACTIVE.with(|a| a.set((me, 1)));
    }

    #[cold]
    fn enter_slow(&self) {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & (PENDING | RUNNING) == 0 {
                if self
                    .state
                    .compare_exchange(s, s + ONE, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if s == PENDING {
                // Nobody in a scope and nobody running it: run it ourselves.
                self.try_run();
                continue;
            }
            let mut g = self.sync.lock();
            // Checked under the lock: try_run clears RUNNING before it takes
            // the lock to notify, so either we see it cleared or we are
            // waiting when the notification comes.
            let s = self.state.load(Ordering::Acquire);
            if s & RUNNING != 0 || (s & PENDING != 0 && s >> 2 != 0) {
                self.cycle_done.wait(&mut g);
            }
        }
    }

    /// Leaves a scope; runs a pending cycle if this was the last mutator
    /// in a scope.
    fn leave(&self) {
        let me = self as *const Self as usize;
        let (cur, depth) = ACTIVE.with(|a| a.get());
        debug_assert_eq!(cur, me, "leave without enter");
        if depth > 1 {
            ACTIVE.with(|a| a.set((me, depth - 1)));
            return;
        }
        ACTIVE.with(|a| a.set((0, 0)));
        let s = self.state.fetch_sub(ONE, Ordering::Release) - ONE;
        if s == PENDING {
            self.try_run();
        }
    }

    /// Whether `leave` would end the thread's outermost scope.
    fn outermost(&self) -> bool {
        ACTIVE.with(|a| a.get().1) == 1
    }

    /// One stop-the-world cycle. The caller has claimed `RUNNING`.
    fn run_cycle(&self) {
        let t0 = Instant::now();
        let forced = {
            let mut s = self.sync.lock();
            s.started += 1;
            std::mem::take(&mut s.forced)
        };
        let heap = &*self.heap;
        // Sweep termination: flush every mcache (Go's forEachP
        // prepareForSweep; it also retires the tiny blocks, so they need no
        // greying), then finish the previous sweep. The registry lock is
        // not held while sweeping: the sweep runs `Drop` impls, which may
        // create or drop mutators. A mutator registered meanwhile has an
        // empty mcache and cannot allocate before the cycle ends.
        for m in self.mutators.lock().iter() {
            // SAFETY: the world is stopped (RUNNING; module invariants), so
            // no mutator uses its mcache; the registry lock keeps it alive.
            unsafe { m.0.as_ref().mcache.with_mut(|c| (*c).release_all()) };
        }
        let heap_before = heap.heap_live();
        if let Err(e) = heap.finish_sweep() {
            fatal(&format!(
                "sweep termination failed although every mcache was flushed: {e}"
            ));
        }
        let t1 = Instant::now();

        // From here to the start of the sweep no `Drop` runs, and holding
        // the registry lock keeps mutators from registering or flushing
        // (begin_sweep needs every thread out of the heap's MCache methods).
        let mutators = self.mutators.lock();

        // Mark: roots, then the mutators' barrier buffers, then drain —
        // on the runner alone, or with parallel workers for big heaps.
        let workers = if heap_before >= PARALLEL_MARK_MIN_HEAP {
            self.config.mark_workers.max(1)
        } else {
            1
        };
        let mut tr = Tracer::new(heap).with_fault(self.config.fault_lose_every.unwrap_or(0));
        self.roots.for_each(|s| tr.edge(s.load(Ordering::Relaxed)));
        for m in mutators.iter() {
            // SAFETY: world stopped, as above.
            unsafe {
                m.0.as_ref().wbuf.with_mut(|b| {
                    for a in (*b).drain(..) {
                        tr.edge(a);
                    }
                })
            };
        }
        let (marked_objects, marked_bytes, workers) = if workers > 1 {
            self.mark_parallel(heap, tr, workers)
        } else {
            tr.drain();
            let mut h = self.history.lock();
            h.scanned_objects += tr.scanned_objects;
            (tr.marked_objects, tr.marked_bytes, 1)
        };
        let t2 = Instant::now();

        // Mark termination.
        if self.config.checkmark {
            let mut ck = Tracer::new_checkmark(heap);
            self.roots.for_each(|s| ck.edge(s.load(Ordering::Relaxed)));
            ck.drain();
            let bad = ck.checkmark_failures();
            if !bad.is_empty() {
                fatal(&format!(
                    "checkmark: {} reachable objects were not marked (first at {:#x})",
                    bad.len(),
                    bad[0]
                ));
            }
        }
        // Weak references die with their targets, before the sweep can
        // free (and reuse) anything.
        let mut cleared = 0;
        self.weaks.for_each(|s| {
            let a = s.load(Ordering::Relaxed);
            match heap.find_object(a) {
                Some(o) if o.span.is_marked(o.index) => {}
                _ => {
                    s.store(0, Ordering::Relaxed);
                    cleared += 1;
                }
            }
        });
        // The world is stopped (RUNNING: no mutator is in a scope, and we
        // hold the registry lock, so no mutator is being created or
        // dropped: no thread is inside an MCache method), and marking is
        // complete: nothing sets a mark bit until the next finish_sweep.
        // SAFETY: obligations 1 and 2 of begin_sweep, as just argued.
        if let Err(e) = unsafe { heap.begin_sweep() } {
            fatal(&format!("cannot start the sweep: {e}"));
        }
        // Pacing: the live heap is what we marked; the goal follows.
        heap.reset_heap_live(marked_bytes);
        let mem = heap.stats();
        let overhead = Overhead {
            idle_resident: mem.heap_idle.saturating_sub(mem.heap_released),
            metadata: mem.mspan_inuse + mem.gc_sys,
        };
        let goal = heap_goal(&self.config.pacer, marked_bytes, overhead);
        heap.set_gc_trigger(goal);
        // Scavenging target (Go's gcPercentGoal and memoryLimitGoal): keep
        // up to goal + 10 % resident — the heap grows back to the goal
        // before the next cycle — and at most 95 % of the memory limit.
        let mut retain = goal.saturating_add(goal / 10);
        if let Some(limit) = self.config.pacer.memory_limit {
            retain = retain.min((limit - limit / 20).saturating_sub(overhead.metadata));
        }
        heap.set_scavenge_goal(retain.min(usize::MAX as u64) as usize);
        if let Some(s) = &self.sweeper {
            s.retain.store(retain, Ordering::Relaxed);
        }
        drop(mutators);
        let t3 = Instant::now();

        let trace = {
            let mut h = self.history.lock();
            h.num_gc += 1;
            if forced {
                h.num_forced_gc += 1;
            }
            h.record_pause(t3 - t0);
            h.last_gc = Some(t3 - self.epoch);
            h.heap_marked = marked_bytes;
            h.heap_goal = goal;
            h.last_marked_objects = marked_objects;
            h.weak_cleared += cleared;
            CycleTrace {
                cycle: h.num_gc,
                at: t0 - self.epoch,
                sweep_term: t1 - t0,
                mark: t2 - t1,
                mark_term: t3 - t2,
                heap_before,
                heap_after: heap_before,
                heap_marked: marked_bytes,
                goal,
                marked_objects,
                workers,
                forced,
            }
        };
        if self.config.trace {
            eprintln!("{trace}");
        }
        tracing::debug!(
            target: "spanheap::gc",
            cycle = trace.cycle,
            pause_us = (t3 - t0).as_micros() as u64,
            heap_before = trace.heap_before,
            heap_marked = trace.heap_marked,
            goal = trace.goal,
            forced = trace.forced,
            "gc cycle"
        );
        if let Some(s) = &self.sweeper {
            s.ctl.lock().work = true;
            s.cv.notify_one();
        }
        {
            let mut s = self.sync.lock();
            s.completed += 1;
        }
    }

    /// Drains the grey objects of `runner` (which has marked the roots)
    /// with `workers` parallel workers, the calling thread being one of
    /// them; returns (objects, bytes) marked.
    ///
    /// The runner first drains alone (marking without locked
    /// instructions); helpers join only once it has scanned
    /// `PARALLEL_AFTER_SCANNED` objects and still has grey objects to share.
    /// Marks that are short or cannot be split (a huge pointer array of
    /// noscan objects is one scan) stay on the runner alone.
    fn mark_parallel(
        &self,
        heap: &MHeap,
        mut runner: Tracer<'_>,
        workers: usize,
    ) -> (u64, u64, usize) {
        const PARALLEL_AFTER_SCANNED: u64 = 4096;
        if !runner.drain_until_shareable(PARALLEL_AFTER_SCANNED) {
            self.history.lock().scanned_objects += runner.scanned_objects;
            return (runner.marked_objects, runner.marked_bytes, 1);
        }
        // Helpers are about to mark too: atomic marking from here on (the
        // plain stores so far happen-before the helpers' start).
        runner.make_shared();
        let pool = {
            let mut p = self.mark_pool.lock();
            if p.is_none() {
                *p = rayon::ThreadPoolBuilder::new()
                    .num_threads(workers - 1)
                    .thread_name(|i| format!("spanheap-mark-{i}"))
                    .build()
                    .ok()
                    .map(Arc::new);
            }
            p.clone()
        };
        let Some(pool) = pool else {
            // No helper threads could start: mark alone (correct, slower).
            runner.drain();
            self.history.lock().scanned_objects += runner.scanned_objects;
            return (runner.marked_objects, runner.marked_bytes, 1);
        };
        let deques: Vec<Worker<usize>> = (0..workers).map(|_| Worker::new_lifo()).collect();
        let ctx = MarkCtx {
            injector: Injector::new(),
            stealers: deques.iter().map(|w| w.stealer()).collect(),
            // The runner is counted before the others start (drain_parallel).
            active: AtomicUsize::new(1),
            idle: AtomicUsize::new(0),
            totals: Mutex::new((0, 0, 0)),
        };
        let mut deques = deques.into_iter();
        let own = deques.next().expect("workers >= 2");
        pool.in_place_scope(|s| {
            for w in deques {
                let ctx = &ctx;
                s.spawn(move |_| {
                    let mut t = Tracer::new_shared(heap);
                    t.drain_parallel(ctx, &w, false);
                    ctx.add_totals(&t);
                });
            }
            runner.drain_parallel(&ctx, &own, true);
            ctx.add_totals(&runner);
        });
        let (objects, bytes, scanned) = *ctx.totals.lock();
        self.history.lock().scanned_objects += scanned;
        (objects, bytes, workers)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> GcStats {
        let h = self.history.lock();
        GcStats {
            num_gc: h.num_gc,
            num_forced_gc: h.num_forced_gc,
            pause_total: h.pause_total,
            pauses: h.pauses.iter().copied().collect(),
            pause_max: h.pause_max,
            last_gc: h.last_gc,
            heap_marked: h.heap_marked,
            heap_goal: h.heap_goal,
            last_marked_objects: h.last_marked_objects,
            scanned_objects: h.scanned_objects,
            drop_panics: self.drop_panics.load(Ordering::Relaxed),
            roots: self.roots.len(),
            weak_refs: self.weaks.len(),
            weak_cleared: h.weak_cleared,
            mem: self.heap.stats(),
        }
    }
}

impl Drop for Collector {
    /// Heap teardown: every object still allocated is dropped (its `Drop`
    /// runs exactly once), then the heap's memory goes back to the OS when
    /// the last `Arc<MHeap>` is dropped.
    ///
    /// The last handle may be dropped by the `Drop` of a collected object,
    /// i.e. inside a sweep — possibly on this heap's own sweeper thread,
    /// which could then neither join itself nor wait for its own sweep to
    /// finish. Teardown then moves to a new thread.
    fn drop(&mut self) {
        // Every mutator holds an Arc to us, so none is left, and each
        // flushed its mcache when it was dropped.
        debug_assert!(self.mutators.lock().is_empty());
        let heap = self.heap.clone();
        let sweeper = self.sweeper.take();
        let thread = self.sweeper_thread.lock().take();
        let dp = self.drop_panics.clone();
        let teardown = move || {
            if let Some(s) = &sweeper {
                s.ctl.lock().stop = true;
                s.cv.notify_one();
            }
            if let Some(t) = thread {
                let _ = t.join();
            }
            if let Err(e) = heap.finish_sweep() {
                fatal(&format!("teardown: {e}"));
            }
            // No other thread uses the heap: mutators, roots and weak refs
            // held Arcs to the collector, which is gone; the sweeper was
            // joined; every mcache was flushed; sweeping finished above.
            // SAFETY: obligations 1 and 2 of for_each_allocated, as argued.
            unsafe {
                heap.for_each_allocated(|base, span| {
                    // The closure runs under for_each_allocated's
                    // obligation 1: we own every span.
                    if !span.spanclass().noscan()
                        && span.needs_free_hook()
                        && !drop_dead_object(base)
                    {
                        dp.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
        };
        if !crate::object::in_drop() {
            teardown();
            return;
        }
        let spawned = crate::sync::thread::Builder::new()
            .name("spanheap-teardown".into())
            .spawn(teardown);
        if let Err(e) = spawned {
            // Cannot tear down here (we may be inside this heap's own
            // sweep): leak the heap rather than deadlock.
            eprintln!(
                "spanheap: heap dropped from a collected object's Drop and no teardown thread could start ({e}); its memory is leaked"
            );
        }
    }
}

#[cold]
fn fatal(msg: &str) -> ! {
    eprintln!("spanheap: fatal: {msg}; aborting");
    std::process::abort()
}

/// Per-mutator collector state, owned by its [`MutatorCore`] and reachable
/// from the registry.
struct MutatorInner {
    /// Only the owning mutator uses it, inside its scopes; the cycle runner
    /// uses it with the world stopped.
    mcache: UnsafeCell<MCache>,
    /// Allocations since the last stress collection.
    allocs: Cell<u64>,
    /// The collector's stress setting, copied so that the allocation path
    /// reads only this struct.
    stress: Option<u64>,
    /// Barrier buffer (Go's `wbBuf`): pointers shaded by the write barrier
    /// while marking, drained by the collector.
    wbuf: UnsafeCell<Vec<usize>>,
}

/// A mutator's handle on the collector: its mcache, its barrier buffer and
/// its scope protocol. `Send`, not `Sync`; the typed layer wraps it.
pub struct MutatorCore {
    collector: Arc<Collector>,
    inner: NonNull<MutatorInner>,
}

// SAFETY: the inner state is used only by the owning handle (through
// `&mut self` or inside its scope on one thread) or by the cycle runner
// with the world stopped; nothing in it is tied to a thread.
unsafe impl Send for MutatorCore {}

impl MutatorCore {
    /// The collector.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    fn inner(&self) -> &MutatorInner {
        // SAFETY: `inner` is a leaked Box freed only in our Drop.
        unsafe { self.inner.as_ref() }
    }

    /// Enters a scope: from here until [`MutatorCore::leave`], the thread
    /// may hold unrooted GC pointers and no cycle runs. May wait for a
    /// running cycle.
    ///
    /// # Panics
    /// If the thread is inside a scope of another heap.
    pub fn enter(&mut self) {
        self.collector.enter();
    }

    /// Leaves the scope; if an allocation found the heap over its goal (or
    /// stress mode's count ran out), requests a cycle, which runs here if
    /// this was the last mutator inside a scope.
    ///
    /// # Safety
    /// 1. Matches an `enter` on this thread, and the caller holds no GC
    ///    pointer obtained since (the typed layer's lifetimes end here).
    pub unsafe fn leave(&mut self) {
        let due = self.take_debt();
        self.collector.leave();
        if due {
            // Runs the cycle now if no mutator is left in a scope (if this
            // thread is still in an outer scope, that scope's exit runs it).
            self.collector.request();
        }
    }

    /// A safepoint inside a scope: if a cycle is pending and this is the
    /// thread's outermost scope, leaves and re-enters (letting the cycle
    /// run); otherwise only records allocation debt. Cheap when nothing is
    /// pending: one load.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::leave`]: the caller holds no GC pointer
    ///    that is not reachable from a root.
    pub unsafe fn safepoint(&mut self) {
        let due = self.take_debt();
        if due {
            // Marks the cycle pending; it cannot run now (we are in a scope).
            self.collector.request();
        }
        if !self.collector.outermost() {
            return;
        }
        if self.collector.state.load(Ordering::Acquire) & PENDING != 0 {
            self.collector.leave();
            self.collector.enter();
        }
    }

    fn take_debt(&mut self) -> bool {
        let inner = self.inner();
        // SAFETY: we are the owning mutator, inside our scope (or about to
        // leave it); no cycle runs meanwhile.
        let due = unsafe { inner.mcache.with_mut(|c| (*c).take_gc_due()) };
        let stress = match inner.stress {
            Some(n) if inner.allocs.get() >= n => {
                inner.allocs.set(0);
                true
            }
            _ => false,
        };
        due || stress
    }

    /// Allocates memory for an object.
    ///
    /// # Safety
    /// 1. The caller is inside a scope entered with [`MutatorCore::enter`]
    ///    on this handle, on this thread, and not inside another call of
    ///    this method (no reentrancy: `Drop` impls run by lazy sweeping
    ///    cannot reach this handle).
    #[inline(always)]
    pub unsafe fn alloc(&self, req: AllocRequest) -> Result<NonNull<u8>, AllocError> {
        let inner = self.inner();
        if inner.stress.is_some() {
            inner.allocs.set(inner.allocs.get() + 1);
        }
        // SAFETY: obligation 1: we are the only user of the mcache now (no
        // cycle runs while we are in a scope).
        unsafe { inner.mcache.with_mut(|c| (*c).alloc_uninit(req)) }
    }

    /// Whether the heap is being marked concurrently (the write barrier's
    /// flag). Always false while marking stops the world.
    #[inline(always)]
    pub fn marking(&self) -> bool {
        false
    }

    /// The write barrier's slow path: shades `addr` (Go's
    /// `wbBuf.putFast`); the buffer is drained by the collector.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::alloc`].
    #[cold]
    pub unsafe fn shade(&self, addr: usize) {
        // SAFETY: obligation 1.
        unsafe { self.inner().wbuf.with_mut(|b| (*b).push(addr)) };
    }

    /// Runs a collection now and waits for it.
    ///
    /// # Panics
    /// If the thread is inside a scope of this heap.
    pub fn collect(&mut self) {
        self.collector.collect();
    }
}

impl Drop for MutatorCore {
    fn drop(&mut self) {
        // Flush the mcache (a cycle needs every cache flushed) and
        // deregister, under the registry lock so that a cycle's flush loop
        // does not see us half-gone. We are outside any scope of ours, so
        // a running cycle has already flushed us or will not look at us
        // again; flushing twice is harmless.
        let mut reg = self.collector.mutators.lock();
        let me = self.inner;
        reg.retain(|p| p.0 != me);
        // SAFETY: deregistered under the lock, so the cycle runner cannot
        // reach it any more, and we are its owner (a leaked Box).
        let mut inner = unsafe { Box::from_raw(me.as_ptr()) };
        inner.mcache.get_mut().release_all();
        drop(reg);
    }
}

//! The collector: concurrent mark with handshakes, weak-reference
//! clearing, the start of the concurrent sweep, pacing, statistics, the
//! background sweeper, and heap teardown (Go's `mgc.go`: `gcStart`,
//! `gcMarkDone`, `gcMarkTermination`, `gcSweep`; `mgcmark.go`'s
//! `gcAssistAlloc`; `mgcsweep.go`'s `bgsweep`).
//!
//! ## Threads
//! Each heap has a collector thread (`spanheap-gc`) that runs one cycle
//! per request and marks; a rayon pool of `mark_workers - 1` helpers joins
//! it on big heaps; mutators pay mark assists; a sweeper thread sweeps
//! after each cycle. No cycle step ever waits for a mutator that is
//! outside its scopes, and no mutator ever waits for a cycle (checkmark
//! mode aside, which stops the world to verify the mark).
//!
//! ## Handshakes
//! A mutator runs the collector's protocol only at its *handshakes*:
//! scope entry and exit, [`MutatorCore::safepoint`], and an allocation
//! that the heap reports (`AllocError::Handshake`: the collector bumped
//! the heap's handshake generation, or a slow path wants a cycle started
//! or an assist paid). Entry, exit and `safepoint` are *clean* — the
//! thread holds no unrooted pointer of that mutator's scope (the typed
//! layer's lifetimes prove it); the allocation handshake is not. At each
//! one it acknowledges, in its own atomics, what the collector asked:
//! - **A** (barrier on) for cycle `c`: from now on its stores shade (write
//!   barrier: the old and the new value, and until S whatever a cell
//!   borrow inserted);
//! - **S** (clean stack) for `c`: given only at a clean handshake after
//!   every mutator had A (`s_round == c`); the mcache adopts
//!   allocate-black (retiring its tiny block) just before;
//! - **flush** round `r`: its barrier buffer went into the mark.
//!
//! ## A cycle
//! 1. Sweep termination: sweep what is left of the previous cycle; flush
//!    idle mutators' mcaches (claiming them BUSY); busy ones flush their
//!    stale spans at their next allocation or safepoint.
//! 2. Mark start (under `gate`): `phase = c|MARKING`.
//! 3. Round A: wait until every mutator *inside a scope* has A. Then
//!    allocate-black on, `s_round = c`, and the roots are greyed.
//! 4. Concurrent mark (from T, when every in-scope mutator has A): the
//!    collector thread (plus helpers) drains, starting with the roots'
//!    grey objects; flushes of barrier buffers and weak upgrades add grey
//!    objects to the shared queue; assists scan from it.
//! 5. When no grey object is left and every mutator in a scope has S: a
//!    flush round. If, under the gate, no flush or upgrade found a white
//!    object since the round began, no marker scanned during it (no drain,
//!    no assist joined), no assist is running, no cell debt is open
//!    (`owed_cells`) and nothing is grey, the mark is complete; otherwise
//!    back to 4.
//! 6. Mark termination (gate held — the only mutual exclusion with
//!    mutators, and mutators meet it only when they flush, upgrade a weak
//!    reference or join as an assist): clear dead weak slots, phase off,
//!    `begin_sweep` (new sweepgen, allocate-black off, one store).
//! 7. Pacing: goal from live bytes (marked + allocated during the mark),
//!    trigger at 7/8 of the runway; wake the sweeper.
//!
//! Why this loses nothing is argued in `docs/concurrency.md` ("Concurrent
//! mark"). Invariants the code relies on:
//! - the phase changes only under `gate`; every non-worker marker (flush,
//!   weak upgrade, assist) checks it under `gate`, so none marks after
//!   `begin_sweep`;
//! - the mark workers run only on the collector thread's `drain_round`,
//!   never across a phase change;
//! - a mutator's mcache and barrier buffer are touched by the collector
//!   only when it has claimed the mutator (BUSY) or the mutator is parked;
//! - a thread in a scope of a heap never enters a scope of another heap
//!   (checked, panics).

use crate::finalizer::{Payload, ReadyFinalizer};
use crate::object::{drop_dead_object, header_of};
use crate::pacer::{Overhead, PacerConfig, heap_goal, trigger};
use crate::slots::Slot;
use crate::slots::SlotTable;
use crate::stats::{CycleTrace, GcStats, History};
use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::sync::deque::{Injector, Worker};
use crate::sync::{Arc, Condvar, Mutex, UnsafeCell};
use crate::tracer::{MarkCtx, Tracer};
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
    /// The collector thread could not be started.
    CollectorThread(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => write!(f, "invalid heap configuration: {e}"),
            BuildError::SweeperThread(e) => write!(f, "cannot start the background sweeper: {e}"),
            BuildError::CollectorThread(e) => write!(f, "cannot start the collector thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Config(e) => Some(e),
            BuildError::SweeperThread(_) | BuildError::CollectorThread(_) => None,
        }
    }
}

/// A fault the heap verifier found ([`Collector::verify`]): the heap's
/// structure is corrupt (a bug in spanheap, or memory corruption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError(pub String);

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap verification failed: {}", self.0)
    }
}

impl std::error::Error for VerifyError {}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}
use std::cell::Cell;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// Below this `heap_live` a cycle is marked by the collector thread alone
/// (waking helper threads costs more than the work they would take).
#[cfg_attr(loom, allow(dead_code))]
const PARALLEL_MARK_MIN_HEAP: u64 = 8 << 20;

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
    /// Mark workers during a concurrent mark (the collector thread is one
    /// of them). Default: a quarter of the hardware threads, rounded up,
    /// at most 8 (Go's 25 % background-mark goal). Heaps under 8 MiB are
    /// always marked by the collector thread alone; mutators also assist.
    pub mark_workers: usize,
    /// **Testing only — breaks the collector.** Marking deliberately
    /// loses every n-th object it finds, so that tests can show checkmark
    /// mode catching a lost object. Never set it otherwise.
    #[doc(hidden)]
    pub fault_lose_every: Option<u64>,
    /// **Testing only.** The collector thread sleeps this long in every
    /// cycle between round A and T (when mutators may not yet assist),
    /// as a starved collector thread would stall there; tests use it to
    /// show that mutators over the goal wait rather than run away.
    #[doc(hidden)]
    pub fault_stall_before_t: Option<Duration>,
    /// **Debug.** Check the heap's structure ([`MHeap::verify`] and every
    /// mutator's mcache) twice per cycle, with the world stopped: at sweep
    /// termination and at mark termination; abort on the first fault.
    pub verify: bool,
    /// **Debug** (Go's `GODEBUG=gcstoptheworld=2`). Every cycle stops the
    /// world — each mutator parks at its next clean point (scope entry or
    /// exit, `safepoint`) — marks, then sweeps everything before the world
    /// restarts: no write barrier or concurrent sweep is ever exercised.
    /// Used to tell a concurrency bug from a marking bug.
    pub stop_the_world: bool,
    /// **Debug.** The snapshot-at-the-beginning verifier: once every
    /// mutator's barrier is on, stop the world and record everything
    /// reachable from the roots; at mark termination, abort if any of it
    /// is unmarked (what the deletion barrier promises; independent of
    /// checkmark, which checks what is reachable at the end).
    pub verify_snapshot: bool,
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
                .map_or(1, |n| n.get().div_ceil(4).min(8)),
            fault_lose_every: None,
            fault_stall_before_t: None,
            verify: false,
            stop_the_world: false,
            verify_snapshot: false,
        }
    }
}

impl GcConfig {
    /// Applies the debug environment variables: `SPANHEAP_GCTRACE=1`,
    /// `SPANHEAP_GCSTRESS=N` (collect every N allocations),
    /// `SPANHEAP_MARKWORKERS=N`, `SPANHEAP_CHECKMARK=1`,
    /// `SPANHEAP_VERIFY=1` ([`GcConfig::verify`]), `SPANHEAP_STW=1`
    /// ([`GcConfig::stop_the_world`]), `SPANHEAP_SATB=1`
    /// ([`GcConfig::verify_snapshot`]), `SPANHEAP_POISON=1`
    /// ([`HeapConfig::poison_freed`]) and `SPANHEAP_EFENCE=1`
    /// ([`HeapConfig::never_reuse`]). Unset, `0` or unparsable values
    /// change nothing.
    pub fn with_env(mut self) -> Self {
        let on = |k: &str| std::env::var(k).is_ok_and(|v| v != "0" && !v.is_empty());
        if on("SPANHEAP_GCTRACE") {
            self.trace = true;
        }
        if on("SPANHEAP_CHECKMARK") {
            self.checkmark = true;
        }
        if on("SPANHEAP_VERIFY") {
            self.verify = true;
        }
        if on("SPANHEAP_STW") {
            self.stop_the_world = true;
        }
        if on("SPANHEAP_SATB") {
            self.verify_snapshot = true;
        }
        if on("SPANHEAP_POISON") {
            self.heap.poison_freed = true;
        }
        if on("SPANHEAP_EFENCE") {
            self.heap.never_reuse = true;
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

crate::sync::thread_local! {
    /// The collector whose scope this thread is in (address, 0 if none)
    /// and the nesting depth (scopes of several mutators of one heap may
    /// nest on a thread; scopes of two heaps may not).
    static ACTIVE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Adds the time since `.0` to the counter `.1` when dropped (every exit
/// of a wait is counted).
struct Elapsed<'a>(Instant, &'a AtomicU64);

impl Drop for Elapsed<'_> {
    fn drop(&mut self) {
        self.1
            .fetch_add(self.0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Longest a mark assist waits for the mark when the heap is over its
/// goal and there is no grey object to take (`MutatorCore::throttle`).
const ASSIST_WAIT: Duration = Duration::from_millis(10);

/// `Inner::gc_percent` for GOGC=off.
const GC_OFF: u64 = u64::MAX;

/// Bytes per heap page (the sweep assist's unit).
const PAGE_BYTES: u64 = spanheap_heap::sizeclasses::PAGE_SIZE as u64;

/// `Inner::phase` bit: a mark is running.
const MARKING: u64 = 1;

/// `MutatorInner::scope` states.
const OUT: u32 = 0;
const IN: u32 = 1;
/// Outside its scopes, claimed by the collector (flushing its mcache) or
/// by its own `Drop`; `enter` waits.
const BUSY: u32 = 2;
/// Inside a scope, parked at a handshake while the world is stopped
/// (checkmark mode only).
const PARKED: u32 = 3;

/// Barrier-buffer entries before a mutator flushes them (Go's wbBuf
/// holds 512 pointers).
const WBUF_CAP: usize = if crate::sync::LOOM { 8 } else { 512 };

/// A garbage collector and its heap. Cheap handles (`Arc<Collector>`) are
/// held by mutators, roots, weak references and the typed `Heap`; when the
/// last one goes, the collector thread stops and the heap is torn down.
pub struct Collector {
    inner: Arc<Inner>,
    gc_thread: Mutex<Option<crate::sync::thread::JoinHandle<()>>>,
}

/// What the collector thread shares with the handles.
pub(crate) struct Inner {
    heap: Arc<MHeap>,
    config: GcConfig,
    /// GOGC now (`config.pacer.gc_percent` at first; `GC_OFF` for off),
    /// changed by [`Collector::set_gc_percent`]. Read where a cycle sets
    /// its goal.
    gc_percent: AtomicU64,
    /// Registered and ready finalizers (`crate::finalizer`).
    finalizers: Mutex<crate::finalizer::Finalizers>,
    /// `finalizers.ready.len()`, readable without the lock.
    finalizers_ready: AtomicUsize,
    /// `finalizers.registered.len()`, a hint read without the lock: the
    /// root scan and mark termination skip the table when it reads 0. A
    /// registration racing either comes from a mutator that holds the
    /// object (it is marked, or shaded by the registration) and is seen
    /// at the next cycle. (Unmodelled under loom: no model registers a
    /// finalizer, and the skipped lock keeps the models' state small.)
    finalizers_registered: crate::sync::unmodeled::AtomicUsize,
    /// Finalizers run, and those that panicked (caught).
    finalizers_run: AtomicU64,
    finalizer_panics: AtomicU64,
    /// Ephemeron tables: value address → processing function
    /// (`Collector::register_ephemeron_table`).
    ephemerons: Mutex<std::collections::HashMap<usize, crate::finalizer::EphemeronFn>>,
    /// `ephemerons.len()`, an unmodelled hint like `finalizers_registered`.
    ephemerons_registered: crate::sync::unmodeled::AtomicUsize,
    /// A census is wanted from the next cycle to start (`Collector::census`).
    census_want: AtomicBool,
    /// The census the last census cycle took.
    census_out: Mutex<Option<crate::census::Census>>,
    /// Serialises `Collector::census` callers.
    census_lock: Mutex<()>,
    /// A heap verification is wanted from the next cycle to start
    /// (`Collector::verify`), and the result of the last one.
    verify_want: AtomicBool,
    verify_out: Mutex<Option<Result<(), String>>>,
    /// Serialises `Collector::verify` callers.
    verify_lock: Mutex<()>,
    /// `cycle << 1 | MARKING`. Changes only under `gate` (SeqCst: mutators
    /// read it right after publishing their scope state, the collector
    /// reads their scope state right after changing it).
    phase: AtomicU64,
    /// The cycle whose clean-stack (S) acknowledgements count: set once
    /// every mutator in a scope has acknowledged the barrier (A).
    s_round: AtomicU64,
    /// Termination flush round (see `run_cycle`).
    flush_round: AtomicU64,
    /// Stop-the-world request (checkmark, census, the verifiers and
    /// stop-the-world mode).
    stop: AtomicBool,
    /// With `stop`: park only at clean points (scope entry and exit,
    /// `safepoint`), where a mutator holds no unrooted GC pointer — the
    /// world a mark may start in ([`GcConfig::stop_the_world`]).
    stop_clean: AtomicBool,
    /// Serialises every way of marking that is not a mark worker's —
    /// barrier-buffer flushes, weak upgrades, joining as an assist — with
    /// the phase changes. See `GateState`.
    gate: Mutex<GateState>,
    /// Grey objects shared by workers, assists and flushes.
    injector: Injector<usize>,
    /// Unpaid cell debts: `GcRefCell`s a marker skipped because a writer
    /// held them (`Tracer::owe_cell`, taken over by the writer with
    /// `MutatorCore::take_owed_cell` once it has shaded the contents),
    /// whose contents have not yet been flushed from that writer's
    /// buffer. Invariant: at least the sum of all `WBuf::owed`
    /// (incremented here first, decremented here last). Termination
    /// requires 0.
    owed_cells: AtomicUsize,
    /// Objects marked / bytes marked / objects scanned this cycle outside
    /// the mark workers (flushes, upgrades, assists).
    side_marked: AtomicU64,
    side_bytes: AtomicU64,
    side_scanned: AtomicU64,
    /// Nanoseconds mutators spent in mark assists, scanning
    /// (`assist_scan_ns`) and waiting over the goal for the mark
    /// (`assist_wait_ns`), over all cycles (`GcStats::assist_total`,
    /// `GcStats::assist_wait_total`).
    assist_scan_ns: AtomicU64,
    assist_wait_ns: AtomicU64,
    /// Scan work expected this cycle (bytes: the last cycle's marked
    /// bytes) and the heap goal: an assist owes `bytes × expected /
    /// (goal − heap_live)` (Go's `assistWorkPerByte`, re-evaluated at
    /// each assist). Between marks `assist_goal` is the goal set by the
    /// last one (`MutatorCore::await_mark_start`).
    assist_expected: AtomicU64,
    assist_goal: AtomicU64,
    /// Every registered mutator. Deregistration and the collector's flush
    /// of idle mcaches take the lock.
    mutators: Mutex<Vec<MutPtr>>,
    /// The collector waits here for mutators' acknowledgements. The count
    /// goes up with every notification (`notify_collector`), so a wait
    /// that begins after a notification was sent returns at once: no
    /// wake-up is lost between the collector's check and its wait.
    acks: Mutex<u64>,
    ack_cv: Condvar,
    /// The collector checks acknowledgements (set before each check,
    /// Dekker with the mutators' acknowledgement store then flag load).
    ack_waiting: AtomicBool,
    /// The `acks` count read just before the collector's last check
    /// (collector thread only).
    ack_seen: AtomicU64,
    /// Parked mutators wait here (checkmark stops).
    park: Mutex<()>,
    park_cv: Condvar,
    /// Cycle requests and completions.
    ctl: Mutex<Ctl>,
    ctl_cv: Condvar,
    done_cv: Condvar,
    /// A cycle is running (requests that do not queue are ignored).
    cycle_active: AtomicBool,
    roots: SlotTable,
    /// Shared (not only owned here) so that a heap object holding weak
    /// slots — an ephemeron table — can keep the table alive without
    /// keeping the collector alive: a `Collector` reachable from one of
    /// its own objects would never be torn down.
    weaks: Arc<SlotTable>,
    /// Root slots dropped while marking: they keep their object (Yuasa's
    /// deletion barrier for roots) until the mark ends.
    deferred_roots: Mutex<Vec<Slot>>,
    history: Mutex<History>,
    drop_panics: Arc<AtomicU64>,
    sweeper: Mutex<Option<Arc<Sweeper>>>,
    sweeper_thread: Mutex<Option<crate::sync::thread::JoinHandle<()>>>,
    #[cfg_attr(loom, allow(dead_code))]
    mark_pool: Mutex<Option<Arc<rayon::ThreadPool>>>,
    epoch: Instant,
}

/// Under `Inner::gate`.
struct GateState {
    /// Objects found white by flushes and weak upgrades, over all cycles.
    /// A termination round that sees it unchanged saw no hidden grey
    /// object (`run_cycle`).
    late_work: u64,
    /// Assists between joining (under the gate, while marking) and
    /// leaving; termination requires none.
    assists: usize,
    /// Assists that joined, over all cycles: a termination round during
    /// which one joined is not clean (it may have scanned objects, and
    /// skipped a `GcRefCell` a writer had just shaded into its buffer).
    assists_joined: u64,
}

struct Ctl {
    requested: bool,
    forced: bool,
    started: u64,
    completed: u64,
    shutdown: bool,
}

#[derive(Clone, Copy)]
struct MutPtr(NonNull<MutatorInner>);
// SAFETY: the collector dereferences these only to read the atomics of a
// registered mutator (deregistration takes the registry lock after
// claiming BUSY), and touches the mcache or barrier buffer only of a
// mutator it has claimed (BUSY) or that is parked.
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

/// Aborts the process if it is dropped while its thread unwinds: a
/// collector or sweeper thread that panics (a panicking assertion, or a
/// bug; failed heap checks abort by themselves) leaves a cycle or a sweep half
/// done, and every mutator waiting for it would wait forever. Go throws
/// in the same places. (Not under loom, where `fatal` panics and the
/// model reports the first panic itself.)
struct AbortOnUnwind(&'static str);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        let unwinding = std::thread::panicking(); // sync-shim: allow (a query, no primitive)
        if !cfg!(loom) && unwinding {
            fatal(&format!(
                "the {} thread panicked (message above); the heap cannot go on",
                self.0
            ));
        }
    }
}

impl Sweeper {
    fn run(&self) {
        let _abort = AbortOnUnwind("background sweeper");
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
    /// A new collector with an empty heap, and its collector thread.
    pub fn new(mut config: GcConfig) -> Result<Arc<Collector>, BuildError> {
        // The pacer keeps its goal below the hard limit.
        config.pacer.hard_limit = config.heap.heap_limit.map(|l| l as u64);
        let gc_percent = AtomicU64::new(config.pacer.gc_percent.map_or(GC_OFF, u64::from));
        let drop_panics = Arc::new(AtomicU64::new(0));
        let dp = drop_panics.clone();
        let hook: spanheap_heap::FreeHook = Box::new(move |base| {
            if !drop_dead_object(base) {
                dp.fetch_add(1, Ordering::Relaxed);
            }
        });
        let heap = Arc::new(MHeap::with_free_hook(config.heap.clone(), Some(hook))?);
        let first_goal = heap_goal(&config.pacer, 0, Overhead::default());
        heap.set_gc_trigger(trigger(0, first_goal, 0));
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
        let sweeper_thread = match &sweeper {
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
        let inner = Arc::new(Inner {
            history: Mutex::new(History {
                heap_goal: first_goal,
                ..History::default()
            }),
            heap,
            config,
            gc_percent,
            finalizers: Mutex::new(crate::finalizer::Finalizers::default()),
            finalizers_ready: AtomicUsize::new(0),
            finalizers_registered: crate::sync::unmodeled::AtomicUsize::new(0),
            finalizers_run: AtomicU64::new(0),
            finalizer_panics: AtomicU64::new(0),
            ephemerons: Mutex::new(std::collections::HashMap::new()),
            ephemerons_registered: crate::sync::unmodeled::AtomicUsize::new(0),
            census_want: AtomicBool::new(false),
            census_out: Mutex::new(None),
            census_lock: Mutex::new(()),
            verify_want: AtomicBool::new(false),
            verify_out: Mutex::new(None),
            verify_lock: Mutex::new(()),
            phase: AtomicU64::new(0),
            s_round: AtomicU64::new(0),
            flush_round: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stop_clean: AtomicBool::new(false),
            gate: Mutex::new(GateState {
                late_work: 0,
                assists: 0,
                assists_joined: 0,
            }),
            injector: Injector::new(),
            owed_cells: AtomicUsize::new(0),
            side_marked: AtomicU64::new(0),
            side_bytes: AtomicU64::new(0),
            side_scanned: AtomicU64::new(0),
            assist_scan_ns: AtomicU64::new(0),
            assist_wait_ns: AtomicU64::new(0),
            assist_expected: AtomicU64::new(0),
            assist_goal: AtomicU64::new(first_goal),
            mutators: Mutex::new(Vec::new()),
            acks: Mutex::new(0),
            ack_cv: Condvar::new(),
            ack_waiting: AtomicBool::new(false),
            ack_seen: AtomicU64::new(0),
            park: Mutex::new(()),
            park_cv: Condvar::new(),
            ctl: Mutex::new(Ctl {
                requested: false,
                forced: false,
                started: 0,
                completed: 0,
                shutdown: false,
            }),
            ctl_cv: Condvar::new(),
            done_cv: Condvar::new(),
            cycle_active: AtomicBool::new(false),
            roots: SlotTable::new(),
            weaks: Arc::new(SlotTable::new()),
            deferred_roots: Mutex::new(Vec::new()),
            drop_panics,
            sweeper: Mutex::new(sweeper),
            sweeper_thread: Mutex::new(sweeper_thread),
            mark_pool: Mutex::new(None),
            epoch: Instant::now(),
        });
        let i2 = inner.clone();
        let gc_thread = match crate::sync::thread::Builder::new()
            .name("spanheap-gc".into())
            .spawn(move || i2.gc_main())
        {
            Ok(t) => t,
            Err(e) => {
                // Nothing was allocated yet: stop the sweeper and give up.
                inner.teardown();
                return Err(BuildError::CollectorThread(e.to_string()));
            }
        };
        Ok(Arc::new(Collector {
            inner,
            gc_thread: Mutex::new(Some(gc_thread)),
        }))
    }

    /// The heap.
    pub fn heap(&self) -> &Arc<MHeap> {
        &self.inner.heap
    }

    /// The configuration.
    pub fn config(&self) -> &GcConfig {
        &self.inner.config
    }

    /// The root table.
    pub fn roots(&self) -> &SlotTable {
        &self.inner.roots
    }

    /// The weak-reference table.
    pub fn weaks(&self) -> &SlotTable {
        &self.inner.weaks
    }

    /// The weak-reference table, shared: for a heap object that owns weak
    /// slots (an ephemeron table), which must hold the table but must not
    /// hold an `Arc<Collector>` — the heap owns its objects, so such an
    /// object would keep its own heap from ever being torn down.
    pub fn weaks_shared(&self) -> Arc<SlotTable> {
        self.inner.weaks.clone()
    }

    /// Drops a root slot: at once outside a mark; during a mark the slot
    /// keeps its object until the mark ends (the deletion barrier for
    /// roots: the object was reachable when the mark started).
    ///
    /// The slot is emptied with `deferred_roots` still held, so a drop
    /// that found no mark running is complete before the snapshot
    /// verifier (which reads the table holding that lock) can look. A
    /// thread outside every scope — a root dropped between scopes, or by
    /// `finalizer_done` — is not waited for when a mark starts, and an
    /// empty-after-the-check slot was read full by the snapshot of a mark
    /// that started in between (a false report: the object was unrooted
    /// before that mark, as the check says).
    ///
    /// # Safety
    /// 1. `slot` came from [`Collector::roots`] and is not used again.
    pub unsafe fn remove_root(&self, slot: Slot) {
        let mut d = self.inner.deferred_roots.lock();
        if self.inner.phase.load(Ordering::SeqCst) & MARKING != 0
            // loom-tests broken variant: empty the slot at once even while
            // marking (no deletion barrier for roots).
            && !crate::sync::broken::is("root_drop_not_deferred")
        {
            d.push(slot);
        } else {
            // SAFETY: obligation 1.
            unsafe { self.inner.roots.remove(slot) };
            drop(d);
        }
    }

    /// Registers `payload` as the finalizer of the object whose value is
    /// at `addr`, replacing (and returning) any previous one. The caller
    /// (the typed layer) holds the object and, if its mutator's barrier is
    /// on, shades it (see `crate::finalizer`, step 1).
    pub fn set_finalizer(&self, addr: usize, payload: Payload) -> Option<Payload> {
        let mut f = self.inner.finalizers.lock();
        let old = f.registered.insert(addr, payload);
        self.set_registered_hint(f.registered.len());
        old
    }

    /// Removes the finalizer of the object at `addr`, if it has one that
    /// has not been queued yet. The caller (the typed layer), if its
    /// mutator's barrier is on, shades the object first: the registration
    /// kept its referents in the mark's snapshot.
    pub fn clear_finalizer(&self, addr: usize) -> Option<Payload> {
        let mut f = self.inner.finalizers.lock();
        let old = f.registered.remove(&addr);
        self.set_registered_hint(f.registered.len());
        old
    }

    /// Publishes `finalizers.registered.len()` (under that lock).
    fn set_registered_hint(&self, n: usize) {
        self.inner
            .finalizers_registered
            .store(n, crate::sync::unmodeled::Ordering::SeqCst);
    }

    /// Registers the ephemeron table whose value is at `addr` (a weak-keyed
    /// map: an entry's value is kept alive only while its key is). Its
    /// `Trace` impl must not report entries to markers; instead, while the
    /// table is marked, the mark runs `f` on it until no entry's value adds
    /// anything (a fixpoint, before the termination round), and each
    /// round that marks anything is followed by another. The table
    /// leaves the registry at the mark termination that finds it
    /// unmarked. The table's keys are weak slots, cleared with the others.
    ///
    /// # Safety
    /// 1. `addr` is the value address of a live table that `f` processes,
    ///    registered once; it stays registered until the collector drops
    ///    it (it is not freed before: it is unmarked at that termination).
    pub unsafe fn register_ephemeron_table(&self, addr: usize, f: crate::finalizer::EphemeronFn) {
        let mut e = self.inner.ephemerons.lock();
        e.insert(addr, f);
        let n = e.len();
        self.inner
            .ephemerons_registered
            .store(n, crate::sync::unmodeled::Ordering::SeqCst);
    }

    /// Whether some finalizer is waiting to run (one relaxed load).
    #[inline]
    pub fn has_ready_finalizers(&self) -> bool {
        self.inner.finalizers_ready.load(Ordering::Relaxed) != 0
    }

    /// Takes the finalizers waiting to run. The caller runs each (on a
    /// mutator, outside its scopes) and then calls
    /// [`Collector::finalizer_done`].
    pub fn take_ready_finalizers(&self) -> Vec<ReadyFinalizer> {
        let mut f = self.inner.finalizers.lock();
        self.inner.finalizers_ready.store(0, Ordering::Relaxed);
        std::mem::take(&mut f.ready)
    }

    /// Releases a ready finalizer's object after its callback ran (or
    /// panicked).
    ///
    /// # Safety
    /// 1. `slot` is the slot of a [`ReadyFinalizer`] taken from this
    ///    collector, released once.
    pub unsafe fn finalizer_done(&self, slot: Slot, panicked: bool) {
        let i = &*self.inner;
        i.finalizers_run.fetch_add(1, Ordering::Relaxed);
        if panicked {
            i.finalizer_panics.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: obligation 1: the slot came from the root table (the
        // mark termination that queued it) and is not used again.
        unsafe { self.remove_root(slot) };
    }

    /// Reads a weak slot for an upgrade. `marking` is the caller's view of
    /// the phase (its mutator's barrier flag): while marking, the target is
    /// marked before it is returned (Go's `weak.Pointer.Value` shades it),
    /// atomically with respect to the clearing of weak slots at mark
    /// termination.
    pub fn load_weak(&self, slot: &AtomicUsize, marking: bool) -> usize {
        if !marking {
            // Not marking (as far as this mutator has acknowledged): the
            // slot is stable until this mutator's next handshake.
            return slot.load(Ordering::Acquire);
        }
        let i = &*self.inner;
        let mut g = i.gate.lock();
        let a = slot.load(Ordering::Acquire);
        let ph = i.phase.load(Ordering::SeqCst);
        if crate::sync::broken::is("weak_upgrade_no_shade") {
            // loom-tests broken variant: return the target without
            // marking it.
            return a;
        }
        if a != 0 && ph & MARKING != 0 {
            i.shade_locked(&mut g, ph >> 1, [a]);
        }
        a
    }

    /// Registers a new mutator (Go: a new P with its mcache).
    /// (An associated function, not a method: `self: &Arc<Self>` is not
    /// available for loom's `Arc`.)
    pub fn mutator(this: &Arc<Self>) -> MutatorCore {
        let mut mcache = MCache::new(this.inner.heap.clone());
        mcache.report_handshakes(true);
        let core = Box::new(MutatorInner {
            mcache: UnsafeCell::new(mcache),
            wbuf: UnsafeCell::new(WBuf::default()),
            local: Cell::new(Local::default()),
            allocs: Cell::new(0),
            borrows: Cell::new(0),
            stress: this.inner.config.stress,
            scope: AtomicU32::new(OUT),
            ack_a: AtomicU64::new(0),
            ack_s: AtomicU64::new(0),
            ack_flush: AtomicU64::new(0),
        });
        let ptr = NonNull::from(Box::leak(core));
        this.inner.mutators.lock().push(MutPtr(ptr));
        MutatorCore {
            collector: this.clone(),
            inner: ptr,
        }
    }

    /// Runs a full collection and waits for it (Go's `runtime.GC` without
    /// the final sweep). A cycle waits only for mutators inside a scope to
    /// pass one safepoint; mutators outside their scopes never delay it.
    ///
    /// # Panics
    /// If the calling thread is inside a scope of this heap (the cycle
    /// would wait for the caller's own safepoint), or inside the `Drop` of
    /// a collected object.
    pub fn collect(&self) {
        self.check_not_in_scope("collect()");
        if crate::object::in_drop() {
            panic!("spanheap: collect() called from the Drop of a collected object");
        }
        let i = &*self.inner;
        let mut c = i.ctl.lock();
        let target = c.started + 1;
        c.requested = true;
        c.forced = true;
        i.ctl_cv.notify_all();
        while c.completed < target {
            i.done_cv.wait(&mut c);
        }
    }

    /// Counts the reachable objects by type: runs a full cycle whose mark
    /// termination stops the world and walks the heap from the roots
    /// (see [`crate::census`] for what it does and does not see). A
    /// debugging tool: the pause is as long as the walk.
    ///
    /// # Panics
    /// As [`Collector::collect`].
    pub fn census(&self) -> crate::census::Census {
        self.check_not_in_scope("census()");
        let i = &*self.inner;
        self.collect_for(&i.census_lock, &i.census_want, &i.census_out)
    }

    /// Runs full cycles until one has taken the `want` flag and left its
    /// result in `out`; one caller at a time (`lock`).
    fn collect_for<T>(&self, lock: &Mutex<()>, want: &AtomicBool, out: &Mutex<Option<T>>) -> T {
        let _one_at_a_time = lock.lock();
        loop {
            want.store(true, Ordering::SeqCst);
            self.collect();
            // The cycle that took the flag may be the one that was about to
            // start when it was set; it completed before `collect` returned.
            if let Some(r) = out.lock().take() {
                return r;
            }
        }
    }

    /// Checks the heap's structure — every span's bitmaps, `allocCount`,
    /// `allocCache` and sweepgen against the list or cache that holds it,
    /// the page allocator and the page map ([`MHeap::verify`],
    /// [`spanheap_heap::MCache::verify`]) — by running a full cycle that
    /// does so with the world stopped at sweep termination. Returns the
    /// first fault found.
    ///
    /// # Panics
    /// As [`Collector::collect`].
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.check_not_in_scope("verify()");
        let i = &*self.inner;
        self.collect_for(&i.verify_lock, &i.verify_want, &i.verify_out)
            .map_err(VerifyError)
    }

    /// Sets GOGC (`None`: off) and returns the previous setting (Go's
    /// `debug.SetGCPercent`). The goal and trigger are recomputed at once
    /// from the last cycle's marked heap, and a cycle is requested if the
    /// heap is already past the new trigger. (A cycle ending at the same
    /// moment may still set its goal with the old value; the next one
    /// uses the new.)
    pub fn set_gc_percent(&self, percent: Option<u32>) -> Option<u32> {
        let i = &*self.inner;
        let old = i
            .gc_percent
            .swap(percent.map_or(GC_OFF, u64::from), Ordering::Relaxed);
        let mem = i.heap.stats();
        let overhead = Overhead {
            idle_resident: mem.heap_idle.saturating_sub(mem.heap_released),
            metadata: mem.mspan_inuse + mem.gc_sys,
        };
        {
            let mut h = i.history.lock();
            let goal = heap_goal(&i.pacer(), h.heap_marked, overhead);
            i.heap.set_gc_trigger(trigger(h.heap_marked, goal, 0));
            h.heap_goal = goal;
            if i.phase.load(Ordering::SeqCst) & MARKING == 0 {
                i.assist_goal.store(goal, Ordering::Relaxed);
            }
        }
        i.request(false);
        (old != GC_OFF).then_some(old as u32)
    }

    /// Cycles completed so far.
    pub fn cycles(&self) -> u64 {
        self.inner.ctl.lock().completed
    }

    fn check_not_in_scope(&self, what: &str) {
        if ACTIVE.with(|a| a.get().0) == self as *const Self as usize {
            panic!(
                "spanheap: {what} called inside a scope of the same heap (it would wait for itself)"
            );
        }
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> GcStats {
        let i = &*self.inner;
        let h = i.history.lock();
        GcStats {
            num_gc: h.num_gc,
            num_forced_gc: h.num_forced_gc,
            pause_total: h.pause_total,
            pauses: h.pauses.iter().copied().collect(),
            pause_max: h.pause_max,
            mark_total: h.mark_total,
            last_mark: h.last_mark,
            assist_total: Duration::from_nanos(i.assist_scan_ns.load(Ordering::Relaxed)),
            assist_wait_total: Duration::from_nanos(i.assist_wait_ns.load(Ordering::Relaxed)),
            last_gc: h.last_gc,
            heap_marked: h.heap_marked,
            heap_goal: h.heap_goal,
            last_marked_objects: h.last_marked_objects,
            scanned_objects: h.scanned_objects,
            drop_panics: i.drop_panics.load(Ordering::Relaxed),
            roots: i.roots.len(),
            weak_refs: i.weaks.len(),
            weak_cleared: h.weak_cleared,
            finalizers_registered: i.finalizers.lock().registered.len(),
            finalizers_ready: i.finalizers_ready.load(Ordering::Relaxed),
            finalizers_run: i.finalizers_run.load(Ordering::Relaxed),
            finalizer_panics: i.finalizer_panics.load(Ordering::Relaxed),
            mem: i.heap.stats(),
        }
    }
}

/// Per-cycle totals of the mark workers.
#[derive(Default)]
struct Totals {
    objects: u64,
    bytes: u64,
    scanned: u64,
    workers: usize,
}

impl Inner {
    /// The collector thread: runs a cycle per request (Go's background
    /// `gcBgMarkWorker`s and the goroutine running `gcStart` /
    /// `gcMarkDone` / `gcMarkTermination` are all this thread, helped by
    /// the mark pool and by assists).
    fn gc_main(&self) {
        let _abort = AbortOnUnwind("collector");
        loop {
            let forced = {
                let mut c = self.ctl.lock();
                while !c.requested && !c.shutdown {
                    self.ctl_cv.wait(&mut c);
                }
                if c.shutdown {
                    return;
                }
                c.requested = false;
                c.started += 1;
                // Under the lock: `request` re-checks it there, so a
                // request racing this start cannot queue a second cycle.
                self.cycle_active.store(true, Ordering::SeqCst);
                std::mem::take(&mut c.forced)
            };
            self.run_cycle(forced);
            self.cycle_active.store(false, Ordering::SeqCst);
            let mut c = self.ctl.lock();
            c.completed += 1;
            self.done_cv.notify_all();
        }
    }

    /// Asks for a cycle. `queue`: even if one is running (stress mode);
    /// otherwise a request during a cycle is dropped (the next trigger is
    /// set when it ends), and so is one made when the heap is below the
    /// trigger (Go's `gcTrigger.test` at `gcStart`): a mutator reports
    /// "over the trigger" at its next scope exit or safepoint, which may
    /// come after the cycle that the crossing already started has ended
    /// and set a new trigger. Without this check every such cycle was
    /// followed by a second, back-to-back one (twice the cycles in the
    /// latency benchmark and in binary-trees).
    fn request(&self, queue: bool) {
        if !queue && (self.cycle_active.load(Ordering::Relaxed) || !self.heap.trigger_reached()) {
            return;
        }
        let mut c = self.ctl.lock();
        if !queue && self.cycle_active.load(Ordering::SeqCst) {
            return;
        }
        if !c.requested {
            c.requested = true;
            self.ctl_cv.notify_all();
        }
    }

    /// Marks `addrs` for cycle `cycle` on behalf of a mutator (barrier
    /// buffer flush, weak upgrade), sharing the grey objects. Called under
    /// the gate, with the phase checked to be that cycle's mark; counts
    /// what was found white in `late_work` (the termination check).
    fn shade_locked(&self, g: &mut GateState, cycle: u64, addrs: impl IntoIterator<Item = usize>) {
        let mut t = Tracer::new_light(&self.heap, cycle, &self.owed_cells);
        for a in addrs {
            t.edge(a);
        }
        g.late_work += t.marked_objects;
        self.account_side(&t);
        t.publish_grey(&self.injector);
    }

    fn account_side(&self, t: &Tracer<'_>) {
        if t.marked_objects != 0 {
            self.side_marked
                .fetch_add(t.marked_objects, Ordering::Relaxed);
            self.side_bytes.fetch_add(t.marked_bytes, Ordering::Relaxed);
        }
        if t.scanned_objects != 0 {
            self.side_scanned
                .fetch_add(t.scanned_objects, Ordering::Relaxed);
        }
    }

    /// Wakes the collector if it waits for acknowledgements. Called after
    /// the acknowledgement (or scope exit, or stale-span flush) it reports
    /// was stored.
    fn notify_collector(&self) {
        if self.ack_waiting.load(Ordering::SeqCst) {
            let mut g = self.acks.lock();
            *g = g.wrapping_add(1);
            self.ack_cv.notify_all();
        }
    }

    /// Before the collector checks what mutators acknowledged: from here,
    /// a mutator that acknowledges something the check may miss wakes the
    /// next [`Inner::wait_acks`]. (Its store precedes its load of
    /// `ack_waiting`; our store precedes our check: by SeqCst, if the check
    /// missed its store, its load sees the flag, and its notification
    /// bumps `acks` after we read it here.)
    fn arm_ack_wait(&self) {
        self.ack_waiting.store(true, Ordering::SeqCst);
        let seen = *self.acks.lock();
        self.ack_seen.store(seen, Ordering::Relaxed);
    }

    /// Waits for a notification sent since the last [`Inner::arm_ack_wait`]
    /// (at once if one was). The 1 ms timeout is a backstop only; the loom
    /// models, where a timed wait never times out, check that no wait
    /// depends on it.
    fn wait_acks(&self) {
        let mut g = self.acks.lock();
        if *g == self.ack_seen.load(Ordering::Relaxed)
            // loom-tests broken variant: wait even if a notification came
            // after the check (the lost wake-up this count prevents).
            || crate::sync::broken::is("ack_wait_ignores_count")
        {
            self.ack_cv
                .wait_for(&mut g, std::time::Duration::from_millis(1));
        }
    }

    /// Whether `ok` holds for every mutator inside a scope, parked ones
    /// included (mutators outside their scopes hold no state the
    /// collector waits for). While it does not, mutators wake the collector when
    /// they acknowledge something (`ack_waiting`, set before the check:
    /// Dekker with the mutators' acknowledgement then flag load).
    fn all_in_scope(&self, ok: impl Fn(&MutatorInner) -> bool) -> bool {
        self.arm_ack_wait();
        let stw_parked = self.stop.load(Ordering::SeqCst) && self.stop_clean.load(Ordering::SeqCst);
        let all = {
            let reg = self.mutators.lock();
            reg.iter().all(|m| {
                // SAFETY: registered mutators stay allocated while the
                // registry lock is held (deregistration takes it).
                let m = unsafe { m.0.as_ref() };
                // A parked mutator is in its scope: it is outside mutator
                // code only until the world restarts, and its stack may
                // hold pointers from before this cycle. Counting it as
                // acknowledged let a cycle reach T, or end, while it slept
                // through it — except in stop-the-world mode, where it
                // parked at a clean point (no unrooted pointer) and stays
                // parked until the cycle's sweep is over.
                let s = m.scope.load(Ordering::SeqCst);
                (s != IN && s != PARKED) || ok(m) || (s == PARKED && stw_parked)
            })
        };
        if all {
            self.ack_waiting.store(false, Ordering::SeqCst);
        }
        all
    }

    /// Sweep termination (Go's `finishsweep_m`), without stopping anyone:
    /// sweeps what is left and flushes the mcaches of mutators outside
    /// their scopes; mutators inside a scope flush their stale spans at
    /// their next allocation or safepoint, which a handshake request
    /// prompts.
    fn finish_previous_sweep(&self) {
        let heap = &*self.heap;
        loop {
            while heap.sweep_one().is_some() {}
            // Before the check of stale spans below (`arm_ack_wait`): a
            // mutator that flushes one after it wakes our wait.
            self.arm_ack_wait();
            let claimed: Vec<MutPtr> = {
                let reg = self.mutators.lock();
                reg.iter()
                    .copied()
                    .filter(|m| {
                        // SAFETY: registered, registry locked.
                        let m = unsafe { m.0.as_ref() };
                        m.scope
                            .compare_exchange(OUT, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    })
                    .collect()
            };
            for m in claimed {
                // SAFETY: we claimed the mutator (BUSY): its owner is outside
                // its scopes and cannot enter or drop it until we store OUT,
                // so nobody else uses its mcache and it stays allocated.
                let m = unsafe { m.0.as_ref() };
                // SAFETY: as just argued, we have exclusive use of the mcache.
                unsafe { m.mcache.with_mut(|c| (*c).release_all()) };
                m.scope.store(OUT, Ordering::SeqCst);
            }
            match heap.finish_sweep() {
                Ok(()) => {
                    self.ack_waiting.store(false, Ordering::SeqCst);
                    return;
                }
                Err(_) => {
                    heap.request_handshake();
                    self.wait_acks();
                }
            }
        }
    }

    /// One cycle (module docs, "A cycle").
    fn run_cycle(&self, forced: bool) {
        let heap = &*self.heap;
        let t0 = Instant::now();
        // A census stops the world at mark termination, as checkmark and
        // the heap verifier do; stop-the-world mode stops it from before
        // the mark until after the sweep.
        let census = self.census_want.swap(false, Ordering::SeqCst);
        let verify_wanted = self.verify_want.swap(false, Ordering::SeqCst);
        let stw = self.config.stop_the_world;
        let stop_the_world = !stw && (self.config.checkmark || census || self.config.verify);
        self.finish_previous_sweep();
        if stw {
            // Park every mutator at its next clean point: no stack holds
            // an unrooted pointer, so the roots are all the mark needs.
            self.stop_clean.store(true, Ordering::SeqCst);
            self.stop_world();
        }
        if verify_wanted || self.config.verify {
            // Sweep termination: every span swept, every idle mcache
            // flushed.
            if !stw {
                self.stop_world();
            }
            let r = self.verify_stopped();
            if !stw {
                self.start_world();
            }
            if let (true, Err(e)) = (self.config.verify, &r) {
                fatal(&format!("heap verifier, at sweep termination: {e}"));
            }
            if verify_wanted {
                *self.verify_out.lock() = Some(r);
            }
        }
        let heap_before = heap.heap_live();

        // Mark start: the phase, under the gate.
        let (c, pause_start) = {
            let _g = self.gate.lock();
            let ts = Instant::now();
            let c = (self.phase.load(Ordering::Relaxed) >> 1) + 1;
            self.side_marked.store(0, Ordering::Relaxed);
            self.side_bytes.store(0, Ordering::Relaxed);
            self.side_scanned.store(0, Ordering::Relaxed);
            self.phase.store((c << 1) | MARKING, Ordering::SeqCst);
            (c, ts.elapsed())
        };
        let t1 = Instant::now();
        // Round A: every mutator in a scope turns its barrier on at its
        // next handshake.
        heap.request_handshake();
        while !self.all_in_scope(|m| m.ack_a.load(Ordering::SeqCst) >= c) {
            self.wait_acks();
        }
        // Every barrier is on: the snapshot the deletion barrier keeps.
        let snapshot = self
            .config
            .verify_snapshot
            .then(|| self.reachable_from_roots(!stw));
        let live_at_start = heap.heap_live();
        // Allocate black only now: before every mutator had its barrier
        // on, a black object could have been written without a barrier by
        // a mutator that had not, and never scanned. Objects allocated
        // white until a mutator's S are on its pre-S stack, which its
        // barrier covers (it shades what it inserts until S).
        if let Some(d) = self.config.fault_stall_before_t {
            crate::sync::thread::sleep(d);
        }
        // SAFETY: finish_previous_sweep returned: every span is swept, so
        // mark bits may be set from now on (obligation 1).
        unsafe { heap.set_allocate_black() };
        // From now on a safepoint proves a clean stack for this cycle
        // (and adopts allocate-black first).
        self.s_round.store(c, Ordering::SeqCst);
        heap.request_handshake();
        {
            let h = self.history.lock();
            self.assist_goal.store(h.heap_goal, Ordering::Relaxed);
            self.assist_expected
                .store(h.heap_marked.max(1 << 20), Ordering::Relaxed);
        }
        // Roots. Their grey objects go straight to the first drain round,
        // not to the shared queue, so that a mark assist does not pick up
        // a root object that is a huge container (a VM stack, a ring of
        // messages) and scan it inside one allocation.
        let mut roots_grey = {
            let mut t = Tracer::new_light(heap, c, &self.owed_cells);
            self.roots.for_each_value(|a| t.edge(a));
            // What an object with a finalizer reaches stays alive for its
            // finalizer; the object itself is not marked from here.
            if self.has_registered_finalizers() {
                for &a in self.finalizers.lock().registered.keys() {
                    t.scan_fields(a);
                }
            }
            self.account_side(&t);
            t.take_grey()
        };

        let mut totals = Totals {
            workers: 1,
            ..Totals::default()
        };
        let (pause_term, cleared, t2) = loop {
            self.drain_round(heap, c, &mut totals, std::mem::take(&mut roots_grey));
            if !self.injector.is_empty() {
                continue;
            }
            // Ephemerons: the values whose keys are now marked, until a
            // pass marks nothing new.
            if self.process_ephemerons(heap, c) {
                continue;
            }
            // Every mutator in a scope must have passed a safepoint since
            // round A: until then its stack may hold pointers the mark
            // has not seen.
            if !self.all_in_scope(|m| m.ack_s.load(Ordering::SeqCst) >= c) {
                self.wait_acks();
                continue;
            }
            // Termination round (Go's ragged `forEachP` flush): every
            // mutator in a scope flushes its barrier buffer once; if no
            // flush or weak upgrade found a white object meanwhile, no
            // marker scanned anything, no cell debt is open and no grey
            // object is left, no grey object exists anywhere.
            // An assist running when the round opens scans during it (as
            // one that joins later does): either makes the round unclean.
            let (w0, a0, assist_at_open, round) = {
                let g = self.gate.lock();
                (
                    g.late_work,
                    g.assists_joined,
                    g.assists != 0,
                    self.flush_round.fetch_add(1, Ordering::SeqCst) + 1,
                )
            };
            heap.request_handshake();
            let mut scanned_in_round = false;
            while !self.all_in_scope(|m| m.ack_flush.load(Ordering::SeqCst) >= round) {
                if crate::sync::broken::is("termination_skips_flush_round") {
                    // loom-tests broken variant: do not wait for the
                    // mutators' flushes.
                    break;
                }
                if !self.injector.is_empty() {
                    self.drain_round(heap, c, &mut totals, Vec::new());
                    scanned_in_round = true;
                } else {
                    self.wait_acks();
                }
            }
            if stop_the_world {
                self.stop_world();
            }
            // (Before the gate: the verifier takes the registry, which is
            // ordered before the gate. A round found unclean below wastes
            // the check, nothing more.)
            if self.config.verify
                && let Err(e) = self.verify_stopped()
            {
                fatal(&format!("heap verifier, at mark termination: {e}"));
            }
            let g = self.gate.lock();
            if g.late_work != w0
                || scanned_in_round
                || assist_at_open
                || g.assists_joined != a0
                || !self.injector.is_empty()
                || g.assists != 0
                // A key marked after the last pass (by a flush before this
                // round opened: not counted in `late_work - w0`) has its
                // value traced here, under the gate; that makes the round
                // unclean (and so may a cell debt it opens, checked next).
                // Mutators never take the gate while they hold a table's
                // lock.
                || self.process_ephemerons(heap, c)
                || self.owed_cells.load(Ordering::SeqCst) != 0
            {
                drop(g);
                if stop_the_world {
                    self.start_world();
                }
                continue;
            }
            // Mark termination, holding the gate: no flush, upgrade or
            // assist can mark anything until the phase is off.
            let t2 = Instant::now();
            if self.config.checkmark {
                self.checkmark(heap);
            }
            if let Some(snap) = &snapshot {
                self.verify_snapshot_marked(heap, snap);
            }
            if census {
                let taken = self.take_census(heap, c);
                *self.census_out.lock() = Some(taken);
            }
            // Weak references die with their targets, before the sweep
            // can free (and reuse) anything.
            let mut cleared = 0;
            // loom-tests broken variant: clear weak slots without the
            // gate, so an upgrade can mark a target found dead meanwhile.
            let g = if crate::sync::broken::is("weak_clear_outside_gate") {
                drop(g);
                None
            } else {
                Some(g)
            };
            self.weaks.for_each(|s| {
                let a = s.load(Ordering::Acquire);
                match heap.find_object(a) {
                    Some(o) if o.span.is_marked(o.index) => {}
                    _ => {
                        s.store(0, Ordering::Release);
                        cleared += 1;
                    }
                }
            });
            let g = g.unwrap_or_else(|| self.gate.lock());
            // Finalizers: resurrect each registered object left unmarked
            // (its referents were marked from the root scan) and queue it
            // behind a root slot (`crate::finalizer`, step 2).
            if self.has_registered_finalizers() {
                let mut f = self.finalizers.lock();
                let dead: Vec<usize> = f
                    .registered
                    .keys()
                    .copied()
                    .filter(
                        |&a| matches!(heap.find_object(a), Some(o) if !o.span.is_marked(o.index)),
                    )
                    .collect();
                for addr in dead {
                    let Some(payload) = f.registered.remove(&addr) else {
                        continue;
                    };
                    heap.mark_object(addr);
                    let slot = self.roots.insert(addr);
                    f.ready.push(crate::finalizer::ReadyFinalizer {
                        slot,
                        addr,
                        payload,
                    });
                }
                self.finalizers_ready
                    .store(f.ready.len(), Ordering::Relaxed);
                let n = f.registered.len();
                self.finalizers_registered
                    .store(n, crate::sync::unmodeled::Ordering::SeqCst);
            }
            // Ephemeron tables found unmarked die with this sweep.
            if self
                .ephemerons_registered
                .load(crate::sync::unmodeled::Ordering::SeqCst)
                != 0
            {
                let mut e = self.ephemerons.lock();
                e.retain(
                    |&a, _| matches!(heap.find_object(a), Some(o) if o.span.is_marked(o.index)),
                );
                let n = e.len();
                self.ephemerons_registered
                    .store(n, crate::sync::unmodeled::Ordering::SeqCst);
            }
            self.phase.store(c << 1, Ordering::SeqCst);
            // Marking is complete and no marker can mark any more (the
            // gate is held and the phase is off; assists and flushes check
            // it under the gate; the mark workers have returned).
            // SAFETY: obligation 1 of begin_sweep, as just argued.
            if let Err(e) = unsafe { heap.begin_sweep() } {
                fatal(&format!("cannot start the sweep: {e}"));
            }
            drop(g);
            if stw {
                // Eager sweep (gcstoptheworld=2): everything, before any
                // mutator runs again.
                self.sweep_stopped();
                self.stop_clean.store(false, Ordering::SeqCst);
                self.start_world();
            }
            let pause = t2.elapsed();
            if stop_the_world {
                self.start_world();
            }
            break (pause, cleared, t2);
        };
        // Roots dropped during the mark can go now.
        let deferred = std::mem::take(&mut *self.deferred_roots.lock());
        for s in deferred {
            // SAFETY: each deferred slot came from this root table and its
            // Root is gone.
            unsafe { self.roots.remove(s) };
        }

        // Pacing. Everything allocated during the mark was allocated black
        // and survives this sweep: count it as live.
        let marked_objects = totals.objects + self.side_marked.load(Ordering::Relaxed);
        let marked_bytes = totals.bytes + self.side_bytes.load(Ordering::Relaxed);
        let allocated = heap.heap_live().saturating_sub(live_at_start);
        // heap_live: what survives this sweep (marked, plus black).
        heap.reset_heap_live(marked_bytes + allocated);
        let mem = heap.stats();
        let overhead = Overhead {
            idle_resident: mem.heap_idle.saturating_sub(mem.heap_released),
            metadata: mem.mspan_inuse + mem.gc_sys,
        };
        // The goal follows what the mark found reachable (objects
        // allocated black during the mark are mostly garbage by the next).
        let goal = heap_goal(&self.pacer(), marked_bytes, overhead);
        // How far past its trigger the heap grew by the end of this mark:
        // the room the next cycle must leave below its goal.
        let overshoot = (live_at_start + allocated).saturating_sub(heap.gc_trigger());
        heap.set_gc_trigger(trigger(marked_bytes, goal, overshoot));
        // Until the next mark sets it again: the goal a mutator waits for
        // the next mark to start at (`MutatorCore::await_mark_start`).
        self.assist_goal.store(goal, Ordering::Relaxed);
        // Memory to keep mapped: the goal, or what the heap reached during
        // this cycle if more — the mutator allocated it while the mark ran
        // (it cannot end before each mutator's next clean point), and will
        // again next cycle. Releasing those pages after the sweep only to
        // fault them back one cycle later cost a page fault per 4 KiB
        // allocated on an allocate-and-drop loop of large objects. Plus
        // Go's retainExtraPercent (10%).
        let peak = live_at_start.saturating_add(allocated);
        let mut retain = goal.max(peak);
        retain = retain.saturating_add(retain / 10);
        if let Some(limit) = self.config.pacer.memory_limit {
            retain = retain.min((limit - limit / 20).saturating_sub(overhead.metadata));
        }
        heap.set_scavenge_goal(retain.min(usize::MAX as u64) as usize);
        let sweeper = self.sweeper.lock().clone();
        if let Some(s) = &sweeper {
            s.retain.store(retain, Ordering::Relaxed);
        }
        let t3 = Instant::now();

        let trace = {
            let mut h = self.history.lock();
            h.num_gc += 1;
            if forced {
                h.num_forced_gc += 1;
            }
            h.record_pause(pause_start);
            h.record_pause(pause_term);
            h.mark_total += t2 - t1;
            h.last_mark = t2 - t1;
            h.last_gc = Some(t3 - self.epoch);
            h.heap_marked = marked_bytes;
            h.heap_goal = goal;
            h.last_marked_objects = marked_objects;
            h.scanned_objects += totals.scanned + self.side_scanned.load(Ordering::Relaxed);
            h.weak_cleared += cleared;
            CycleTrace {
                cycle: h.num_gc,
                at: t0 - self.epoch,
                sweep_term: t1 - t0,
                mark: t2 - t1,
                mark_term: pause_term,
                heap_before,
                heap_after: live_at_start + allocated,
                heap_marked: marked_bytes,
                goal,
                marked_objects,
                workers: totals.workers,
                forced,
            }
        };
        if self.config.trace {
            eprintln!("{trace}");
        }
        tracing::debug!(
            target: "spanheap::gc",
            cycle = trace.cycle,
            pause_start_us = pause_start.as_micros() as u64,
            pause_term_us = pause_term.as_micros() as u64,
            heap_before = trace.heap_before,
            heap_marked = trace.heap_marked,
            goal = trace.goal,
            forced = trace.forced,
            "gc cycle"
        );
        if let Some(s) = &sweeper {
            s.ctl.lock().work = true;
            s.cv.notify_one();
        }
    }

    /// Drains the shared grey objects with the mark workers: this thread
    /// alone for small heaps or `mark_workers == 1`, else with helpers
    /// from the mark pool that steal from each other (crossbeam-deque).
    fn drain_round(&self, heap: &MHeap, c: u64, totals: &mut Totals, initial: Vec<usize>) {
        if self.injector.is_empty() && initial.is_empty() {
            return;
        }
        let fault = self.config.fault_lose_every.unwrap_or(0);
        let workers = self.config.mark_workers.max(1);
        // Under loom the workers are loom threads (no pool), whatever the
        // heap's size, so that model 4 checks the real protocol.
        #[cfg(not(loom))]
        let pool = if workers > 1 && heap.heap_live() >= PARALLEL_MARK_MIN_HEAP {
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
        } else {
            None
        };
        #[cfg(loom)]
        let pool = (workers > 1).then_some(());
        let Some(pool) = pool else {
            let mut t = Tracer::marker(heap, c, &self.owed_cells).with_fault(fault);
            t.give_grey(initial);
            t.drain_from(&self.injector);
            totals.objects += t.marked_objects;
            totals.bytes += t.marked_bytes;
            totals.scanned += t.scanned_objects;
            return;
        };
        let deques: Vec<Worker<usize>> = (0..workers).map(|_| Worker::new_lifo()).collect();
        let ctx = MarkCtx {
            injector: &self.injector,
            stealers: deques.iter().map(|w| w.stealer()).collect(),
            active: AtomicUsize::new(1),
            idle: AtomicUsize::new(0),
            totals: Mutex::new((0, 0, 0)),
        };
        let mut deques = deques.into_iter();
        let own = deques.next().expect("workers >= 2");
        for b in initial {
            own.push(b);
        }
        // One worker: drains until the termination protocol says no grey
        // object is left anywhere. This thread's is counted in `active`
        // already (see `drain_parallel`).
        let work = |w: Worker<usize>, counted: bool| {
            let mut t = Tracer::marker(heap, c, &self.owed_cells).with_fault(fault);
            t.drain_parallel(&ctx, &w, counted);
            ctx.add_totals(&t);
        };
        #[cfg(not(loom))]
        pool.in_place_scope(|s| {
            for w in deques {
                let work = &work;
                s.spawn(move |_| work(w, false));
            }
            work(own, true);
        });
        #[cfg(loom)]
        {
            let _: () = pool;
            let helper = |w| work(w, false);
            crate::sync::thread::fan_out(deques.collect(), &helper, || work(own, true));
        }
        let (o, b, sc) = *ctx.totals.lock();
        totals.objects += o;
        totals.bytes += b;
        totals.scanned += sc;
        totals.workers = totals.workers.max(workers);
    }

    /// Stops every mutator at its next handshake (checkmark mode).
    fn stop_world(&self) {
        // Under the park lock: a parked mutator reads `stop` and leaves
        // `PARKED` under it too (`MutatorCore::park`), so once this store
        // is done no mutator is on its way out of `park` — a `PARKED`
        // seen below stays parked until `start_world`.
        {
            let _g = self.park.lock();
            self.stop.store(true, Ordering::SeqCst);
        }
        self.heap.request_handshake();
        loop {
            self.arm_ack_wait();
            let all = {
                let reg = self.mutators.lock();
                reg.iter().all(|m| {
                    // SAFETY: registered, registry locked.
                    let s = unsafe { m.0.as_ref() }.scope.load(Ordering::SeqCst);
                    s == OUT || s == PARKED || s == BUSY
                })
            };
            if all {
                self.ack_waiting.store(false, Ordering::SeqCst);
                break;
            }
            self.wait_acks();
        }
        // Parked mutators' barrier buffers: flush them here (they are at
        // a handshake, not inside a push).
        let reg = self.mutators.lock();
        let mut g = self.gate.lock();
        let c = self.phase.load(Ordering::SeqCst) >> 1;
        for m in reg.iter() {
            // SAFETY: registered, registry locked.
            let m = unsafe { m.0.as_ref() };
            if m.scope.load(Ordering::SeqCst) == PARKED {
                // SAFETY: the owner is parked (it stored PARKED after its
                // last use of the buffer and waits for start_world).
                let buf = unsafe { m.wbuf.with_mut(|b| std::mem::take(&mut *b)) };
                self.shade_locked(&mut g, c, buf.entries);
                self.owed_cells.fetch_sub(buf.owed, Ordering::SeqCst);
            }
        }
    }

    fn start_world(&self) {
        let _g = self.park.lock();
        self.stop.store(false, Ordering::SeqCst);
        self.park_cv.notify_all();
    }

    /// The pacer's settings now (GOGC as last set).
    fn pacer(&self) -> crate::pacer::PacerConfig {
        let p = self.gc_percent.load(Ordering::Relaxed);
        crate::pacer::PacerConfig {
            gc_percent: (p != GC_OFF).then_some(p as u32),
            ..self.config.pacer
        }
    }

    /// The heap verifier: [`MHeap::verify`] and the mcache of every
    /// mutator that is parked or idle. The world is stopped.
    fn verify_stopped(&self) -> Result<(), String> {
        self.heap.verify()?;
        let reg = self.mutators.lock();
        for m in reg.iter() {
            // SAFETY: registered, registry locked.
            let m = unsafe { m.0.as_ref() };
            let r = match m.scope.load(Ordering::SeqCst) {
                // SAFETY: the owner is parked at a handshake, outside any
                // MCache method, until the world restarts.
                PARKED => unsafe { m.mcache.with(|c| (*c).verify()) },
                OUT if m
                    .scope
                    .compare_exchange(OUT, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok() =>
                {
                    // SAFETY: claimed (BUSY): the owner cannot enter its
                    // scope or drop the mutator until we store OUT.
                    let r = unsafe { m.mcache.with(|c| (*c).verify()) };
                    m.scope.store(OUT, Ordering::SeqCst);
                    r
                }
                // Entering, about to park, or being dropped: its cache is
                // checked at the next verification.
                _ => Ok(()),
            };
            r.map_err(|e| format!("mcache: {e}"))?;
        }
        Ok(())
    }

    /// Stop-the-world mode's eager sweep: flushes the mcaches of parked
    /// and idle mutators, then sweeps every span. The world is stopped at
    /// clean points and the sweep has begun.
    ///
    /// A mutator can hold stale spans out of reach for a moment: one being
    /// dropped (BUSY, flushing its own mcache, possibly already out of the
    /// registry) or one entering a scope (IN until it parks at the entry's
    /// handshake). As in `finish_previous_sweep`, flush what can be
    /// reached and retry until the sweep is complete; both finish without
    /// the collector and wake it.
    fn sweep_stopped(&self) {
        loop {
            self.arm_ack_wait();
            self.flush_stopped_mcaches();
            match self.heap.finish_sweep() {
                Ok(()) => {
                    self.ack_waiting.store(false, Ordering::SeqCst);
                    return;
                }
                // Stale spans still cached (the only error).
                Err(_) => self.wait_acks(),
            }
        }
    }

    /// `sweep_stopped`'s flush of the mcaches of parked mutators and of
    /// idle ones it can claim.
    fn flush_stopped_mcaches(&self) {
        // Claimed or parked mutators, flushed after the registry is
        // released: a flush may sweep, and sweeping runs `Drop` impls,
        // which may create or drop mutators.
        let held: Vec<(MutPtr, bool)> = {
            let reg = self.mutators.lock();
            reg.iter()
                .copied()
                .filter_map(|p| {
                    // SAFETY: registered, registry locked.
                    let m = unsafe { p.0.as_ref() };
                    match m.scope.load(Ordering::SeqCst) {
                        PARKED => Some((p, false)),
                        OUT => m
                            .scope
                            .compare_exchange(OUT, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                            .then_some((p, true)),
                        _ => None,
                    }
                })
                .collect()
        };
        for (p, claimed) in held {
            // SAFETY: a parked mutator stays allocated and parked at a
            // handshake, outside any MCache method, until the world
            // restarts (its handshake then finds the cache flushed); a
            // claimed one (BUSY) cannot be entered or dropped until we
            // store OUT — as in finish_previous_sweep.
            let m = unsafe { p.0.as_ref() };
            // SAFETY: as just argued, we have exclusive use of the mcache.
            unsafe { m.mcache.with_mut(|c| (*c).release_all()) };
            if claimed {
                m.scope.store(OUT, Ordering::SeqCst);
            }
        }
    }

    /// Everything reachable from the roots (and from the referents of
    /// objects with finalizers) right now, walked with the world stopped
    /// (`stop`: stop and restart it here) — the snapshot of
    /// [`GcConfig::verify_snapshot`]. Cells a parked mutator holds
    /// exclusively are not entered, as in checkmark.
    fn reachable_from_roots(&self, stop: bool) -> Vec<usize> {
        if stop {
            self.stop_world();
        }
        let mut walk = Tracer::new_checkmark(&self.heap);
        {
            // Every root drop either emptied its slot already or will see
            // the mark and defer (`remove_root`).
            let _d = self.deferred_roots.lock();
            self.roots.for_each_value(|a| walk.edge(a));
        }
        if self.has_registered_finalizers() {
            for &a in self.finalizers.lock().registered.keys() {
                walk.scan_fields(a);
            }
        }
        walk.drain();
        let v = walk.visited();
        if stop {
            self.start_world();
        }
        v
    }

    /// The snapshot verifier's check at mark termination: every object of
    /// the snapshot is marked.
    fn verify_snapshot_marked(&self, heap: &MHeap, snap: &[usize]) {
        let unmarked: Vec<usize> = snap
            .iter()
            .copied()
            .filter(|&a| !matches!(heap.find_object(a), Some(o) if o.span.is_marked(o.index)))
            .collect();
        if let Some(&first) = unmarked.first() {
            fatal(&format!(
                "snapshot verifier: {} of {} objects reachable when the mark began were not marked \
                 at its end (first at {first:#x})",
                unmarked.len(),
                snap.len()
            ));
        }
    }

    /// Checkmark (Go's `gccheckmark`): with the world stopped, walk the
    /// graph again from the roots and abort if a reachable object is
    /// unmarked. Cells held exclusively by a parked mutator are skipped
    /// (their contents were shaded when the borrow began or will be when
    /// it ends).
    fn checkmark(&self, heap: &MHeap) {
        let mut ck = Tracer::new_checkmark(heap);
        self.roots.for_each_value(|a| ck.edge(a));
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

    /// One pass over the marked ephemeron tables: traces the values of
    /// entries whose keys are marked; what it greys goes to the shared
    /// queue. Returns whether it marked anything (another drain and pass
    /// are then due).
    fn process_ephemerons(&self, heap: &MHeap, c: u64) -> bool {
        if self
            .ephemerons_registered
            .load(crate::sync::unmodeled::Ordering::SeqCst)
            == 0
        {
            return false;
        }
        let tables: Vec<(usize, crate::finalizer::EphemeronFn)> = self
            .ephemerons
            .lock()
            .iter()
            .map(|(&a, &f)| (a, f))
            .collect();
        let mut t = Tracer::new_light(heap, c, &self.owed_cells);
        for (a, f) in tables {
            if !t.is_marked(a) {
                continue; // not (yet) reachable: its entries keep nothing
            }
            // SAFETY: registered (obligation 1 of register_ephemeron_table)
            // and marked this cycle, so live and not freed before this
            // cycle's sweep.
            unsafe { f(a as *const u8, &mut t) };
        }
        let progress = t.marked_objects != 0;
        self.account_side(&t);
        t.publish_grey(&self.injector);
        progress
    }

    /// The `finalizers_registered` hint.
    fn has_registered_finalizers(&self) -> bool {
        let ord = crate::sync::unmodeled::Ordering::SeqCst;
        self.finalizers_registered.load(ord) != 0
    }

    /// Walks the heap from the roots and counts what it reaches by type
    /// (world stopped, gate held: see `crate::census`).
    fn take_census(&self, heap: &MHeap, c: u64) -> crate::census::Census {
        let mut walk = Tracer::new_checkmark(heap);
        self.roots.for_each_value(|a| walk.edge(a));
        walk.drain();
        let objects = walk.visited().into_iter().filter_map(|base| {
            let o = heap.find_object(base)?;
            let size = o.span.elemsize() as u64;
            if o.span.spanclass().noscan() {
                Some((crate::census::PLAIN_DATA, size))
            } else {
                // SAFETY: `base` is a reachable scan object, so allocated
                // and initialised (its header written before it was
                // published), and not freed while the world is stopped
                // for this walk (reachable objects are marked, and the
                // sweep that could free the others has not started).
                let info = unsafe { header_of(base) };
                Some(((info.name)(), size))
            }
        });
        crate::census::Census::from_objects(c, objects)
    }

    /// Heap teardown (see `Drop for Collector`).
    fn teardown(&self) {
        let sweeper = self.sweeper.lock().take();
        if let Some(s) = &sweeper {
            s.ctl.lock().stop = true;
            s.cv.notify_one();
        }
        if let Some(t) = self.sweeper_thread.lock().take() {
            let _ = t.join();
        }
        let heap = &self.heap;
        if let Err(e) = heap.finish_sweep() {
            fatal(&format!("teardown: {e}"));
        }
        let dp = &self.drop_panics;
        // No other thread uses the heap: mutators, roots and weak refs
        // held Arcs to the collector, which is gone; the collector and
        // sweeper threads were joined; every mcache was flushed when its
        // mutator was dropped; sweeping finished above.
        // SAFETY: obligations 1 and 2 of for_each_allocated, as argued.
        unsafe {
            heap.for_each_allocated(|base, span| {
                // The closure runs under for_each_allocated's obligation 1:
                // we own every span.
                if !span.spanclass().noscan() && span.needs_free_hook() && !drop_dead_object(base) {
                    dp.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
    }
}

impl Drop for Collector {
    /// Heap teardown: stops the collector thread, then every object still
    /// allocated is dropped (its `Drop` runs exactly once), then the
    /// heap's memory goes back to the OS when the last `Arc<MHeap>` is
    /// dropped.
    ///
    /// The last handle may be dropped by the `Drop` of a collected object,
    /// i.e. inside a sweep — possibly on the collector or sweeper thread,
    /// which could not join itself. Teardown then moves to a new thread.
    fn drop(&mut self) {
        let inner = self.inner.clone();
        let thread = self.gc_thread.lock().take();
        let teardown = move || {
            {
                let mut c = inner.ctl.lock();
                c.shutdown = true;
                inner.ctl_cv.notify_all();
            }
            if let Some(t) = thread {
                let _ = t.join();
            }
            debug_assert!(inner.mutators.lock().is_empty());
            inner.teardown();
        };
        if !crate::object::in_drop() {
            teardown();
            return;
        }
        let spawned = crate::sync::thread::Builder::new()
            .name("spanheap-teardown".into())
            .spawn(teardown);
        if let Err(e) = spawned {
            eprintln!(
                "spanheap: heap dropped from a collected object's Drop and no teardown thread could start ({e}); its memory is leaked"
            );
        }
    }
}

/// A mutator's own view of the phase, updated only at its handshakes.
#[derive(Clone, Copy, Default)]
struct Local {
    /// The barrier is on (acknowledged A for `cycle`).
    marking: bool,
    cycle: u64,
    /// No clean-stack point (S) yet this cycle: stores must also shade
    /// what they insert (a `GcRefCell` borrow rescans on release).
    pre_s: bool,
    /// The last termination flush round acknowledged.
    flushed: u64,
}

/// A mutator's barrier buffer.
#[derive(Default)]
struct WBuf {
    /// Addresses shaded by the write barrier, not yet marked.
    entries: Vec<usize>,
    /// Cell debts this buffer carries: `GcRefCell`s that a marker skipped
    /// because this mutator held them, whose contents this mutator has
    /// since shaded into `entries`. Each was counted in
    /// `Inner::owed_cells` by the marker before the skip became visible,
    /// and is subtracted after the entries were flushed, so the
    /// termination check (`owed_cells == 0`) cannot miss contents that
    /// only this buffer protects.
    owed: usize,
}

/// Per-mutator collector state, owned by its [`MutatorCore`] and reachable
/// from the registry.
struct MutatorInner {
    /// Used by the owner inside its scopes, or by the collector after
    /// claiming the mutator (BUSY) while it is outside them.
    mcache: UnsafeCell<MCache>,
    /// Barrier buffer (Go's `wbBuf`), flushed into the mark by the owner
    /// (or by the collector while the owner is parked).
    wbuf: UnsafeCell<WBuf>,
    /// Owner only.
    local: Cell<Local>,
    /// Allocations since the last stress request (owner only).
    allocs: Cell<u64>,
    /// `GcRefCell` write borrows this mutator holds (owner only): while
    /// one is open, the mark may wait for this mutator to release it (a
    /// cell debt), so an assist must not wait for the mark then.
    borrows: Cell<u32>,
    /// The collector's stress setting, copied so that the allocation path
    /// reads only this struct.
    stress: Option<u64>,
    /// OUT / IN / BUSY / PARKED.
    scope: AtomicU32,
    /// The last cycle whose barrier (A), clean stack (S) and flush round
    /// this mutator acknowledged.
    ack_a: AtomicU64,
    ack_s: AtomicU64,
    ack_flush: AtomicU64,
}

/// A mutator's handle on the collector: its mcache, its barrier buffer and
/// its scope protocol. `Send`, not `Sync`; the typed layer wraps it.
pub struct MutatorCore {
    collector: Arc<Collector>,
    inner: NonNull<MutatorInner>,
}

// SAFETY: the inner state is used only by the owning handle (through
// `&mut self` or inside its scope on one thread) or by the collector under
// the claims described at `MutatorInner`; nothing in it is tied to a
// thread.
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

    fn gc(&self) -> &Inner {
        &self.collector.inner
    }

    /// Enters a scope: from here until [`MutatorCore::leave`], the thread
    /// may hold unrooted GC pointers. Never waits for a collection (only,
    /// in checkmark mode, for a stopped world).
    ///
    /// # Panics
    /// If the thread is inside a scope of another heap, or inside the
    /// `Drop` of a collected object.
    pub fn enter(&mut self) {
        let me = &*self.collector as *const Collector as usize;
        let (cur, depth) = ACTIVE.with(|a| a.get());
        if cur != 0 && cur != me {
            panic!(
                "spanheap: cannot enter a scope of one heap while inside a scope of another heap \
                 on the same thread (their GC pointers could be mixed)"
            );
        }
        if crate::object::in_drop() {
            panic!("spanheap: the Drop impl of a collected object tried to enter a scope");
        }
        let inner = self.inner();
        while inner
            .scope
            .compare_exchange(OUT, IN, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // BUSY: the collector is flushing our mcache (short).
            crate::sync::thread::yield_now();
        }
        ACTIVE.with(|a| a.set((me, depth + 1)));
        // Entering holds no GC pointer: a clean point.
        self.handshake(true);
    }

    /// Leaves the scope; flushes the barrier buffer, and requests a cycle
    /// if an allocation found the heap over its trigger.
    ///
    /// # Safety
    /// 1. Matches an `enter` on this thread, and the caller holds no GC
    ///    pointer obtained since (the typed layer's lifetimes end here).
    pub unsafe fn leave(&mut self) {
        let due = self.take_debt();
        self.handshake(true);
        if self.inner().local.get().marking {
            self.flush_wbuf();
        }
        self.inner().scope.store(OUT, Ordering::SeqCst);
        self.gc().notify_collector();
        let me = &*self.collector as *const Collector as usize;
        ACTIVE.with(|a| {
            let (cur, depth) = a.get();
            debug_assert_eq!(cur, me, "leave without enter");
            a.set(if depth > 1 { (me, depth - 1) } else { (0, 0) });
        });
        if due {
            self.gc().request(false);
        }
    }

    /// A safepoint inside a scope: acknowledges the collector's requests
    /// (barrier on, clean stack, buffer flush) without leaving the scope.
    /// Never waits for a collection (only, in checkmark mode, for a stopped
    /// world). Cheap when nothing changed: a few loads.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::leave`]: the caller holds no GC pointer
    ///    that is not reachable from a root.
    pub unsafe fn safepoint(&mut self) {
        if self.take_debt() {
            self.gc().request(false);
        }
        self.handshake(true);
    }

    fn take_debt(&mut self) -> bool {
        // SAFETY: we are the owning mutator, inside our scope (or about to
        // leave it), not inside an MCache method.
        unsafe { self.inner().mcache.with_mut(|c| (*c).take_gc_due()) }
    }

    /// The handshake (module docs): runs on the owner's thread at a point
    /// where it is inside no MCache method and pushes nothing to its
    /// buffer. `clean`: the thread holds no unrooted GC pointer of this
    /// mutator's scope (entry, exit, `safepoint`).
    fn handshake(&self, clean: bool) {
        let gc = self.gc();
        let inner = self.inner();
        if gc.stop.load(Ordering::SeqCst) && (clean || !gc.stop_clean.load(Ordering::SeqCst)) {
            self.park();
        }
        let ph = gc.phase.load(Ordering::SeqCst);
        let mut l = inner.local.get();
        let mut acked = false;
        // SAFETY: owner, outside any MCache method (caller's contract).
        let stale = unsafe { inner.mcache.with_mut(|c| (*c).is_stale()) };
        if stale {
            // Flush spans cached before a sweep began, and adopt
            // allocate-black. The phase was read first: allocate-black was
            // set before the phase was published.
            // SAFETY: as above.
            unsafe { inner.mcache.with_mut(|c| (*c).sync()) };
            // Sweep termination may be waiting for exactly this.
            acked = true;
        }
        if ph & MARKING != 0 {
            let cyc = ph >> 1;
            if !l.marking || l.cycle != cyc {
                l = Local {
                    marking: true,
                    cycle: cyc,
                    pre_s: true,
                    flushed: gc.flush_round.load(Ordering::SeqCst),
                };
                inner.ack_a.store(cyc, Ordering::SeqCst);
                // Rounds opened before our barrier was on (we were outside
                // our scopes, so not waited for) have nothing of ours to
                // flush: acknowledge them, or a round opened just before
                // this entry would wait for us forever.
                inner.ack_flush.store(l.flushed, Ordering::SeqCst);
                acked = true;
            }
            if clean && l.pre_s && gc.s_round.load(Ordering::SeqCst) == cyc {
                // Allocate black before claiming a clean stack: a white
                // object allocated after S would be on an unprotected
                // stack. (allocate-black was set before s_round.)
                // SAFETY: owner, outside any MCache method.
                unsafe { inner.mcache.with_mut(|c| (*c).sync()) };
                l.pre_s = false;
                inner.ack_s.store(cyc, Ordering::SeqCst);
                acked = true;
            }
            let fr = gc.flush_round.load(Ordering::SeqCst);
            if fr != l.flushed {
                inner.local.set(l);
                self.flush_wbuf();
                l.flushed = fr;
                inner.ack_flush.store(fr, Ordering::SeqCst);
                acked = true;
            }
        } else if l.marking {
            // The mark ended: whatever the buffer holds was marked (every
            // reachable object was; see docs/concurrency.md).
            l.marking = false;
            l.pre_s = false;
            // SAFETY: owner. (No cell debt is left: the mark ended only
            // with `owed_cells == 0`, and only markers open debts.)
            let owed = unsafe {
                inner.wbuf.with_mut(|b| {
                    (*b).entries.clear();
                    (*b).owed
                })
            };
            debug_assert_eq!(owed, 0, "a cell debt outlived its mark");
        }
        inner.local.set(l);
        if acked {
            gc.notify_collector();
        }
    }

    /// Parks until the collector restarts the world (checkmark stops).
    #[cold]
    fn park(&self) {
        let gc = self.gc();
        let inner = self.inner();
        inner.scope.store(PARKED, Ordering::SeqCst);
        gc.notify_collector();
        let mut g = gc.park.lock();
        while gc.stop.load(Ordering::SeqCst) {
            gc.park_cv.wait(&mut g);
        }
        // Still under the lock: a `stop_world` that follows the one we
        // woke from cannot see us `PARKED` while we return to run (it
        // sets `stop` under this lock, then checks our state). Storing
        // `IN` after the unlock let the next stop count a running
        // mutator as stopped: checkmark then walked a heap it was
        // mutating, and reported the objects still in its barrier buffer
        // as lost (seen in stop-the-world mode, cycles back to back).
        inner.scope.store(IN, Ordering::SeqCst);
        drop(g);
    }

    /// Moves the barrier buffer into the mark: marks each entry and shares
    /// the grey ones, under the gate, if this mutator's cycle is still
    /// marking (otherwise they were all marked: drops them); then pays the
    /// buffer's cell debts (see `WBuf::owed`).
    fn flush_wbuf(&self) {
        let gc = self.gc();
        let inner = self.inner();
        // SAFETY: owner, not inside a push.
        let (mut entries, owed) = unsafe {
            inner.wbuf.with_mut(|b| {
                (
                    std::mem::take(&mut (*b).entries),
                    std::mem::take(&mut (*b).owed),
                )
            })
        };
        if entries.is_empty() && owed == 0 {
            return;
        }
        let cyc = inner.local.get().cycle;
        let mut g = gc.gate.lock();
        if gc.phase.load(Ordering::SeqCst) == (cyc << 1) | MARKING {
            gc.shade_locked(&mut g, cyc, entries.iter().copied());
        }
        drop(g);
        if owed != 0 {
            // After the flush: the debt covered exactly these entries.
            gc.owed_cells.fetch_sub(owed, Ordering::SeqCst);
            gc.notify_collector();
        }
        entries.clear();
        // SAFETY: owner; keep the allocation for the next entries.
        unsafe {
            inner.wbuf.with_mut(|b| {
                if (*b).entries.is_empty() {
                    (*b).entries = entries;
                }
            })
        };
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
        if let Some(n) = inner.stress {
            self.stress_tick(n);
        }
        loop {
            // SAFETY: obligation 1: we are the only user of the mcache now.
            match unsafe { inner.mcache.with_mut(|c| (*c).alloc_uninit(req)) } {
                Err(AllocError::Handshake) => self.alloc_handshake(),
                r => return r,
            }
        }
    }

    #[cold]
    fn stress_tick(&self, n: u64) {
        let inner = self.inner();
        let k = inner.allocs.get() + 1;
        if k >= n {
            inner.allocs.set(0);
            self.gc().request(true);
        } else {
            inner.allocs.set(k);
        }
    }

    /// An allocation reported a handshake: the collector asked for one, or
    /// a slow path wants a cycle started or an assist paid.
    #[cold]
    #[inline(never)]
    fn alloc_handshake(&self) {
        let inner = self.inner();
        // SAFETY: owner, between MCache calls.
        let (due, bytes) = unsafe {
            inner
                .mcache
                .with_mut(|c| ((*c).take_gc_due(), (*c).take_refill_bytes()))
        };
        if due {
            self.gc().request(false);
        }
        self.handshake(false);
        // SAFETY: as above; acknowledges the request.
        unsafe { inner.mcache.with_mut(|c| (*c).sync()) };
        if bytes > 0 && inner.local.get().marking {
            self.assist(bytes);
        } else if due {
            self.sweep_assist(bytes);
            let goal = self.gc().assist_goal.load(Ordering::Relaxed);
            if self.gc().heap.heap_live() > goal {
                self.await_mark_start(goal);
            }
        }
    }

    /// Over the heap goal outside a mark: wait, at most [`ASSIST_WAIT`],
    /// for the requested cycle to start (Go starts a cycle synchronously in
    /// the goroutine whose allocation crossed the trigger, `gcStart`, so
    /// its allocation cannot run ahead of it). A starved collector thread
    /// otherwise let the heap grow unbounded between the trigger and the
    /// mark, where no assist or throttle applies (a soft memory limit was
    /// overshot by ~45 % next to a CPU hog). The wait answers handshakes —
    /// flushing stale spans for sweep termination and turning the barrier
    /// on — which is all the start of a mark needs from this mutator, so
    /// it never delays what it waits for — and sweeps meanwhile, since
    /// sweep termination is usually what the start waits for.
    fn await_mark_start(&self, goal: u64) {
        let gc = self.gc();
        let t0 = Instant::now();
        let deadline = t0 + ASSIST_WAIT;
        let _account = Elapsed(t0, &gc.assist_wait_ns);
        loop {
            self.handshake(false);
            if self.inner().local.get().marking
                || gc.heap.heap_live() <= goal
                || Instant::now() >= deadline
            {
                return;
            }
            // The mark starts once the previous sweep is finished: help.
            if gc.heap.sweep_one().is_some() {
                continue;
            }
            let mut c = gc.ctl.lock();
            if !c.requested && !gc.cycle_active.load(Ordering::SeqCst) {
                return; // no cycle is coming
            }
            gc.done_cv
                .wait_for(&mut c, std::time::Duration::from_micros(200));
        }
    }

    /// Over the trigger outside a mark, the next cycle can start only once
    /// the previous sweep is finished: help it, sweeping about twice the
    /// bytes just taken (Go's proportional sweep, `deductSweepCredit`), so
    /// that allocation does not run ahead of the collector thread.
    fn sweep_assist(&self, bytes: u64) {
        let heap = &*self.gc().heap;
        let mut swept = 0u64;
        while swept < 2 * bytes.max(PAGE_BYTES) {
            match heap.sweep_one() {
                Some(pages) => swept += pages as u64 * PAGE_BYTES,
                None => break,
            }
        }
    }

    /// Mark assist (Go's `gcAssistAlloc`): after taking `bytes` of new
    /// spans during a mark, scan about `bytes × assist_expected` bytes of grey
    /// objects, so that the mark keeps up with allocation. With no grey
    /// object to take, the debt is forgiven; over the goal, the mutator
    /// may wait a little for the mark (`MutatorCore::throttle`).
    fn assist(&self, bytes: u64) {
        let gc = self.gc();
        // Go's assist ratio, re-evaluated as the heap grows: the less
        // runway is left to the goal, the more scan work per byte.
        let goal = gc.assist_goal.load(Ordering::Relaxed);
        let runway = goal.saturating_sub(gc.heap.heap_live()).max(256 << 10);
        let expected = gc.assist_expected.load(Ordering::Relaxed);
        let budget = (bytes as u128 * expected as u128 / runway as u128).min(16 << 20) as u64;
        if budget == 0 || gc.injector.is_empty() {
            if gc.heap.heap_live() > goal {
                self.throttle(goal);
            }
            return;
        }
        let cyc = self.inner().local.get().cycle;
        {
            let mut g = gc.gate.lock();
            // Scan only from T on (every mutator in a scope has its
            // barrier on, `s_round == cyc`): an object scanned earlier
            // could be written without a barrier by a mutator that has not
            // acknowledged A, hiding the stored pointer from the mark; and
            // a cell it found held by such a writer would never be settled.
            // (Flushes before T only grey objects: the mark scans them
            // after T.)
            if gc.phase.load(Ordering::SeqCst) != (cyc << 1) | MARKING {
                return;
            }
            if gc.s_round.load(Ordering::SeqCst) != cyc {
                // Before T an assist may not scan: over the goal, wait
                // for the collector to reach it instead.
                drop(g);
                if gc.heap.heap_live() > goal {
                    self.throttle(goal);
                }
                return;
            }
            g.assists += 1;
            g.assists_joined += 1;
        }
        let t0 = Instant::now();
        let mut t = Tracer::new_light(&gc.heap, cyc, &gc.owed_cells);
        t.assist_from(&gc.injector, budget);
        gc.account_side(&t);
        gc.assist_scan_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        gc.gate.lock().assists -= 1;
        gc.notify_collector();
    }

    /// Over the goal during a mark with no grey object to take: wait for
    /// the mark to end, for work to appear, or for [`ASSIST_WAIT`] (Go
    /// parks such an assist until the background workers have done the
    /// work, `gcParkAssist`). This is what bounds the heap when mutators
    /// outrun the mark workers (a soft memory limit, a starved collector
    /// thread). The wait is bounded and keeps answering handshakes, and it
    /// happens only once this mutator has passed its clean point (S) and
    /// holds no `GcRefCell` write borrow — the two things a mark can need
    /// from a mutator that is inside an allocation — so it never stalls
    /// the mark it waits for; with a borrow open, or after T but before
    /// its S, it only yields once.
    ///
    /// Before T (when no mutator can have passed its S yet) there is one
    /// thing it may wait for: the collector reaching T (`s_round`),
    /// which needs nothing from a
    /// mutator that has its barrier on but answers to handshakes (round A
    /// is behind it; a snapshot's stopped world parks it in the wait). Until T no
    /// mutator can assist or be throttled after S, so a starved collector
    /// thread let them allocate at will there: 26 → 175 MB against a
    /// 27 MB goal in one 376 ms mark, with the collector thread at
    /// SCHED_IDLE next to a busy machine.
    fn throttle(&self, goal: u64) {
        let gc = self.gc();
        let inner = self.inner();
        let l = inner.local.get();
        if inner.borrows.get() != 0 {
            crate::sync::thread::yield_now();
            return;
        }
        let cyc = l.cycle;
        if l.pre_s {
            if gc.s_round.load(Ordering::SeqCst) != cyc {
                // Until the collector reaches T (then assists can scan,
                // and waits after S apply).
                self.wait_over_goal(cyc, goal, |gc| gc.s_round.load(Ordering::SeqCst) == cyc);
            } else {
                // After T the mark may be waiting for our clean point.
                crate::sync::thread::yield_now();
            }
            return;
        }
        // Until there is work to assist with.
        self.wait_over_goal(cyc, goal, |gc| !gc.injector.is_empty());
    }

    /// `throttle`'s wait: at most [`ASSIST_WAIT`], while cycle `cyc` is
    /// marking, the heap is over `goal` and `done` is false, answering
    /// handshakes (a flush round, a stopped world) meanwhile.
    fn wait_over_goal(&self, cyc: u64, goal: u64, done: impl Fn(&Inner) -> bool) {
        let gc = self.gc();
        let t0 = Instant::now();
        let deadline = t0 + ASSIST_WAIT;
        let _account = Elapsed(t0, &gc.assist_wait_ns);
        loop {
            if gc.phase.load(Ordering::SeqCst) != (cyc << 1) | MARKING
                || done(gc)
                || gc.heap.heap_live() <= goal
                || Instant::now() >= deadline
            {
                return;
            }
            self.handshake(false);
            if !self.inner().local.get().marking {
                return;
            }
            let mut c = gc.ctl.lock();
            if c.completed >= cyc {
                return;
            }
            gc.done_cv
                .wait_for(&mut c, std::time::Duration::from_micros(200));
        }
    }

    /// Counts an open `GcRefCell` write borrow of this mutator (see
    /// `MutatorInner::borrows`); [`MutatorCore::borrow_closed`] ends it.
    #[inline]
    pub fn borrow_opened(&self) {
        let b = &self.inner().borrows;
        b.set(b.get() + 1);
    }

    /// Ends a borrow counted by [`MutatorCore::borrow_opened`].
    #[inline]
    pub fn borrow_closed(&self) {
        let b = &self.inner().borrows;
        b.set(b.get().saturating_sub(1));
    }

    /// Whether the write barrier is on for this mutator (it has
    /// acknowledged a running mark and not yet its end).
    #[inline(always)]
    pub fn marking(&self) -> bool {
        self.inner().local.get().marking
    }

    /// The cycle this mutator's barrier marks for, if on.
    #[inline]
    pub fn marking_cycle(&self) -> Option<u64> {
        let l = self.inner().local.get();
        l.marking.then_some(l.cycle)
    }

    /// Whether this mutator has not yet passed a clean-stack point (S)
    /// during the current mark: stores must then also shade what they
    /// insert.
    #[inline]
    pub fn before_clean_point(&self) -> bool {
        let l = self.inner().local.get();
        l.marking && l.pre_s
    }

    /// The write barrier's slow path: shades `addr` (Go's
    /// `wbBuf.putFast`); a full buffer is flushed into the mark.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::alloc`].
    #[inline]
    pub unsafe fn shade(&self, addr: usize) {
        // SAFETY: obligation 1: owner.
        let full = unsafe {
            self.inner().wbuf.with_mut(|b| {
                (*b).entries.push(addr);
                (*b).entries.len() >= WBUF_CAP
            })
        };
        if full {
            self.flush_wbuf();
        }
    }

    /// The write barrier's slow path for a whole value: `f` traces it
    /// with a recorder that appends every GC pointer straight to this
    /// mutator's barrier buffer (no allocation); a full buffer is then
    /// flushed into the mark.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::alloc`].
    pub unsafe fn shade_with(&self, f: impl FnOnce(&mut Tracer<'_>)) {
        let heap = &*self.gc().heap;
        // SAFETY: obligation 1: owner; `f` only reports pointers to the
        // recorder, it cannot reach this buffer otherwise.
        let full = unsafe {
            self.inner().wbuf.with_mut(|b| {
                let mut r = Tracer::recorder_into(heap, &mut (*b).entries);
                f(&mut r);
                drop(r);
                (*b).entries.len() >= WBUF_CAP
            })
        };
        if full {
            self.flush_wbuf();
        }
    }

    /// Takes over a debt a marker recorded with `Tracer::owe_cell` for a
    /// cell this mutator holds, after shading the cell's contents into
    /// the buffer: it is paid at the next flush.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::alloc`].
    /// 2. The caller holds the cell's write flag, has shaded its contents
    ///    into this mutator's buffer, and has just moved the cell out of
    ///    the owed state (each marker debt is taken over exactly once): an
    ///    extra payment would let `owed_cells` reach 0 while another
    ///    mutator's debt is still open, and the mark end too early.
    pub unsafe fn take_owed_cell(&self) {
        // SAFETY: obligation 1: owner; no push is in progress.
        unsafe { self.inner().wbuf.with_mut(|b| (*b).owed += 1) };
    }

    /// Runs a collection now and waits for it.
    ///
    /// # Panics
    /// If the thread is inside a scope of this heap.
    pub fn collect(&mut self) {
        self.collector.collect();
    }

    /// Runs a collection from inside this mutator's scope and waits for
    /// it: leaves the scope (a clean point, as at its end), collects, and
    /// enters again — also if the collection panics, so that the caller's
    /// scope still ends with exactly one `leave`.
    ///
    /// # Safety
    /// 1. As for [`MutatorCore::leave`]: the thread is inside a scope of
    ///    this mutator, and the caller holds no GC pointer that is not
    ///    reachable from a root.
    ///
    /// # Panics
    /// Before leaving, if the thread is also inside a scope of this heap
    /// through another mutator: the collection would wait for that scope.
    pub unsafe fn collect_in_scope(&mut self) {
        let (_, depth) = ACTIVE.with(|a| a.get());
        if depth > 1 {
            panic!(
                "spanheap: collect() in a scope while this thread is inside another scope of \
                 the same heap (it would wait for itself)"
            );
        }
        /// Enters again when dropped, on return or unwind.
        struct Reenter<'a>(&'a mut MutatorCore);
        impl Drop for Reenter<'_> {
            fn drop(&mut self) {
                self.0.enter();
            }
        }
        // SAFETY: obligation 1.
        unsafe { self.leave() };
        let again = Reenter(self);
        again.0.collector.collect();
        drop(again);
    }
}

impl Drop for MutatorCore {
    fn drop(&mut self) {
        let me = self.inner;
        // SAFETY: `me` is ours until freed below.
        let scope = unsafe { &me.as_ref().scope };
        // Claim ourselves against the collector's flush of idle mcaches.
        while scope
            .compare_exchange(OUT, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            crate::sync::thread::yield_now();
        }
        let mut reg = self.collector.inner.mutators.lock();
        reg.retain(|p| p.0 != me);
        drop(reg);
        // SAFETY: deregistered under the lock and claimed, so the collector
        // cannot reach it any more, and we are its owner (a leaked Box).
        let inner = unsafe { Box::from_raw(me.as_ptr()) };
        // SAFETY: we own `inner` (just above): nobody else uses the mcache.
        unsafe { inner.mcache.with_mut(|c| (*c).release_all()) };
        // Every scope was left, and leaving pays the buffer's cell debts
        // (a flush while marking, or the handshake after the mark ended).
        // SAFETY: we own `inner`.
        let owed = unsafe { inner.wbuf.with_mut(|b| (*b).owed) };
        debug_assert_eq!(owed, 0, "a mutator dropped with unpaid cell debts");
        self.collector.inner.notify_collector();
    }
}

/// Reports a broken heap invariant and aborts (panics under loom): see
/// [`spanheap_heap::throw`].
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    spanheap_heap::throw(msg)
}

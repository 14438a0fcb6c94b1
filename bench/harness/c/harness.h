/*
 * harness-bdwgc: the Boehm GC (bdwgc) peer of spanheap's side-by-side
 * benchmark harness (issue 7). Shared declarations for main.c and the
 * workload files binary_trees.c, gcbench.c and alloc.c.
 *
 * Contract (the same for every peer: Go, bdwgc, the Rust crates):
 *   harness-bdwgc <workload> [--quick] [--threads N]
 *   stdout: only deterministic result lines, compared byte for byte with
 *           the other peers by the orchestrator;
 *   stderr: only "metric <name> <value>" lines;
 *   exit 0 on success, 2 with usage on stderr for bad arguments, 3 with
 *   "unsupported: bdwgc <workload> <why>" on stderr for an undefined variant.
 *
 * GC_THREADS must be defined before <gc.h> so that pthread_create is
 * redirected to GC_pthread_create (threads are then registered with the
 * collector, and their stacks scanned) — the way bdwgc's README.linux and
 * gc.h ask threaded clients to do it.
 */
#ifndef HARNESS_H
#define HARNESS_H

#define GC_THREADS
#include <gc.h>

#include <stdint.h>

#define PEER "bdwgc"

struct options {
    int quick;   /* --quick: small sizes, for CI checksum comparison */
    int threads; /* --threads N: 1 or 2 (mark: marker threads) */
    const char *shape; /* mark: --shape sequential|random (NULL: sequential) */
    int heap_mib;      /* mark: --heap-mib M (0: the default) */
};

/* Exit status for a variant this peer does not define. */
#define EXIT_UNSUPPORTED 3

/* Workloads: each prints its result lines on stdout and its own metrics
 * on stderr, and returns the exit status. */
int run_binary_trees(const struct options *opt);
int run_gcbench(const struct options *opt);
int run_alloc(const struct options *opt);
int run_mark(const struct options *opt);

/* mark.c: parses --shape / --heap-mib at argv[*i] (1: done, -1: bad
 * value, 0: not one of them). */
int parse_mark_flag(int argc, char **argv, int *i, struct options *opt);
int run_latency(const struct options *opt);

/* Prints "unsupported: bdwgc <workload> <why>" on stderr and returns 3. */
int unsupported(const char *workload, const char *why);

/* Monotonic clock, nanoseconds. */
uint64_t now_ns(void);

/* "metric <name> <value>" on stderr. */
void metric_u64(const char *name, uint64_t value);
void metric_f64(const char *name, double value);

/* Collection statistics (gcstats.c): gcstats_init() right after GC_INIT()
 * installs a GC_set_on_collection_event callback; gcstats_report() prints
 * gc_cycles, max_pause_ns and max_gc_ns. */
void gcstats_init(void);
void gcstats_report(void);

#endif

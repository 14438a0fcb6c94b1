/*
 * The mark workload on bdwgc: the throughput of one forced full collection
 * of a large, fully live tree (the exact rules are at the top of the Rust
 * harness's src/mark/mod.rs; this file follows them).
 *
 *   harness-bdwgc mark [--shape sequential|random] [--heap-mib M]
 *                      [--threads W] [--quick]
 *
 * The live heap: N = M * 2^20 / 32 nodes (M = 64 by default, 4 with
 * --quick unless --heap-mib is given), each a 32-byte struct {left, right;
 * uint64_t value, pad}, GC_MALLOC'ed (it holds pointers). bdwgc, with
 * interior pointers recognised (its default), adds one byte to every
 * request, so a node takes a 48-byte slot. The nodes form a complete
 * binary tree in array numbering — node k's children are 2k+1 and 2k+2
 * when < N — and node k's value is k.
 *
 * Layout: the i-th allocated node is node order[i]. "sequential":
 * order[i] = i. "random": a Fisher-Yates shuffle of 0..N-1 driven by
 * SplitMix64 seeded with 0x6d61726b: for i from N-1 down to 1, j =
 * below(i+1), swap order[i] and order[j], where below(m) is the high 64
 * bits of next() * m (unsigned __int128). The layout_check metric, the
 * wrapping sum of (i+1) * order[i], is the same in Rust, Go and C.
 *
 * Build: a GC_MALLOC'ed array of N node pointers (indexed by node number;
 * scanned, so it keeps the nodes alive) holds the nodes while node
 * order[i] is allocated for i in 0..N, then each node's children are
 * stored into it (plain stores: bdwgc is not incremental by default, so no
 * barrier), then only node 0 is kept in a local variable and the array is
 * released with GC_FREE, so the collector has to follow the pointers (and
 * no stale copy of the array's address on the stack can keep the nodes
 * alive). order itself is malloc'ed (the collector never sees it).
 * Collections during the build are bdwgc's own.
 *
 * Measurement: GC_gcollect() once (preliminary), then GC_gcollect()
 * again, timed: collect_ms. mark_ms is the time from GC_EVENT_MARK_START
 * to GC_EVENT_MARK_END of that collection, reported to a collection event
 * callback chained in front of gcstats.c's (bdwgc marks with the world
 * stopped; the rest of collect_ms is stopping and restarting the world
 * and starting the (lazy) sweep). heap_bytes is GC_get_memory_use(), the
 * bytes in allocated blocks. Then the tree is walked from the root,
 * summing value: N(N-1)/2.
 *
 * --threads W: the marker threads, initiating one included:
 * GC_set_markers_count(W) before GC_INIT() (main.c); GC_MARKERS in the
 * environment, if set, overrides it (bdwgc reads it at initialisation).
 * The gc_markers metric (gcstats.c) reports what bdwgc actually uses.
 *
 * Output: "mark {shape} heap_mib {M} nodes {N} sum {S}".
 * Metrics: collect_ms, mark_ms, heap_bytes, mb_per_s_per_worker,
 * mark_workers, build_ms, walk_ms, layout_check (and gc_cycles,
 * max_pause_ns, max_gc_ns, gc_markers from gcstats.c).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_BYTES 32
#define SEED 0x6d61726bu
#define DEFAULT_MIB 64
#define QUICK_MIB 4

typedef struct node {
    struct node *left, *right;
    uint64_t value, pad;
} node;

/* SplitMix64 (Vigna's splitmix64.c). */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A number in [0, m): the high word of next() * m. */
static uint64_t rng_below(uint64_t m)
{
    return (uint64_t)(((unsigned __int128)rng_next() * m) >> 64);
}

/* The measured collection's mark phase, from the collection events. */
static GC_on_collection_event_proc chained;
static uint64_t mark_started, last_mark_ns;

static void GC_CALLBACK on_event(GC_EventType event)
{
    if (event == GC_EVENT_MARK_START)
        mark_started = now_ns();
    else if (event == GC_EVENT_MARK_END)
        last_mark_ns = now_ns() - mark_started;
    if (chained)
        chained(event);
}

static uint64_t sum_tree(const node *n)
{
    uint64_t s = 0;
    while (n) { /* recurse left, loop right */
        s += n->value + sum_tree(n->left);
        n = n->right;
    }
    return s;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

int run_mark(const struct options *opt)
{
    const char *shape = opt->shape ? opt->shape : "sequential";
    int mib = opt->heap_mib > 0 ? opt->heap_mib : opt->quick ? QUICK_MIB : DEFAULT_MIB;
    size_t n = (size_t)mib * (1u << 20) / NODE_BYTES, i, k;
    uint32_t *order;
    node **nodes, *root;
    uint64_t check = 0, t0, build, collect, walk, sum;
    double secs;

    order = malloc(n * sizeof *order);
    if (!order) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        return 1;
    }
    for (i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    if (strcmp(shape, "random") == 0) {
        rng_state = SEED;
        for (i = n - 1; i >= 1; i--) {
            size_t j = (size_t)rng_below((uint64_t)i + 1);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    for (i = 0; i < n; i++)
        check += (uint64_t)(i + 1) * order[i];

    t0 = now_ns();
    nodes = GC_MALLOC(n * sizeof *nodes);
    if (!nodes) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        return 1;
    }
    for (i = 0; i < n; i++) {
        node *nd = GC_MALLOC(sizeof *nd);
        if (!nd) {
            fputs("harness-bdwgc: out of memory\n", stderr);
            return 1;
        }
        nd->value = order[i];
        nodes[order[i]] = nd;
    }
    for (k = 0; k < n; k++) {
        if (2 * k + 1 < n)
            nodes[k]->left = nodes[2 * k + 1];
        if (2 * k + 2 < n)
            nodes[k]->right = nodes[2 * k + 2];
    }
    root = n ? nodes[0] : NULL;
    GC_FREE(nodes);
    nodes = NULL;
    build = now_ns() - t0;
    free(order);

    chained = GC_get_on_collection_event();
    GC_set_on_collection_event(on_event);
    GC_gcollect();
    t0 = now_ns();
    GC_gcollect();
    collect = now_ns() - t0;

    t0 = now_ns();
    sum = sum_tree(root);
    walk = now_ns() - t0;
    GC_reachable_here(root);

    printf("mark %s heap_mib %d nodes %zu sum %llu\n", shape, mib, n, (unsigned long long)sum);
    metric_f64("collect_ms", ms(collect));
    metric_f64("mark_ms", ms(last_mark_ns));
    metric_u64("heap_bytes", (uint64_t)GC_get_memory_use());
    secs = (double)last_mark_ns / 1e9;
    if (secs < 1e-9)
        secs = 1e-9;
    metric_f64("mb_per_s_per_worker", (double)n * NODE_BYTES / 1e6 / secs / opt->threads);
    metric_u64("mark_workers", (uint64_t)opt->threads);
    metric_f64("build_ms", ms(build));
    metric_f64("walk_ms", ms(walk));
    metric_u64("layout_check", check);
    return 0;
}

/* --shape and --heap-mib (value next or after '='): 1 if argv[*i] is one
 * and was read into opt (*i moved past a separate value), -1 if its value
 * is missing or bad, 0 if argv[*i] is something else. */
int parse_mark_flag(int argc, char **argv, int *i, struct options *opt)
{
    const char *arg = argv[*i], *value;
    int is_shape;
    char *end;
    long m;

    if (strncmp(arg, "--shape", 7) == 0 && (arg[7] == '\0' || arg[7] == '='))
        is_shape = 1;
    else if (strncmp(arg, "--heap-mib", 10) == 0 && (arg[10] == '\0' || arg[10] == '='))
        is_shape = 0;
    else
        return 0;
    value = strchr(arg, '=');
    if (value) {
        value++;
    } else {
        if (++*i >= argc)
            return -1;
        value = argv[*i];
    }
    if (is_shape) {
        if (strcmp(value, "sequential") != 0 && strcmp(value, "random") != 0)
            return -1;
        opt->shape = value;
        return 1;
    }
    m = strtol(value, &end, 10);
    if (end == value || *end != '\0' || m < 1 || m > 65536)
        return -1;
    opt->heap_mib = (int)m;
    return 1;
}

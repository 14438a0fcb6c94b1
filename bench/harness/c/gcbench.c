/*
 * GCBench on bdwgc.
 *
 * The GC benchmark of John Ellis and Pete Kovac (Java, Post Communications,
 * 1997), adapted to C for bdwgc by Hans Boehm (GCBench.c,
 * https://hboehm.info/gc/gc_bench.html). Boehm's own caveats apply: it is
 * "too regular" and now "most useful as a sanity test". Parameters as in
 * the original:
 *   stretch tree depth 18, long-lived tree depth 16, long-lived array of
 *   500,000 doubles, tree depths 4, 6, ..., 16,
 *   TreeSize(i) = 2^(i+1) - 1, NumIters(i) = 2 * TreeSize(18) / TreeSize(i);
 * with --quick: stretch 12, long-lived 10, array 5,000, depths 4, 6, 8
 * (NumIters then uses TreeSize(12)).
 *
 *   1. A stretch tree is built bottom-up and dropped.
 *   2. A long-lived tree is built top-down and a long-lived array of
 *      doubles is filled with array[i] = 1/i (array[0] = 0); both stay
 *      live to the end. (The original fills half the array and leaves
 *      array[0] = 1/0; every peer of the harness fills all of it.)
 *   3. For each depth d: NumIters(d) trees built top-down (a node is
 *      allocated with empty children, then Populate stores two new nodes
 *      into it and recurses: new objects are stored into older ones, the
 *      write-barrier case for an incremental or generational collector),
 *      then as many built bottom-up (MakeTree: children first), each tree
 *      dropped before the next. Each loop is timed.
 * Node is {left, right, i, j} with int i, j, as in the original; nodes are
 * GC_MALLOC'ed (they hold pointers), the array GC_MALLOC_ATOMIC'ed.
 *
 * Output (stdout):
 *   stretch depth 18
 *   long-lived tree depth 16, array 500000
 *   depth 4: 33824 trees top-down, 33824 bottom-up, check 31
 *   ...
 *   long-lived nodes 131071, array[1000] 0.001000
 * "check" is the node count of the last bottom-up tree, walked; the last
 * line walks the long-lived tree and prints array[min(1000, A-1)].
 * Metrics (stderr): topdown_ms_d<d>, bottomup_ms_d<d>.
 *
 * --threads 2: after steps 1 and 2, two threads each run the whole loop of
 * step 3 with ceil(NumIters(d) / 2) trees of each kind per depth; the
 * long-lived structures are shared (live throughout). Every NumIters is
 * even at both sizes, so the printed count is the total built. The
 * per-depth times are the slower thread's.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_DEPTHS 16

typedef struct node {
    struct node *left, *right;
    int i, j;
} node;

struct params {
    int stretch_depth, long_lived_depth, array_size, min_depth, max_depth;
};

static const struct params full = { 18, 16, 500000, 4, 16 };
static const struct params quick = { 12, 10, 5000, 4, 8 };

static long tree_size(int depth)
{
    return (1L << (depth + 1)) - 1;
}

static long num_iters(const struct params *p, int depth)
{
    return 2 * tree_size(p->stretch_depth) / tree_size(depth);
}

/* GC_MALLOC returns cleared memory: left = right = NULL, i = j = 0. */
static node *new_node(node *left, node *right)
{
    node *n = GC_MALLOC(sizeof *n);

    if (!n) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        exit(1);
    }
    n->left = left;
    n->right = right;
    return n;
}

/* Top-down: give an existing node two new children, then recurse. */
static void populate(int depth, node *n)
{
    if (depth <= 0)
        return;
    depth--;
    n->left = new_node(NULL, NULL);
    n->right = new_node(NULL, NULL);
    populate(depth, n->left);
    populate(depth, n->right);
}

/* Bottom-up: children first, then the node that holds them. */
static node *make_tree(int depth)
{
    node *left, *right;

    if (depth <= 0)
        return new_node(NULL, NULL);
    left = make_tree(depth - 1);
    right = make_tree(depth - 1);
    return new_node(left, right);
}

static long count_nodes(const node *n)
{
    return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0;
}

struct worker {
    pthread_t thread;
    const struct params *p;
    long iters[MAX_DEPTHS];         /* trees of each kind, per depth */
    double topdown_ms[MAX_DEPTHS];
    double bottomup_ms[MAX_DEPTHS];
    long check[MAX_DEPTHS];         /* nodes in the last bottom-up tree */
};

/* TimeConstruction of the original, for every depth. */
static void time_construction(struct worker *w)
{
    int d, k;

    for (d = w->p->min_depth, k = 0; d <= w->p->max_depth; d += 2, k++) {
        long i, n = w->iters[k];
        node *tree = NULL;
        uint64_t t0, t1, t2;

        t0 = now_ns();
        for (i = 0; i < n; i++) {
            tree = new_node(NULL, NULL);
            populate(d, tree);
        }
        t1 = now_ns();
        for (i = 0; i < n; i++)
            tree = make_tree(d);
        t2 = now_ns();

        w->topdown_ms[k] = (double)(t1 - t0) / 1e6;
        w->bottomup_ms[k] = (double)(t2 - t1) / 1e6;
        w->check[k] = count_nodes(tree);
    }
}

static void *worker_main(void *arg)
{
    time_construction(arg);
    return NULL;
}

int run_gcbench(const struct options *opt)
{
    const struct params *p = opt->quick ? &quick : &full;
    int nthreads = opt->threads;
    struct worker workers[2];
    node *long_lived;
    double *array;
    int t, d, k, i;
    char name[64];

    /* Stretch the heap: build a big tree and drop it. */
    (void)make_tree(p->stretch_depth);
    printf("stretch depth %d\n", p->stretch_depth);

    /* Long-lived structures, kept in this frame (a root) to the end. */
    long_lived = new_node(NULL, NULL);
    populate(p->long_lived_depth, long_lived);
    array = GC_MALLOC_ATOMIC(sizeof *array * (size_t)p->array_size);
    if (!array) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        return 1;
    }
    array[0] = 0.0;
    for (i = 1; i < p->array_size; i++)
        array[i] = 1.0 / i;
    printf("long-lived tree depth %d, array %d\n", p->long_lived_depth, p->array_size);

    for (t = 0; t < nthreads; t++) {
        workers[t].p = p;
        for (d = p->min_depth, k = 0; d <= p->max_depth; d += 2, k++)
            workers[t].iters[k] = (num_iters(p, d) + nthreads - 1) / nthreads;
    }
    if (nthreads == 1) {
        time_construction(&workers[0]);
    } else {
        for (t = 0; t < nthreads; t++)
            if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0) {
                perror("harness-bdwgc: pthread_create");
                return 1;
            }
        for (t = 0; t < nthreads; t++)
            pthread_join(workers[t].thread, NULL);
    }

    for (d = p->min_depth, k = 0; d <= p->max_depth; d += 2, k++) {
        long built = 0;
        double topdown = 0, bottomup = 0;

        for (t = 0; t < nthreads; t++) {
            built += workers[t].iters[k];
            if (workers[t].topdown_ms[k] > topdown)
                topdown = workers[t].topdown_ms[k];
            if (workers[t].bottomup_ms[k] > bottomup)
                bottomup = workers[t].bottomup_ms[k];
        }
        printf("depth %d: %ld trees top-down, %ld bottom-up, check %ld\n",
               d, built, built, workers[0].check[k]);
        snprintf(name, sizeof name, "topdown_ms_d%d", d);
        metric_f64(name, topdown);
        snprintf(name, sizeof name, "bottomup_ms_d%d", d);
        metric_f64(name, bottomup);
    }

    i = p->array_size - 1 < 1000 ? p->array_size - 1 : 1000;
    printf("long-lived nodes %ld, array[1000] %.6f\n", count_nodes(long_lived), array[i]);
    return 0;
}

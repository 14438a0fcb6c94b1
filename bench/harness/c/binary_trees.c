/*
 * binary-trees on bdwgc.
 *
 * The Computer Language Benchmarks Game's binary-trees, "a simplistic
 * adaptation of Hans Boehm's GCBench":
 * https://benchmarksgame-team.pages.debian.net/benchmarksgame/description/binarytrees.html
 * Rules kept here: perfect binary trees are fully created before any of
 * their nodes can be collected; every node is a separate allocation from
 * the collector (GC_MALLOC, as the node holds pointers); the collector runs
 * with its default settings (no heap sizing, no free lists of our own).
 *
 * With D = 21 (10 with --quick) and min depth 4:
 *   1. a stretch tree of depth D+1 is built, walked and dropped;
 *   2. a long-lived tree of depth D is built and kept until the end;
 *   3. for d = 4, 6, ..., D: 2^(D-d+4) trees of depth d are built, walked
 *      and dropped, one at a time;
 *   4. the long-lived tree is walked.
 * A walk counts the nodes ("check"); the output is the Benchmarks Game's:
 *   stretch tree of depth 22\t check: 8388607
 *   2097152\t trees of depth 4\t check: 65011712
 *   ...
 *   long lived tree of depth 21\t check: 4194303
 *
 * --threads 2: the long-lived tree is built first, then two threads each
 * run every depth's loop on half of its iterations (iterations are powers
 * of two, at least 16); the per-depth checks are summed after both are
 * joined and printed in depth order, then the long-lived tree is walked.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MIN_DEPTH 4
#define MAX_DEPTHS 16 /* depths 4, 6, ..., 34: far more than ever used */

typedef struct node {
    struct node *left, *right;
} node;

/* Children first, then their parent (GC_MALLOC returns cleared memory,
 * so a leaf's children are already NULL). */
static node *bottom_up_tree(int depth)
{
    node *n;
    node *left = NULL, *right = NULL;

    if (depth > 0) {
        left = bottom_up_tree(depth - 1);
        right = bottom_up_tree(depth - 1);
    }
    n = GC_MALLOC(sizeof *n);
    if (!n) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        exit(1);
    }
    n->left = left;
    n->right = right;
    return n;
}

static uint64_t item_check(const node *n)
{
    if (!n->left)
        return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

struct worker {
    pthread_t thread;
    int max_depth;
    int index, nthreads;        /* this worker's share of each loop */
    uint64_t check[MAX_DEPTHS]; /* summed checks, per depth index */
};

/* Builds a tree, walks it and lets it go. */
static uint64_t check_new_tree(int depth)
{
    return item_check(bottom_up_tree(depth));
}

static void run_depths(struct worker *w)
{
    int d, k;

    for (d = MIN_DEPTH, k = 0; d <= w->max_depth; d += 2, k++) {
        uint64_t iterations = (uint64_t)1 << (w->max_depth - d + MIN_DEPTH);
        uint64_t share = iterations / w->nthreads
            + ((uint64_t)w->index < iterations % w->nthreads);
        uint64_t i, check = 0;

        for (i = 0; i < share; i++)
            check += check_new_tree(d);
        w->check[k] = check;
    }
}

static void *worker_main(void *arg)
{
    run_depths(arg);
    return NULL;
}

int run_binary_trees(const struct options *opt)
{
    int n = opt->quick ? 10 : 21;
    int max_depth = n > MIN_DEPTH + 2 ? n : MIN_DEPTH + 2;
    int nthreads = opt->threads;
    struct worker workers[2];
    node *long_lived;
    int t, d, k;

    printf("stretch tree of depth %d\t check: %llu\n", max_depth + 1,
           (unsigned long long)check_new_tree(max_depth + 1));

    /* Kept in this frame, so the collector sees it (the main thread's
     * stack is a root, also while it waits in pthread_join). */
    long_lived = bottom_up_tree(max_depth);

    for (t = 0; t < nthreads; t++) {
        workers[t].max_depth = max_depth;
        workers[t].index = t;
        workers[t].nthreads = nthreads;
    }
    if (nthreads == 1) {
        run_depths(&workers[0]);
    } else {
        for (t = 0; t < nthreads; t++)
            if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0) {
                perror("harness-bdwgc: pthread_create");
                return 1;
            }
        for (t = 0; t < nthreads; t++)
            pthread_join(workers[t].thread, NULL);
    }

    for (d = MIN_DEPTH, k = 0; d <= max_depth; d += 2, k++) {
        uint64_t iterations = (uint64_t)1 << (max_depth - d + MIN_DEPTH);
        uint64_t check = 0;

        for (t = 0; t < nthreads; t++)
            check += workers[t].check[k];
        printf("%llu\t trees of depth %d\t check: %llu\n",
               (unsigned long long)iterations, d, (unsigned long long)check);
    }

    printf("long lived tree of depth %d\t check: %llu\n", max_depth,
           (unsigned long long)item_check(long_lived));
    return 0;
}

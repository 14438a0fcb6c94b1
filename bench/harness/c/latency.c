/*
 * latency: Go's GC latency test on bdwgc.
 *
 * The program the Go issue tracker used to measure GC pauses
 * (golang/go#9477, the program of Pusher's 2016 write-up "Golang's
 * Real-time GC in Theory and Practice"), with every push's time kept:
 * a window of W messages stays live in a ring; push i (i = 0 .. P-1)
 * allocates a fresh 1024-byte message with GC_MALLOC_ATOMIC (pointer-free,
 * so never scanned), fills every byte with (uint8)i, and stores it in slot
 * i % W. When i >= W it replaces message j = i - W, which becomes garbage;
 * before that, its byte j % 1024 is read and added, as a uint64, to a
 * checksum. The window itself is an array of W pointers allocated with
 * GC_MALLOC (so the collector scans it) and held by the thread's stack.
 * Every push is timed with CLOCK_MONOTONIC around the allocation, the fill,
 * the read-back and the store, and every push's time is kept (uint32
 * nanoseconds, saturating), not only the worst.
 *
 * Sizes: W = 200,000 (195 MiB live), P = 2,000,000; --quick: W = 2,000,
 * P = 20,000. --threads 2: two threads (registered with the collector
 * through the redirected pthread_create), each with its own window of W/2
 * messages making P/2 pushes (numbered from 0 in each), started together
 * by a barrier once both windows exist; the checksum is their sum.
 *
 * Output (stdout): "latency window <W> pushes <P> checksum <C>", W and P
 * the totals over the threads; C = T * sum(j % 256 for j < P/T - W/T).
 *
 * Metrics (stderr), over every push of every thread, nearest-rank:
 * max_push_ns, p99_push_ns, p999_push_ns; p99_pause_ns, the 99th
 * percentile of the stop-the-world intervals (GC_EVENT_PRE_STOP_WORLD to
 * GC_EVENT_POST_START_WORLD, gcstats.c's definition of max_pause_ns),
 * recorded by a collection-event callback chained in front of
 * gcstats.c's. gc_cycles, max_pause_ns and max_gc_ns come from gcstats.c
 * as for every workload.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG 1024
#define WINDOW 200000
#define PUSHES 2000000
#define QUICK_DIVISOR 100
#define MAX_THREADS 2

/* Stop-the-world intervals of this run (the callback runs with the
 * allocation lock held, one collection at a time). */
#define MAX_PAUSES 65536
static uint64_t pauses[MAX_PAUSES];
static size_t n_pauses;
static uint64_t world_stopping;
static GC_on_collection_event_proc next_event_proc;

static void GC_CALLBACK record_pause(GC_EventType event)
{
    if (event == GC_EVENT_PRE_STOP_WORLD)
        world_stopping = now_ns();
    else if (event == GC_EVENT_POST_START_WORLD && n_pauses < MAX_PAUSES)
        pauses[n_pauses++] = now_ns() - world_stopping;
    if (next_event_proc)
        next_event_proc(event);
}

struct pusher {
    pthread_t thread;
    pthread_barrier_t *start;
    uint64_t window, pushes;
    uint32_t *times; /* push i's time, ns */
    uint64_t checksum;
    int failed;
};

static void *pusher_main(void *arg)
{
    struct pusher *p = arg;
    uint64_t i, w = p->window, checksum = 0;
    /* Held on this thread's stack, which bdwgc scans. */
    unsigned char **window = GC_MALLOC(w * sizeof *window);

    if (!window) {
        p->failed = 1;
        pthread_barrier_wait(p->start);
        return NULL;
    }
    pthread_barrier_wait(p->start);
    for (i = 0; i < p->pushes; i++) {
        uint64_t t0 = now_ns(), d;
        unsigned char **slot = &window[i % w];
        unsigned char *msg = GC_MALLOC_ATOMIC(MSG);

        if (!msg) {
            p->failed = 1;
            return NULL;
        }
        memset(msg, (unsigned char)i, MSG);
        if (*slot)
            checksum += (*slot)[(i - w) % MSG];
        *slot = msg;
        d = now_ns() - t0;
        p->times[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    p->checksum = checksum;
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank index of quantile q (q in (0, 1]) among n sorted values. */
static size_t rank_index(size_t n, double q)
{
    double r = q * (double)n;
    size_t rank = (size_t)r;

    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    return (rank > n ? n : rank) - 1;
}

int run_latency(const struct options *opt)
{
    struct pusher pushers[MAX_THREADS];
    pthread_barrier_t start;
    uint64_t w = WINDOW, p = PUSHES, checksum = 0;
    uint32_t *all;
    int t, threads = opt->threads, status = 0;

    if (opt->quick) {
        w /= QUICK_DIVISOR;
        p /= QUICK_DIVISOR;
    }
    w /= (uint64_t)threads;
    p /= (uint64_t)threads;

    all = malloc((size_t)(p * (uint64_t)threads) * sizeof *all);
    if (!all) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        return 1;
    }
    next_event_proc = GC_get_on_collection_event();
    GC_set_on_collection_event(record_pause);
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (t = 0; t < threads; t++) {
        pushers[t] = (struct pusher){ .start = &start, .window = w, .pushes = p,
                                      .times = all + (size_t)t * p };
    }
    if (threads == 1) {
        pusher_main(&pushers[0]);
    } else {
        for (t = 0; t < threads; t++) {
            if (pthread_create(&pushers[t].thread, NULL, pusher_main, &pushers[t]) != 0) {
                perror("harness-bdwgc: pthread_create");
                exit(1);
            }
        }
        for (t = 0; t < threads; t++)
            pthread_join(pushers[t].thread, NULL);
    }
    pthread_barrier_destroy(&start);
    GC_set_on_collection_event(next_event_proc);

    for (t = 0; t < threads; t++) {
        if (pushers[t].failed)
            status = 1;
        checksum += pushers[t].checksum;
    }
    if (status) {
        fputs("harness-bdwgc: out of memory\n", stderr);
        free(all);
        return status;
    }

    printf("latency window %llu pushes %llu checksum %llu\n",
           (unsigned long long)(w * (uint64_t)threads),
           (unsigned long long)(p * (uint64_t)threads), (unsigned long long)checksum);

    {
        size_t n = (size_t)(p * (uint64_t)threads);

        qsort(all, n, sizeof *all, cmp_u32);
        metric_u64("max_push_ns", n ? all[n - 1] : 0);
        metric_u64("p99_push_ns", n ? all[rank_index(n, 0.99)] : 0);
        metric_u64("p999_push_ns", n ? all[rank_index(n, 0.999)] : 0);
    }
    qsort(pauses, n_pauses, sizeof pauses[0], cmp_u64);
    metric_u64("p99_pause_ns", n_pauses ? pauses[rank_index(n_pauses, 0.99)] : 0);
    free(all);
    return 0;
}

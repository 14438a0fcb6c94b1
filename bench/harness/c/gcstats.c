/*
 * Collection statistics for harness-bdwgc, from bdwgc's public API only.
 *
 *   gc_cycles     GC_get_gc_no(): completed collections over the run.
 *   max_pause_ns  the longest stop-the-world interval: from
 *                 GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD as
 *                 reported to a GC_set_on_collection_event callback. bdwgc
 *                 (not incremental, the default) marks with the world
 *                 stopped, so this is the marking pause; it is the closest
 *                 analogue of Go's MemStats.PauseNs.
 *   max_gc_ns     the longest collection, GC_EVENT_START to GC_EVENT_END:
 *                 the stop-the-world interval plus the work the collecting
 *                 thread does around it while holding the allocation lock
 *                 (waiting for the previous lazy sweep, clearing mark bits,
 *                 finishing the collection). It is the pause the allocating
 *                 thread sees; other threads see it only if they need the
 *                 lock. Go has no counterpart, so it is reported apart.
 *
 * The callback runs in the collecting thread with the allocation lock held
 * (bdwgc's alloc.c), so collections never run it concurrently, and the
 * report is read after every worker thread has been joined.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <time.h>

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void metric_u64(const char *name, uint64_t value)
{
    fprintf(stderr, "metric %s %llu\n", name, (unsigned long long)value);
}

void metric_f64(const char *name, double value)
{
    fprintf(stderr, "metric %s %.3f\n", name, value);
}

static uint64_t gc_started, world_stopping;
static uint64_t max_gc_ns, max_pause_ns;

static void GC_CALLBACK on_collection_event(GC_EventType event)
{
    uint64_t t;

    switch (event) {
    case GC_EVENT_START:
        gc_started = now_ns();
        break;
    case GC_EVENT_PRE_STOP_WORLD:
        world_stopping = now_ns();
        break;
    case GC_EVENT_POST_START_WORLD:
        t = now_ns() - world_stopping;
        if (t > max_pause_ns)
            max_pause_ns = t;
        break;
    case GC_EVENT_END:
        t = now_ns() - gc_started;
        if (t > max_gc_ns)
            max_gc_ns = t;
        break;
    default:
        break;
    }
}

void gcstats_init(void)
{
    GC_set_on_collection_event(on_collection_event);
}

void gcstats_report(void)
{
    metric_u64("gc_cycles", (uint64_t)GC_get_gc_no());
    metric_u64("max_pause_ns", max_pause_ns);
    metric_u64("max_gc_ns", max_gc_ns);
    /* GC_get_parallel() is the number of marker threads besides the one
     * that starts the collection. */
    metric_u64("gc_markers", (uint64_t)GC_get_parallel() + 1);
}

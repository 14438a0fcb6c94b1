/*
 * alloc: the allocation microbenchmark on bdwgc.
 *
 * Steady-state allocate-and-drop of objects of one size, for S = 16, 64,
 * 256, 4096 and 65536 bytes: N(S) = min(2^30 / S, 2^22) objects (N/256
 * with --quick), each GC_MALLOC_ATOMIC(S) (pointer-free payload, so the
 * collector neither clears nor scans it), the most recent 1,000 kept alive
 * in a ring and the older ones left to the collector. Object i gets
 * byte (i % S) = (uint8)i; when it leaves the ring (replaced by object
 * i + 1000) that byte is read back and added, as a uint64, to a checksum.
 * Objects still in the ring at the end are not read (so with --quick,
 * 64 objects of 64 KiB, the checksum is 0). This is the same for every
 * peer; the checksum is sum(i % 256 for i < N - 1000).
 *
 * Output (stdout), per size: "alloc <S> <N> <checksum>".
 * Metric (stderr): ns_per_alloc_<S>, the loop's time divided by N (the
 * write, the read-back and the ring store included).
 *
 * No thread variant: --threads 2 is unsupported (exit 3).
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#define RING 1000

static const size_t sizes[] = { 16, 64, 256, 4096, 65536 };

static uint64_t alloc_count(size_t size, int quick)
{
    uint64_t n = ((uint64_t)1 << 30) / size;

    if (n > (uint64_t)1 << 22)
        n = (uint64_t)1 << 22;
    return quick ? n / 256 : n;
}

int run_alloc(const struct options *opt)
{
    /* The ring lives on this thread's stack, which bdwgc scans. */
    unsigned char *ring[RING];
    size_t s;
    char name[64];

    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        uint64_t n = alloc_count(size, opt->quick);
        uint64_t i, checksum = 0, t0, elapsed;

        memset(ring, 0, sizeof ring);
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            unsigned char *obj = GC_MALLOC_ATOMIC(size);
            unsigned char **slot = &ring[i % RING];

            if (!obj) {
                fputs("harness-bdwgc: out of memory\n", stderr);
                return 1;
            }
            obj[i % size] = (unsigned char)i;
            if (*slot)
                checksum += (*slot)[(i - RING) % size];
            *slot = obj;
        }
        elapsed = now_ns() - t0;

        printf("alloc %zu %llu %llu\n", size, (unsigned long long)n,
               (unsigned long long)checksum);
        snprintf(name, sizeof name, "ns_per_alloc_%zu", size);
        metric_f64(name, (double)elapsed / (double)n);
    }
    return 0;
}

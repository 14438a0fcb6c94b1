/*
 * harness-bdwgc: spanheap's benchmark workloads on the Boehm-Demers-Weiser
 * conservative garbage collector (bdwgc, Debian's libgc-dev), for the
 * side-by-side harness of issue 7.
 *
 *   harness-bdwgc binary-trees [--quick] [--threads 1|2]
 *   harness-bdwgc gcbench      [--quick] [--threads 1|2]
 *   harness-bdwgc alloc        [--quick]
 *   harness-bdwgc latency      [--quick] [--threads 1|2]
 *   harness-bdwgc mark         [--quick] [--threads 1|2] [--shape sequential|random]
 *                              [--heap-mib M]
 *
 * The workloads, their rules and references are described at the top of
 * binary_trees.c, gcbench.c, alloc.c and latency.c; the output contract
 * in harness.h.
 *
 * The collector runs with its defaults, as a bdwgc client is told to use
 * it: GC_INIT() first, GC_MALLOC for objects holding pointers and
 * GC_MALLOC_ATOMIC for pointer-free data, threads created through the
 * redirected pthread_create. One call goes beyond GC_INIT():
 * GC_start_mark_threads(). bdwgc 8.2 starts its parallel marker threads
 * only when the client creates its first thread; gc.h documents calling
 * GC_start_mark_threads() "in single-threaded clients (provided it is OK
 * for the client to perform marking in parallel)", which it is here. It
 * makes the single-threaded runs mark with as many threads as the 2-thread
 * runs (bdwgc's default: one per core, or GC_MARKERS), as Go's collector
 * uses every core whatever the program does. GC_MARKERS=1 in the
 * environment gives serial marking.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: harness-bdwgc <workload> [--quick] [--threads N]\n"
    "  workloads: binary-trees, gcbench (--threads 1 or 2), alloc (--threads 1),\n"
    "             latency (--threads 1 or 2)\n"
    "  mark [--shape sequential|random] [--heap-mib M]: --threads W = W marker\n"
    "               threads (GC_set_markers_count); heap 64 MiB, 4 with --quick\n"
    "  --quick      small sizes (CI: checks the peers agree, not speed)\n"
    "  --threads N  number of mutator threads (default 1)\n"
    "stdout: result lines; stderr: \"metric <name> <value>\" lines\n";

static int usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "harness-bdwgc: %s\n", problem);
    fputs(usage_text, stderr);
    return 2;
}

int unsupported(const char *workload, const char *why)
{
    fprintf(stderr, "unsupported: %s %s %s\n", PEER, workload, why);
    return EXIT_UNSUPPORTED;
}

static int parse_threads(const char *s, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || n < 1 || n > 1024)
        return 0;
    *out = (int)n;
    return 1;
}

int main(int argc, char **argv)
{
    struct options opt = { 0, 1, NULL, 0 };
    const char *workload = NULL;
    int i, status, flag;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--quick") == 0) {
            opt.quick = 1;
        } else if (strcmp(arg, "--threads") == 0) {
            if (++i >= argc || !parse_threads(argv[i], &opt.threads))
                return usage("--threads needs a positive integer");
        } else if (strncmp(arg, "--threads=", 10) == 0) {
            if (!parse_threads(arg + 10, &opt.threads))
                return usage("--threads needs a positive integer");
        } else if ((flag = parse_mark_flag(argc, argv, &i, &opt)) != 0) {
            if (flag < 0)
                return usage("--shape takes sequential or random, --heap-mib a number from 1 to 65536");
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (arg[0] == '-') {
            fprintf(stderr, "harness-bdwgc: unknown option '%s'\n", arg);
            return usage(NULL);
        } else if (workload) {
            return usage("only one workload per run");
        } else {
            workload = arg;
        }
    }
    if (!workload)
        return usage("no workload given");

    int (*run)(const struct options *);
    if (strcmp(workload, "binary-trees") == 0)
        run = run_binary_trees;
    else if (strcmp(workload, "gcbench") == 0)
        run = run_gcbench;
    else if (strcmp(workload, "alloc") == 0)
        run = run_alloc;
    else if (strcmp(workload, "latency") == 0)
        run = run_latency;
    else if (strcmp(workload, "mark") == 0)
        run = run_mark;
    else {
        fprintf(stderr, "harness-bdwgc: unknown workload '%s'\n", workload);
        return usage(NULL);
    }

    /* Checked before the collector starts, so an unsupported variant
     * costs nothing. */
    if (opt.threads > 2)
        return unsupported(workload, "only --threads 1 and 2 are defined");
    if (run == run_alloc && opt.threads != 1)
        return unsupported(workload, "the allocation microbenchmark is single-threaded (--threads 1 only)");

    if (run != run_mark && (opt.shape || opt.heap_mib))
        return usage("--shape and --heap-mib apply to the mark workload only");
    /* mark: --threads W is the number of marker threads (mark.c). */
    if (run == run_mark)
        GC_set_markers_count((unsigned)opt.threads);

    GC_INIT();
    GC_start_mark_threads();
    gcstats_init();

    status = run(&opt);

    if (fflush(stdout) != 0) {
        perror("harness-bdwgc: stdout");
        return 1;
    }
    if (status == 0)
        gcstats_report();
    return status;
}

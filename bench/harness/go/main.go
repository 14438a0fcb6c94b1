// harness-go: spanheap's benchmark workloads in Go, for the side-by-side
// harness of issue 7 (spanheap is built like Go's runtime, so Go is the
// reference peer).
//
//	harness-go binary-trees [--quick] [--threads 1|2]
//	harness-go gcbench      [--quick] [--threads 1|2]
//	harness-go alloc        [--quick]
//	harness-go latency      [--quick] [--threads 1|2]
//	harness-go mark         [--quick] [--threads 1|2] [--shape sequential|random] [--heap-mib M]
//
// The workloads, their rules and references are described at the top of
// binarytrees.go, gcbench.go, alloc.go and latency.go. The programs are plain Go with
// the runtime's defaults: GOGC=100 unless the environment says otherwise,
// GOMAXPROCS = number of CPUs, goroutines for the 2-thread variants, and
// no runtime or debug calls that change the collector's behaviour.
//
// Output contract (the same for every peer: Go, bdwgc, the Rust crates):
// stdout holds only deterministic result lines, compared byte for byte
// with the other peers; stderr holds only "metric <name> <value>" lines.
// Exit 0 on success, 2 with usage on stderr for bad arguments, 3 with
// "unsupported: go <workload> <why>" on stderr for an undefined variant.
//
// Metrics common to every workload (see pauses.go):
//
//	gc_cycles     runtime.MemStats.NumGC at the end.
//	max_pause_ns  the largest MemStats.PauseNs over the whole run. Each
//	              entry is one cycle's stop-the-world time (its two pauses
//	              added); the runtime keeps only the last 256, so a
//	              watcher goroutine folds them in as cycles complete.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const peer = "go"

const usageText = `usage: harness-go <workload> [--quick] [--threads N]
  workloads: binary-trees, gcbench (--threads 1 or 2), alloc (--threads 1),
             latency (--threads 1 or 2)
  --quick      small sizes (CI: checks the peers agree, not speed)
  --threads N  number of mutator goroutines (default 1)
  mark [--shape sequential|random] [--heap-mib M]: --threads W = W marker workers
  (GOMAXPROCS); heap 64 MiB, 4 with --quick
stdout: result lines; stderr: "metric <name> <value>" lines
`

type options struct {
	quick   bool
	threads int
	shape   string // mark: --shape ("": sequential)
	heapMiB int    // mark: --heap-mib (0: the default)
}

// A workload writes its result lines to out and its own metrics with
// metric; it returns an error only for a failed write.
type workload func(opt options, out *bufio.Writer) error

var workloads = map[string]workload{
	"binary-trees": binaryTrees,
	"gcbench":      gcBench,
	"alloc":        allocBench,
	"latency":      latencyBench,
	"mark":         markBench,
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func usage(problem string) int {
	if problem != "" {
		fmt.Fprintf(os.Stderr, "harness-go: %s\n", problem)
	}
	fmt.Fprint(os.Stderr, usageText)
	return 2
}

func unsupported(name, why string) int {
	fmt.Fprintf(os.Stderr, "unsupported: %s %s %s\n", peer, name, why)
	return 3
}

func parseThreads(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1024 {
		return 0, false
	}
	return n, true
}

func run(args []string) int {
	opt := options{threads: 1}
	name := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--quick":
			opt.quick = true
		case arg == "--threads":
			i++
			if i >= len(args) {
				return usage("--threads needs a positive integer")
			}
			n, ok := parseThreads(args[i])
			if !ok {
				return usage("--threads needs a positive integer")
			}
			opt.threads = n
		case strings.HasPrefix(arg, "--threads="):
			n, ok := parseThreads(strings.TrimPrefix(arg, "--threads="))
			if !ok {
				return usage("--threads needs a positive integer")
			}
			opt.threads = n
		case isMarkFlag(arg):
			var problem string
			if i, problem = parseMarkFlag(args, i, &opt); problem != "" {
				return usage(problem)
			}
		case arg == "-h" || arg == "--help":
			fmt.Print(usageText)
			return 0
		case strings.HasPrefix(arg, "-"):
			return usage(fmt.Sprintf("unknown option '%s'", arg))
		case name != "":
			return usage("only one workload per run")
		default:
			name = arg
		}
	}
	if name == "" {
		return usage("no workload given")
	}
	w, ok := workloads[name]
	if !ok {
		return usage(fmt.Sprintf("unknown workload '%s'", name))
	}
	if problem := markFlagsProblem(name, opt); problem != "" {
		return usage(problem)
	}
	if opt.threads > 2 {
		return unsupported(name, "only --threads 1 and 2 are defined")
	}
	if name == "alloc" && opt.threads != 1 {
		return unsupported(name, "the allocation microbenchmark is single-threaded (--threads 1 only)")
	}

	pauses := watchPauses()
	out := bufio.NewWriter(os.Stdout)
	err := w(opt, out)
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness-go: stdout: %v\n", err)
		return 1
	}
	pauses.report()
	return 0
}

// metric prints "metric <name> <value>" on stderr.
func metric(name string, value interface{}) {
	switch v := value.(type) {
	case float64:
		fmt.Fprintf(os.Stderr, "metric %s %.3f\n", name, v)
	default:
		fmt.Fprintf(os.Stderr, "metric %s %v\n", name, v)
	}
}

#!/usr/bin/env bash
# Go's GC latency test on spanheap and on Go, in one run, with one table.
#
# Builds examples/src/gc_latency.rs (cargo, release) and bench/go/latency
# (go build), then runs, for each of --runs rounds, in this order:
# spanheap 1 thread, Go 1 goroutine, spanheap 2 threads, Go 2 goroutines,
# Box 1 thread, Box 2 threads (no GC: the machine's noise floor). Every
# configuration keeps `window` messages of 1 KiB live in total and makes
# `pushes` pushes in total. The table gives, per configuration, the median
# over the rounds of each number, and the range of the worst push.
#
#   bench/gc-latency.sh                 # window 200000 (~195 MiB live), 2 M pushes, 5 rounds
#   bench/gc-latency.sh --big           # window 1000000 (~1 GiB live), 5 M pushes, 1 round
#   bench/gc-latency.sh --runs 3 --window 500000 --pushes 3000000
#
# Options: --big, --runs N, --window N, --pushes N, --no-box (skip the Box
# rows). Needs cargo and go (Debian: apt-get install golang-go).
#
# Output files in target/gc-latency/: each program's report
# (<round>-<impl>-<threads>t.txt), its GC trace on stderr (.log:
# SPANHEAP_GCTRACE=1 / GODEBUG=gctrace=1, one line per cycle; printed
# after each cycle's pause), and results.txt (the RESULT lines).
#
# "other CPU" is the CPU time the whole machine spent during the run
# (from /proc/stat, including hypervisor steal) minus the program's own
# process CPU time: a run with a large value shared the two cores with
# something else and its worst push is not trustworthy.
set -euo pipefail
cd "$(dirname "$0")/.."

window=200000
pushes=2000000
runs=5
box=1
big=0
while [ $# -gt 0 ]; do
    case "$1" in
        --big) big=1 ;;
        --runs) runs_opt="$2"; shift ;;
        --window) window_opt="$2"; shift ;;
        --pushes) pushes_opt="$2"; shift ;;
        --no-box) box=0 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$big" = 1 ]; then
    window=1000000
    pushes=5000000
    runs=1
fi
# Explicit options win over --big's settings.
window=${window_opt:-$window}
pushes=${pushes_opt:-$pushes}
runs=${runs_opt:-$runs}

out=target/gc-latency
mkdir -p "$out"
rm -f "$out"/[0-9]*-*t.txt "$out"/[0-9]*-*t.log
: > "$out/results.txt"

echo "== build"
cargo build --release -q -p spanheap-examples --bin gc-latency
(cd bench/go && GOFLAGS=-mod=mod go build -o "../../$out/gc-latency-go" ./latency)
sh_bin=target/release/gc-latency
go_bin=$out/gc-latency-go

# Busy time of all CPUs so far, in seconds (user nice system irq softirq
# steal; not idle or iowait).
busy_s() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz; exit}' /proc/stat
}

# run <round> <impl> <threads>
run() {
    local r=$1 impl=$2 t=$3 f b0 b1 line cpu
    f="$out/$r-$impl-${t}t"
    b0=$(busy_s)
    case "$impl" in
        spanheap) SPANHEAP_GCTRACE=1 "$sh_bin" "$window" "$pushes" "$t" >"$f.txt" 2>"$f.log" ;;
        box) "$sh_bin" "$window" "$pushes" "$t" --box >"$f.txt" 2>"$f.log" ;;
        go) GODEBUG=gctrace=1 "$go_bin" -window "$window" -pushes "$pushes" -threads "$t" >"$f.txt" 2>"$f.log" ;;
    esac
    b1=$(busy_s)
    line=$(grep '^RESULT ' "$f.txt" | sed 's/^RESULT //')
    cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$line")
    other=$(awk -v a="$b0" -v b="$b1" -v c="${cpu:-0}" 'BEGIN{o=b-a-c; if(o<0)o=0; printf "%.2f", o}')
    echo "round=$r $line other_cpu_s=$other" >>"$out/results.txt"
    printf '  round %s %-8s %st: max %8s µs  p99 %6s µs  total %6s s  GCs %3s  other CPU %s s\n' \
        "$r" "$impl" "$t" "$(kv max_us <<<"$line")" "$(kv p99_us <<<"$line")" \
        "$(kv total_s <<<"$line")" "$(kv gcs <<<"$line")" "$other"
}

kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }

configs=("spanheap 1" "go 1" "spanheap 2" "go 2")
[ "$box" = 1 ] && configs+=("box 1" "box 2")

echo "== machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc $(nproc)"
echo "rustc: $(rustc --version)"
echo "go: $(go version)"
echo "spanheap: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- heap gc runtime 2>/dev/null || echo ' (library sources modified)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "window $window messages of 1 KiB, $pushes pushes, $runs round(s)"

echo "== runs"
for r in $(seq 1 "$runs"); do
    for c in "${configs[@]}"; do
        # shellcheck disable=SC2086
        run "$r" $c
    done
done

echo
echo "== results (median over $runs round(s); worst push: median [min–max]; \"ring full\": pushes after the first window)"
echo
echo "| implementation | threads | worst push (µs) | worst, ring full (µs) | p99 (µs) | p99.9 (µs) | p99.99 (µs) | mean (ns) | total (s) | GCs | runtime's max pause (µs) | GC CPU (%) | mark (MB/s) | other CPU (s) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
    set -- $c
    awk -v impl="$1" -v t="$2" '
        function med(a, n,   i, j, x) {
            for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j+1] = a[j]; a[j+1] = x }
            return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
        }
        {
            delete kv
            for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
            if (kv["impl"] != impl || kv["threads"] != t) next
            n++
            mx[n] = kv["max_us"]; ms[n] = kv["max_steady_us"]; p99[n] = kv["p99_us"]; p999[n] = kv["p999_us"]; p9999[n] = kv["p9999_us"]
            mean[n] = kv["mean_ns"]; tot[n] = kv["total_s"]; gcs[n] = kv["gcs"]
            pm[n] = (kv["pause_max_us"] == "") ? 0 : kv["pause_max_us"]; oth[n] = kv["other_cpu_s"]
            gcc[n] = (kv["gc_cpu_pct"] == "") ? 0 : kv["gc_cpu_pct"]; mk[n] = (kv["mark_mbps"] == "") ? 0 : kv["mark_mbps"]
            if (n == 1 || kv["max_us"] + 0 < lo) lo = kv["max_us"] + 0
            if (n == 1 || kv["max_us"] + 0 > hi) hi = kv["max_us"] + 0
        }
        END {
            if (n == 0) exit
            name = (impl == "spanheap") ? "spanheap" : (impl == "go") ? "Go" : "Box (no GC)"
            pmax = (impl == "box") ? "–" : sprintf("%.0f", med(pm, n))
            gccpu = (impl == "box") ? "–" : sprintf("%.1f", med(gcc, n))
            mark = (impl == "spanheap") ? sprintf("%.0f", med(mk, n)) : "–"
            printf "| %s | %s | %.0f [%.0f–%.0f] | %.0f | %.2f | %.1f | %.1f | %.0f | %.3f | %.0f | %s | %s | %s | %.2f |\n",
                name, t, med(mx, n), lo, hi, med(ms, n), med(p99, n), med(p999, n), med(p9999, n),
                med(mean, n), med(tot, n), med(gcs, n), pmax, gccpu, mark, med(oth, n)
        }' "$out/results.txt"
done

# The worst spanheap cycle's phases, from the GC traces: the
# "a+b+c ms clock" field is sweep termination + mark + mark termination.
echo
echo "spanheap cycles, over all rounds (from SPANHEAP_GCTRACE): worst phases in ms"
for t in 1 2; do
    cat "$out"/*-spanheap-"${t}"t.log 2>/dev/null | awk -v t="$t" '
        /^gc [0-9]+ @/ {
            split($4, ph, "+"); n++
            for (i = 1; i <= 3; i++) if (ph[i] + 0 > m[i]) m[i] = ph[i] + 0
            tot = ph[1] + ph[2] + ph[3]; if (tot > mt) { mt = tot; worst = $0 }
        }
        END { if (n) printf "  %s thread(s): %d cycles; max sweep termination %.3f, max mark %.3f, max mark termination %.3f\n    longest: %s\n", t, n, m[1], m[2], m[3], worst }'
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports and GC traces: $out/"

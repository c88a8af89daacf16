package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// benchScale is a host for BenchmarkTakeScales: processes of threads
// threads and fds fds each, on top of whatever the host runs, and
// cgroups cgroups (slices of 19 scopes), a sleep(1) in each of the first
// inUse scopes.
type benchScale struct {
	name                    string
	processes, threads, fds int
	cgroups, inUse          int
	pairs                   int // BPF and procfs takes, in turns
}

// The scales of the issue: an idle host, 2,000 threads and 20,000 fds, and
// (BENCH_SCALE=L: its workload alone takes a minute to start) 20,000
// threads and 200,000 fds; and an idle host of many cgroups, as systemd
// and Kubernetes hosts have. Each workload process adds the Go runtime's
// few threads of its own.
var benchScales = []benchScale{
	{"idle", 0, 0, 0, 0, 0, 9},
	{"idle, 500 cgroups, 100 in use", 0, 0, 0, 500, 100, 9},
	{"2,000 threads", 20, 100, 1000, 0, 0, 9},
	{"20,000 threads", 200, 100, 1000, 0, 0, 5},
}

// takeRun is what one take process measured.
type takeRun struct {
	wall, cpu time.Duration
	rssKB     int64
	allocated int64              // bytes the Go heap handed out (TotalAlloc)
	timings   map[string]float64 // the -v timings line, ms (bytes for *-bytes)
	programs  string
}

// BenchmarkTakeScales times whole `itersnap take` processes, BPF and procfs
// in turns (A B A B: the machine's drift hits both), at each scale in one
// run, and prints per scale the medians and spread: whole take and ratio,
// where a BPF take's time goes (open the pinned programs, walk the tasks
// and fds in the kernel, decode, store), peak RSS and CPU seconds. The
// first BPF take of a scale loads and pins the programs; it is reported
// apart, and the rest open the pins. After each pair it runs the floor
// (measureFloor): what a take costs before it does anything of its own,
// which bounds the idle host's ratio. Run it with `make bench` (and
// BENCH_SCALE=L for the 20,000-thread host).
func BenchmarkTakeScales(b *testing.B) {
	bpftest.RequireBPF(b)
	scales := benchScales[:3]
	if os.Getenv("BENCH_SCALE") == "L" {
		scales = benchScales
	}
	bin := itersnapBinary(b)
	var report strings.Builder
	for _, sc := range scales {
		b.Run(strings.ReplaceAll(sc.name, " ", "-"), func(b *testing.B) {
			for range sc.processes {
				startRole(b, "workload", fmt.Sprint(sc.threads), fmt.Sprint(sc.fds))
			}
			makeCgroups(b, sc.cgroups, sc.inUse)
			// A database per collector, as a host that takes with one
			// collector has: the two collectors' task chunks never match
			// (start times in clock ticks from /proc, in nanoseconds from
			// the kernel), so in a shared database every take would store
			// every task chunk anew, which no host does.
			dir := b.TempDir()
			dbs := map[string]string{"bpf": filepath.Join(dir, "bpf.db"), "procfs": filepath.Join(dir, "procfs.db")}
			// No pins yet, so the first BPF take loads and pins, as a take
			// after a reboot or an upgrade does.
			pins := bpftest.PinDir(b)
			take := func(collector string) takeRun { return measureTake(b, bin, dbs[collector], pins, collector) }
			first := take("bpf")
			take("procfs") // its database's first snapshot, as first is the BPF one's
			var bpfRuns, procRuns, floorRuns []takeRun
			for range sc.pairs {
				bpfRuns = append(bpfRuns, take("bpf"))
				procRuns = append(procRuns, take("procfs"))
				floorRuns = append(floorRuns, measureFloor(b, bin))
			}
			writeScale(&report, sc, first, bpfRuns, procRuns, floorRuns)
			b.ReportMetric(median(procRuns, wallOf)/median(bpfRuns, wallOf), "procfs/bpf")
		})
	}
	fmt.Print("\n" + report.String())
}

// makeCgroups makes n cgroups (rounded down to 20s), slices of 19 scopes,
// and puts a sleep(1) in each of the first inUse scopes; they go when the
// benchmark ends.
func makeCgroups(b *testing.B, n, inUse int) {
	base := fmt.Sprintf("itersnap-bench-%d", os.Getpid())
	var scopes []string
	for i := range n / 20 * 19 {
		scopes = append(scopes, bpftest.Cgroup(b, fmt.Sprintf("%s/s%d.slice/%d.scope", base, i/19, i%19)))
	}
	for _, dir := range scopes[:min(inUse, len(scopes))] {
		bpftest.MoveToCgroup(b, dir, bpftest.Sleeper(b).Process.Pid)
	}
}

// measureTake runs one take of the itersnap binary bin, pinning under
// pins.
func measureTake(b *testing.B, bin, db, pins, collector string) takeRun {
	cmd := exec.Command(bin, "take", "-v", "--db", db, "--collector", collector, "--pin-dir", pins)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("take: %v: %s", err, stderr.String())
	}
	r := takeRun{wall: time.Since(start), timings: map[string]float64{}}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	for line := range strings.Lines(stderr.String()) {
		if fields, ok := strings.CutPrefix(line, "itersnap: timings:"); ok {
			for _, kv := range strings.Fields(fields) {
				k, v, _ := strings.Cut(kv, "=")
				if ms, err := strconv.ParseFloat(strings.TrimSuffix(v, "ms"), 64); err == nil {
					r.timings[k] = ms
					if k == "allocated-bytes" {
						r.allocated = int64(ms)
					}
				} else if k == "programs" {
					r.programs = v
				}
			}
			continue
		}
		if n, err := fmt.Sscanf(line, "itersnap: peak RSS %d kB", &r.rssKB); n == 1 && err == nil {
			continue
		}
		// A procfs take as root still cannot read a process the kernel
		// refuses to root too (this machine's pid 1, not dumpable), and
		// says so; the take is timed all the same.
		if strings.HasPrefix(line, "itersnap: warning: partial snapshot: ") {
			continue
		}
		b.Fatalf("take said %q", line)
	}
	if r.rssKB == 0 || len(r.timings) == 0 {
		b.Fatalf("take said %q", stderr.String())
	}
	return r
}

// measureFloor runs a take that its flags stop (exit 2): a process that
// starts, initializes every package, builds its commands and exits, as
// every take does, the cost both collectors' takes pay besides their own
// work.
func measureFloor(b *testing.B, bin string) takeRun {
	cmd := exec.Command(bin, "take", "--collector", "none")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitUsage {
		b.Fatalf("take --collector none: %v: %s", err, out)
	}
	return takeRun{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

func wallOf(r takeRun) float64 { return float64(r.wall) / 1e6 }
func cpuOf(r takeRun) float64  { return float64(r.cpu) / 1e6 }
func rssOf(r takeRun) float64  { return float64(r.rssKB) / 1024 }
func allocOf(r takeRun) float64 {
	return float64(r.allocated) / (1 << 20)
}
func timingOf(name string) func(takeRun) float64 {
	return func(r takeRun) float64 { return r.timings[name] }
}

func median(runs []takeRun, of func(takeRun) float64) float64 {
	v := values(runs, of)
	return v[len(v)/2]
}

func values(runs []takeRun, of func(takeRun) float64) []float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, of(r))
	}
	slices.Sort(v)
	return v
}

// spread is "median (min-max)".
func spread(runs []takeRun, of func(takeRun) float64, format string) string {
	v := values(runs, of)
	return fmt.Sprintf(format+" ("+format+"–"+format+")", v[len(v)/2], v[0], v[len(v)-1])
}

func writeScale(w *strings.Builder, sc benchScale, first takeRun, bpfRuns, procRuns, floorRuns []takeRun) {
	var ratios []float64
	for i := range bpfRuns {
		ratios = append(ratios, float64(procRuns[i].wall)/float64(bpfRuns[i].wall))
	}
	slices.Sort(ratios)
	fmt.Fprintf(w, "== %s: %d workload processes of %d threads and %d fds, %d cgroups (%d in use), plus the host; %d pairs of takes\n",
		sc.name, sc.processes, sc.threads, sc.fds, sc.cgroups, sc.inUse, len(bpfRuns))
	last := bpfRuns[len(bpfRuns)-1]
	kernelMB := (last.timings["tasks-bytes"] + last.timings["fds-bytes"]) / (1 << 20)
	fmt.Fprintf(w, "  host: kernel output %.2f MB per take (tasks %.0f kB, fds %.0f kB)\n",
		kernelMB, last.timings["tasks-bytes"]/1024, last.timings["fds-bytes"]/1024)
	fmt.Fprintf(w, "  whole take:  bpf %s ms, procfs %s ms; procfs/bpf %.1fx (pairs %.1f–%.1f)\n",
		spread(bpfRuns, wallOf, "%.1f"), spread(procRuns, wallOf, "%.1f"),
		median(procRuns, wallOf)/median(bpfRuns, wallOf), ratios[0], ratios[len(ratios)-1])
	fmt.Fprintf(w, "  floor:       %s ms, CPU %s ms (a take its flags refuse: start, package inits, exit, in every take)\n",
		spread(floorRuns, wallOf, "%.1f"), spread(floorRuns, cpuOf, "%.1f"))
	fmt.Fprintf(w, "  bpf take:    open pinned %s ms (first take: %s, %.1f ms, whole take %.1f ms)\n",
		spread(bpfRuns, timingOf("open"), "%.2f"), first.programs, first.timings["open"], wallOf(first))
	fmt.Fprintf(w, "               walk tasks %s ms, walk fds %s ms (in the kernel)\n",
		spread(bpfRuns, timingOf("tasks-kernel"), "%.1f"), spread(bpfRuns, timingOf("fds-kernel"), "%.1f"))
	fmt.Fprintf(w, "               decode %s ms, finish %s ms, store %s ms, read back %s ms\n",
		spread(bpfRuns, func(r takeRun) float64 { return r.timings["tasks-decode"] + r.timings["fds-decode"] }, "%.1f"),
		spread(bpfRuns, timingOf("finish"), "%.1f"), spread(bpfRuns, timingOf("store"), "%.1f"),
		spread(bpfRuns, timingOf("read-back"), "%.1f"))
	fmt.Fprintf(w, "  peak RSS:    bpf %s MB, procfs %s MB\n", spread(bpfRuns, rssOf, "%.1f"), spread(procRuns, rssOf, "%.1f"))
	fmt.Fprintf(w, "  CPU:         bpf %s ms, procfs %s ms per take (user + system)\n",
		spread(bpfRuns, cpuOf, "%.1f"), spread(procRuns, cpuOf, "%.1f"))
	fmt.Fprintf(w, "  allocated:   bpf %s MB per take (%.1fx the kernel output)\n\n",
		spread(bpfRuns, allocOf, "%.1f"), median(bpfRuns, allocOf)/kernelMB)
}

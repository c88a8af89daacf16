package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/collect"
	"github.com/itersnap/itersnap/snapshot"
)

// The benchmark workload: 20 processes of 100 threads and 750 fds each,
// 2,000 threads and 15,000 fds in all, on top of whatever the host runs.
const (
	benchProcesses = 20
	benchThreads   = 100
	benchFDs       = 750
)

// BenchmarkCollectors times, in one run and on one workload, the BPF and
// procfs collectors gathering the same fields, and whole `itersnap take`
// processes (load, collect, symbolize, commit) with each, then prints the
// ratios and each take's peak RSS. Run it with `make bench`.
func BenchmarkCollectors(b *testing.B) {
	bpftest.RequireBPF(b)
	for range benchProcesses {
		startRole(b, "workload", fmt.Sprint(benchThreads), fmt.Sprint(benchFDs))
	}
	ctx := context.Background()
	perOp := map[string]time.Duration{}
	rss := map[string]int64{}

	for _, c := range []collect.Collector{collect.BPF{}, collect.Procfs{}} {
		b.Run("collect/"+c.Name(), func(b *testing.B) {
			var s *snapshot.Snapshot
			for b.Loop() {
				var err error
				if s, err = c.Collect(ctx, snapshot.Filter{}); err != nil {
					b.Fatal(err)
				}
			}
			perOp["collect/"+c.Name()] = b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(s.Meta.Threads), "threads")
			b.ReportMetric(float64(s.Meta.FDs), "fds")
		})
	}

	bin := itersnapBinary(b)
	for _, name := range []string{"bpf", "procfs"} {
		b.Run("take/"+name, func(b *testing.B) {
			db := filepath.Join(b.TempDir(), "bench.db")
			var peak int64
			for b.Loop() {
				// A whole take of the itersnap binary, in a process of its
				// own.
				cmd := exec.Command(bin, "take", "-v", "--db", db, "--collector", name)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("take: %v: %s", err, stderr.String())
				}
				kb := reportedPeakKB(stderr.String())
				if kb == 0 {
					b.Fatalf("take said %q", stderr.String())
				}
				peak = max(peak, kb)
			}
			perOp["take/"+name] = b.Elapsed() / time.Duration(b.N)
			rss[name] = peak
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
		})
	}

	ratio := func(what string) float64 {
		return float64(perOp[what+"/procfs"]) / float64(perOp[what+"/bpf"])
	}
	fmt.Printf("\nworkload: %d processes, %d threads, %d fds (plus the host's own)\n",
		benchProcesses, benchProcesses*benchThreads, benchProcesses*benchFDs)
	fmt.Printf("collect: bpf %v, procfs %v: bpf is %.1fx faster (target 5x)\n",
		perOp["collect/bpf"].Round(time.Microsecond), perOp["collect/procfs"].Round(time.Microsecond), ratio("collect"))
	fmt.Printf("take:    bpf %v, procfs %v: bpf is %.1fx faster (target 3x)\n",
		perOp["take/bpf"].Round(time.Microsecond), perOp["take/procfs"].Round(time.Microsecond), ratio("take"))
	fmt.Printf("peak RSS of take: bpf %.1f MB, procfs %.1f MB (target < 64 MB)\n\n",
		float64(rss["bpf"])/1024, float64(rss["procfs"])/1024)
}

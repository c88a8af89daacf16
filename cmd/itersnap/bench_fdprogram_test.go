//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// BenchmarkFDProgram holds the fd program (dump_file) against a walk of
// the same fds that does nothing per fd (noop_file, in the same object):
// the kernel's own iteration over the fd tables, which no program can make
// cheaper. On 2,000 threads and 20,000 fds (pipes, unix sockets, eventfds,
// files) plus the host's, both programs, loaded once, walk every fd table
// in turns, each first every other pair, so that a machine whose speed
// drifts slows both alike; the figure is the median of the pairs' ratios
// (target: at most 2x). Run it with `make bench`.
func BenchmarkFDProgram(b *testing.B) {
	bpftest.RequireBPF(b)
	for range benchProcesses {
		startRole(b, "workload", fmt.Sprint(benchThreads), "1000")
	}
	arch := map[string]string{"amd64": "x86", "arm64": "arm64"}[runtime.GOARCH]
	spec, err := ebpf.LoadCollectionSpec(filepath.Join("..", "..", "bpf", "itersnap_"+arch+"_bpfel.o"))
	if err != nil {
		b.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		b.Fatalf("load: %+v", err)
	}
	defer coll.Close()
	progs := []*ebpf.Program{coll.Programs["noop_file"], coll.Programs["dump_file"]}
	var spent [2]time.Duration
	var ratios []float64 // dump_file / noop_file, pair by pair
	written := 0
	for n := 0; b.Loop(); n++ {
		var took [2]time.Duration
		for k := range progs {
			i := (k + n) % len(progs)
			start := time.Now()
			bytes, err := walkProgram(progs[i])
			if err != nil {
				b.Fatal(err)
			}
			took[i] = time.Since(start)
			spent[i] += took[i]
			if i == 1 {
				written = bytes
			}
		}
		ratios = append(ratios, float64(took[1])/float64(took[0]))
	}
	slices.Sort(ratios)
	median := ratios[len(ratios)/2]
	noop, dump := spent[0]/time.Duration(b.N), spent[1]/time.Duration(b.N)
	b.ReportMetric(float64(noop.Microseconds())/1000, "noop-ms")
	b.ReportMetric(float64(dump.Microseconds())/1000, "dump-ms")
	b.ReportMetric(median, "dump/noop")
	fmt.Printf("\nfd walk: no-op %v, dump_file %v on average (%d bytes written); median of the pairs dump/no-op %.2fx (pairs %.2f-%.2f; target at most 2x)\n\n",
		noop.Round(time.Microsecond), dump.Round(time.Microsecond), written, median, ratios[0], ratios[len(ratios)-1])
}

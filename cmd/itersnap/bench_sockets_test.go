//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/collect"
	"github.com/itersnap/itersnap/snapshot"
)

// BenchmarkSocketCost measures what reading sockets, cgroups and ns pids
// in the kernel costs: on 2,000 threads and 20,000 fds (a third of the
// sockets TCP), it times in one run the kernel walk of the programs as
// they were before (commit 00edf8a, kept in testdata/bench) and as they
// are, loaded once and each run to the end of both iterators, and the
// whole BPF collector (load included). Run it with `make bench`.
func BenchmarkSocketCost(b *testing.B) {
	bpftest.RequireBPF(b)
	var pids []uint32
	for range benchProcesses {
		r := startRole(b, "workload", fmt.Sprint(benchThreads), "1000", "inet")
		pid, err := strconv.ParseUint(r.fields[0], 10, 32)
		if err != nil {
			b.Fatalf("workload pid %q", r.fields[0])
		}
		pids = append(pids, uint32(pid))
	}
	// Only the workload: the machine's own tasks are not the same from one
	// run to the next.
	filter := snapshot.Filter{PIDs: pids}
	arch := map[string]string{"amd64": "x86", "arm64": "arm64"}[runtime.GOARCH]
	objects := []struct{ name, path string }{
		{"before", filepath.Join("..", "..", "testdata", "bench", "itersnap-00edf8a_"+arch+"_bpfel.o")},
		{"after", filepath.Join("..", "..", "bpf", "itersnap_"+arch+"_bpfel.o")},
	}
	perOp := map[string]time.Duration{}
	var medianRatio float64
	// Both objects are loaded once and walked in turn, before then after
	// and after then before, so that a machine whose speed drifts slows
	// both alike; the figure is the median of the pairs' ratios.
	b.Run("kernel", func(b *testing.B) {
		colls := make([]*ebpf.Collection, len(objects))
		for i, o := range objects {
			spec, err := ebpf.LoadCollectionSpec(o.path)
			if err != nil {
				b.Fatal(err)
			}
			var filterPIDs [64]uint32
			copy(filterPIDs[:], pids)
			if err := spec.Variables["nr_filter_pids"].Set(uint32(len(pids))); err != nil {
				b.Fatal(err)
			}
			if err := spec.Variables["filter_pids"].Set(filterPIDs); err != nil {
				b.Fatal(err)
			}
			if colls[i], err = ebpf.NewCollection(spec); err != nil {
				b.Fatal(err)
			}
			defer colls[i].Close()
		}
		spent := make([]time.Duration, len(objects))
		bytes := make([]int, len(objects))
		var ratios []float64 // after/before, pair by pair
		for n := 0; b.Loop(); n++ {
			var took [2]time.Duration
			for k := range colls {
				i := (k + n) % len(colls) // before first, then after first
				start := time.Now()
				var err error
				if bytes[i], err = walkObject(colls[i]); err != nil {
					b.Fatal(err)
				}
				took[i] = time.Since(start)
				spent[i] += took[i]
			}
			ratios = append(ratios, float64(took[1])/float64(took[0]))
		}
		for i, o := range objects {
			perOp[o.name] = spent[i] / time.Duration(b.N)
			b.ReportMetric(float64(perOp[o.name].Microseconds())/1000, o.name+"-ms")
			b.ReportMetric(float64(bytes[i]), o.name+"-bytes")
		}
		slices.Sort(ratios)
		medianRatio = ratios[len(ratios)/2]
		b.ReportMetric(medianRatio, "after/before")
	})
	b.Run("collect/bpf", func(b *testing.B) {
		var s *snapshot.Snapshot
		for b.Loop() {
			var err error
			if s, err = (collect.BPF{}).Collect(context.Background(), filter); err != nil {
				b.Fatal(err)
			}
		}
		perOp["collect"] = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(s.Meta.Threads), "threads")
		b.ReportMetric(float64(s.Meta.FDs), "fds")
	})
	before, after := perOp["before"], perOp["after"]
	fmt.Printf("\nkernel walk (both iterators, read): before %v, after %v on average; median of the pairs after/before %+.1f%% (target at most +15%%)\n",
		before.Round(time.Microsecond), after.Round(time.Microsecond), 100*(medianRatio-1))
	fmt.Printf("whole BPF collector: %v; the kernel walk's growth is %+.1f%% of it\n\n",
		perOp["collect"].Round(time.Microsecond), 100*float64(after-before)/float64(perOp["collect"]))
}

// walkObject runs a loaded itersnap object's task and file iterators to
// the end and returns the bytes they wrote.
func walkObject(coll *ebpf.Collection) (int, error) {
	total := 0
	for _, name := range []string{"dump_task", "dump_file"} {
		n, err := walkProgram(coll.Programs[name])
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// walkProgram runs an iterator program to the end and returns the bytes
// it wrote.
func walkProgram(prog *ebpf.Program) (int, error) {
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	total := 0
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		total += n
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		case err == io.EOF, err == nil && n == 0:
			return total, nil
		case err != nil:
			return 0, err
		}
	}
}

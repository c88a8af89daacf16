//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/collect"
	"github.com/itersnap/itersnap/snapshot"
)

// BenchmarkCgroupFilter measures what applying --container in the kernel
// spares: on 20 processes of 100 threads and 1,000 fds, one of them moved
// into a cgroup named as a docker container's scope, it runs the BPF
// collector with --container (the kernel tests each task's cgroup
// ancestors and writes that process's records only) and unfiltered (what
// every take walked and decoded before, to filter after the walk), in
// turns, and prints the medians of the collections and of their kernel
// walks, and the records the kernel wrote. Run it with `make bench`.
func BenchmarkCgroupFilter(b *testing.B) {
	bpftest.RequireBPF(b)
	mnt, _, err := collect.Cgroup2Mount()
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	id := hex.EncodeToString(raw)
	base := filepath.Join(mnt, "itersnap-bench-"+id[:8])
	scope := filepath.Join(base, "docker-"+id+".scope")
	for _, dir := range []string{base, scope} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	// Removed after the workload is gone (cleanups run last first).
	b.Cleanup(func() {
		os.Remove(scope)
		os.Remove(base)
	})
	var inside uint32
	for i := range benchProcesses {
		r := startRole(b, "workload", fmt.Sprint(benchThreads), "1000")
		if i == 0 {
			if err := os.WriteFile(filepath.Join(scope, "cgroup.procs"), []byte(r.fields[0]), 0); err != nil {
				b.Fatal(err)
			}
			pid, err := strconv.ParseUint(r.fields[0], 10, 32)
			if err != nil {
				b.Fatalf("workload pid %q", r.fields[0])
			}
			inside = uint32(pid)
		}
	}
	filters := []struct {
		name string
		f    snapshot.Filter
	}{
		{"container", snapshot.Filter{Containers: []string{id[:12]}}},
		{"unfiltered", snapshot.Filter{}},
	}
	var wall, kernel [2][]float64
	var stats [2]collect.BPFStats
	// Programs stay pinned between collections, as between takes; a pin
	// directory holds one filter's programs, so each filter has its own.
	var pins [2]string
	for i := range filters {
		pins[i] = bpftest.PinDir(b)
	}
	for n := 0; b.Loop(); n++ {
		for k := range filters {
			i := (k + n) % len(filters)
			st := &stats[i]
			*st = collect.BPFStats{}
			start := time.Now()
			s, err := collect.BPF{PinDir: pins[i], Stats: st}.Collect(context.Background(), filters[i].f)
			if err != nil {
				b.Fatal(err)
			}
			wall[i] = append(wall[i], float64(time.Since(start).Microseconds())/1000)
			kernel[i] = append(kernel[i], float64((st.Tasks.Kernel+st.Files.Kernel).Microseconds())/1000)
			if i == 0 {
				procs := s.Processes()
				if len(procs) != 1 || procs[0].PID != inside || st.KernelCgroups != 1 || st.Tasks.Records != len(s.Tasks) {
					b.Fatalf("--container kept %d processes, %d threads (kernel cgroups %d %s, %d threads written); want process %d alone",
						len(procs), len(s.Tasks), st.KernelCgroups, st.KernelCgroupsOff, st.Tasks.Records, inside)
				}
			}
		}
	}
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	for i, f := range filters {
		b.ReportMetric(med(wall[i]), f.name+"-ms")
		b.ReportMetric(med(kernel[i]), f.name+"-kernel-ms")
	}
	fmt.Printf("\n--container on 1 of %d processes: collect %.1f ms (kernel walks %.1f ms, %d threads and %d fds written); unfiltered %.1f ms (kernel walks %.1f ms, %d threads and %d fds)\n\n",
		benchProcesses, med(wall[0]), med(kernel[0]), stats[0].Tasks.Records, stats[0].Files.Records,
		med(wall[1]), med(kernel[1]), stats[1].Tasks.Records, stats[1].Files.Records)
}

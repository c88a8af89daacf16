package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type takeOptions struct {
	*globalOptions
	comms      []string
	pids       []uint
	containers []string
	cgroups    []string
	label      string
	collector  string
	keep       retention
	noPin      bool
	pinDir     string
	// timings are where the take's time went, printed with --verbose.
	timings []timing
}

// timing is one part of a take, as --verbose prints it: name=value.
type timing struct {
	name  string
	value any // a time.Duration, or a word
}

const (
	collectorAuto   = "auto"
	collectorBPF    = "bpf"
	collectorProcfs = "procfs"
)

func newTakeCmd(g *globalOptions) *cobra.Command {
	o := &takeOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "take [--comm NAME]... [--pid PID]... [--label TEXT] [--keep-last N] [--keep-within DURATION]",
		Short: "Record a snapshot and print its ID",
		Long: `Record one snapshot of every thread's kernel stack and every process's open
fds, and print its ID alone on stdout. Quiet on success, so cron mails
nothing.

Filters are applied in the kernel: --comm keeps tasks whose name or whose
process's name is NAME (the kernel keeps 15 characters), --pid keeps the
threads and fds of process PID. A task that matches any filter is kept.
--container ID keeps processes whose container ID (read from the cgroup
path) starts with ID, --cgroup PATH those in cgroup v2 PATH or below it
("/system.slice"); they narrow --comm and --pid. The kernel tests each
task's cgroup ancestors against the matching cgroups (at most 64; beyond
that, or inside a cgroup namespace, they are applied after the walk, and
--verbose says so).

The BPF collector needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN),
kernel BTF, task iterators with bpf_d_path (5.12) and bpf_snprintf (5.13);
it loads its bounded-loop programs (collector bpf-loops) where the kernel
lacks bpf_loop (5.17). With --collector auto (the default) a take that
cannot load BPF falls back to reading /proc, with one warning line on stderr
naming what the kernel lacks; --collector procfs asks for that without the
warning.

The BPF programs stay loaded between takes: the first take pins them in
bpffs under --pin-dir (default /sys/fs/bpf/itersnap, mounting a bpffs at
/sys/fs/bpf where there is none), and later takes only read them, which
spares loading them (20-40 ms) every time. itersnap unpin removes them;
--no-pin neither uses nor leaves pins. Where pinning fails the take loads
its programs as usual; --verbose says why, and where the time went.

--keep-last and --keep-within apply retention (as itersnap forget) after
the snapshot is stored, in the same run: the new snapshot is always kept.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTake(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.comms, "comm", nil, "keep only tasks named `NAME` (repeatable)")
	f.UintSliceVar(&o.pids, "pid", nil, "keep only process `PID` (repeatable)")
	f.StringArrayVar(&o.containers, "container", nil, "keep only containers whose `ID` starts so (repeatable)")
	f.StringArrayVar(&o.cgroups, "cgroup", nil, "keep only cgroup v2 `PATH` and below (repeatable)")
	f.StringVar(&o.label, "label", "", "free `TEXT` stored with the snapshot")
	f.StringVar(&o.collector, "collector", collectorAuto, "auto, bpf or procfs")
	f.BoolVar(&o.noPin, "no-pin", false, "load the BPF programs for this take only: neither use nor leave pins")
	bindPinDir(cmd, &o.pinDir, g)
	o.keep.bind(cmd, false)
	return cmd
}

func (o *takeOptions) filter() (snapshot.Filter, error) {
	for _, c := range o.comms {
		if c == "" || strings.ContainsRune(c, 0) {
			return snapshot.Filter{}, usagef("--comm needs a process name")
		}
	}
	for _, p := range o.pids {
		if p == 0 || p > 1<<22 { // PID_MAX_LIMIT
			return snapshot.Filter{}, usagef("--pid %d is not a process id", p)
		}
	}
	if len(o.pids) > snapshot.MaxFilterPIDs || len(o.comms) > snapshot.MaxFilterComms {
		return snapshot.Filter{}, usagef("at most %d --pid and %d --comm filters", snapshot.MaxFilterPIDs, snapshot.MaxFilterComms)
	}
	for _, c := range o.containers {
		if c == "" || strings.Trim(c, "0123456789abcdef") != "" {
			return snapshot.Filter{}, usagef("--container %q is not a container ID (lowercase hex)", c)
		}
	}
	for _, c := range o.cgroups {
		if !strings.HasPrefix(c, "/") || strings.ContainsRune(c, 0) {
			return snapshot.Filter{}, usagef("--cgroup %q is not a cgroup path (it starts with /, as in /proc/PID/cgroup)", c)
		}
	}
	f := narrowFilter(o.comms, o.pids)
	f.Containers, f.Cgroups = o.containers, o.cgroups
	return f, nil
}

func runTake(ctx context.Context, o *takeOptions, stdout io.Writer) error {
	tuneGC()
	f, err := o.filter()
	if err != nil {
		return err
	}
	policy, prune, err := o.keep.policy()
	if err != nil {
		return err
	}
	switch o.collector {
	case collectorAuto, collectorBPF, collectorProcfs:
	default:
		return usagef("unknown --collector %q: want auto, bpf or procfs", o.collector)
	}
	// Fail on an unwritable database before spending a collection on it.
	// The lock is held only now and for the commit, never while collecting.
	// A probe, not an Open: the commit's Open checks the schema and walks
	// the pages, once per take.
	if err := store.Probe(o.db, store.Options{Timeout: o.lockTimeout}); err != nil {
		return err
	}

	s, err := o.collect(ctx, f)
	if err != nil && ctx.Err() != nil {
		// SIGINT or SIGTERM (systemd stopping the unit) while collecting;
		// once collected, a signal no longer stops the commit.
		return errors.New("interrupted while collecting: no snapshot was written")
	}
	if err != nil {
		return err
	}
	if s.Meta.Partial != "" {
		// As root, what is refused is refused to root too (a process
		// that is not dumpable, another user namespace, an LSM).
		next := "run as root"
		if os.Geteuid() == 0 {
			next = "the kernel refused them to root too (see show's notes)"
		}
		o.warnf("partial snapshot: %s; %s", s.Meta.Partial, next)
	}
	s.Meta.Label = o.label
	s.DropProcess(uint32(os.Getpid()))

	stored := time.Now()
	db, err := store.Open(o.db, store.Options{Timeout: o.lockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	receipt, err := db.Commit(s)
	if err != nil {
		return err
	}
	id := receipt.ID
	// Success is a snapshot that reads back, not a commit that returned.
	// The read-back decodes only the chunks this take wrote (the rest it
	// has from the receipt), so the collected records and the stored ones
	// are not both in memory whole.
	s = nil
	readBack := time.Now()
	put := readBack.Sub(stored)
	if err := db.ReadBack(receipt); err != nil {
		return fmt.Errorf("snapshot %d was stored but does not read back: %w", id, err)
	}
	if o.verbose {
		o.timings = append(o.timings, timing{"store", put}, timing{"read-back", time.Since(readBack)})
		// What the take's Go heap handed out, for make bench to hold
		// against the kernel output.
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		o.timings = append(o.timings, timing{"allocated-bytes", mem.TotalAlloc})
		o.printTimings()
	}
	if _, err := fmt.Fprintln(stdout, id); err != nil {
		return err
	}
	// Retention after the snapshot is committed, still under the lock: a
	// failure here loses nothing that was taken.
	if prune {
		if _, err := db.Forget(policy, time.Local, false); err != nil {
			return fmt.Errorf("snapshot %d stored, but retention failed: %w", id, err)
		}
	}
	return db.Close()
}

// printTimings writes the take's timings on one line of stderr, in
// milliseconds: "itersnap: timings: programs=opened-pinned open=0.412 ...".
func (o *takeOptions) printTimings() {
	var b strings.Builder
	b.WriteString("itersnap: timings:")
	for _, t := range o.timings {
		switch v := t.value.(type) {
		case time.Duration:
			fmt.Fprintf(&b, " %s=%.3fms", t.name, float64(v)/float64(time.Millisecond))
		default:
			fmt.Fprintf(&b, " %s=%v", t.name, v)
		}
	}
	fmt.Fprintln(o.stderr, b.String())
}

// tuneGC trades a take's garbage collections for memory it has to spare:
// a take allocates a few MB on a small host and its big slices live to the
// end, so the default (a collection each time the heap doubles from 4 MB)
// only costs CPU, ~5 ms of a 45 ms take at 2,000 threads. With GOGC=400
// and a 36 MiB soft limit, a small host's take collects once or never,
// and a take at 20,000 threads and 200,000 fds keeps the same 38 MB peak
// RSS (measured with make bench's measured takes). GOGC and GOMEMLIMIT in
// the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(36 << 20)
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type diffOptions struct {
	*globalOptions
	only           []string
	comms          []string
	pids           []uint
	containers     []string
	includeIdle    bool
	failOnFindings bool
	minGrowth      int
	maxSeries      int
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	o := &diffOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Find leaked fds, newly blocked, stuck threads and unchanged stacks between two snapshots",
		Long: `Compare snapshot A with snapshot B, and every snapshot between them in ID
order, and report four kinds of finding:

  fd_leak          fds a process (same pid and start time) opened after A and
                   still holds at B, and (with 3+ snapshots) already held in
                   the snapshot before B, grouped by kind and target (numbers
                   collapsed: socket:[*], part*.dat), when the group grew by
                   --min-growth; ranked by exhausts_in, the time left until
                   RLIMIT_NOFILE at the rate measured
  newly_blocked    threads in uninterruptible sleep (D) at B that were not at A
  stuck            threads in a non-killable D in every snapshot of the range
                   without a single context switch (the hung-task rule)
  unchanged_stack  threads whose kernel stack is identical in every snapshot;
                   idle sleepers (S in every snapshot) are hidden unless
                   --include-idle

A and B are IDs, latest or latest~N, in either order. Snapshots from
different boots are not compared. The table format prints a summary first;
csv and json print one record per finding with these columns:

  finding,pid,tid,comm,snapshot_a,snapshot_b,state,killable,blocked_for,
  class,kind,target,fds_a,fds_b,new_fds,growth,growth_per_hour,monotonic,
  samples,process_fds,limit,limit_used,switches_a,switches_b,stack,
  evidence,exhausts_in,container,pod

A socket leak's target names its protocol, state and remote end
("tcp CLOSE_WAIT 10.0.0.5:5432"; a listener by its local end, a unix
socket by its path); container and pod are the container ID and Kubernetes
pod UID of the process's cgroup.

(see the README for what each column means).

--format folded-diff writes, for a differential flame graph, one line
"comm;frame;...;frame COUNT_A COUNT_B" per thread name and kernel stack seen
in A or B (as difffolded.pl does): flamegraph.pl draws it, widths from B,
red where B has more threads than A. Only --comm and --pid apply to it.

--format openmetrics writes the findings for Prometheus (node_exporter's
textfile collector; write it with -o, which renames the file into place):
itersnap_findings{finding} per kind; for the first --max-series fd_leak
groups itersnap_fd_leak_fds, _growth_per_hour and _exhausts_in_seconds
labelled pid, comm, container, kind, target; itersnap_threads_blocked and
itersnap_threads_stuck; and B's take (itersnap_take_timestamp_seconds,
_duration_seconds, _info{collector}).
` + exitStatusHelp,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{formatsAnnotation: formatFoldedDiff + " " + formatOpenMetrics},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd, o, args[0], args[1], cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.only, "only", nil, "only these findings: fd_leak,newly_blocked,stuck,unchanged_stack")
	f.StringArrayVar(&o.comms, "comm", nil, "only processes or threads named `NAME` (repeatable)")
	f.UintSliceVar(&o.pids, "pid", nil, "only process `PID` (repeatable)")
	f.StringArrayVar(&o.containers, "container", nil, "only processes in containers whose `ID` starts so (repeatable)")
	f.BoolVar(&o.includeIdle, "include-idle", false, "also list idle threads whose stack did not change")
	f.BoolVar(&o.failOnFindings, "fail-on-findings", false, "exit 3 when anything is found (for scripts and alerts)")
	f.IntVar(&o.minGrowth, "min-growth", diff.DefaultMinGrowth, "report an fd group when its fds that persist grew by at least `N`")
	f.IntVar(&o.maxSeries, "max-series", export.DefaultMaxSeries, "with --format openmetrics: fd_leak groups with series of their own, most urgent first")
	g.bindOutput(cmd, true)
	return cmd
}

func runDiff(cmd *cobra.Command, o *diffOptions, refA, refB string, stdout io.Writer) error {
	if o.format == formatFoldedDiff {
		for _, name := range []string{"only", "include-idle", "fail-on-findings", "min-growth"} {
			if cmd.Flags().Changed(name) {
				return usagef("--%s does not go with --format %s", name, formatFoldedDiff)
			}
		}
		return runFoldedDiff(o, refA, refB, stdout)
	}
	if o.minGrowth < 1 {
		return usagef("--min-growth %d: want 1 or more", o.minGrowth)
	}
	opts := diff.Options{IncludeIdle: o.includeIdle, Filter: narrowFilter(o.comms, o.pids), MinGrowth: o.minGrowth}
	if cmd.Flags().Changed("max-series") && (o.format != formatOpenMetrics || o.maxSeries < 1) {
		return usagef("--max-series wants --format %s and a count of 1 or more", formatOpenMetrics)
	}
	opts.Filter.Containers = o.containers
	for _, name := range o.only {
		k, err := diff.ParseKind(strings.TrimSpace(name))
		if err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
		opts.Only = append(opts.Only, k)
	}
	r, _, b, err := walkRange(o.globalOptions, refA, refB, opts, o.format == formatOpenMetrics)
	if err != nil {
		return err
	}
	err = o.withOutput(stdout, func(w io.Writer, wo output.Options) error {
		switch o.format {
		case formatTable:
			return output.WriteDiffTable(w, r, opts, wo.Width)
		case formatOpenMetrics:
			return export.WriteDiffMetrics(w, r, b, export.MetricsOptions{MaxSeries: o.maxSeries})
		}
		if r.Reboot != nil {
			o.warnf("%s", output.RebootLine(r))
		}
		for _, n := range r.Notes {
			o.warnf("%s", output.Escape(n))
		}
		return output.WriteRecords(w, output.FindingColumns, output.Findings(r), wo)
	})
	if err == nil && o.failOnFindings && !r.Empty() {
		return errFindings
	}
	return err
}

// walkRange compares the snapshots from refA to refB as it reads them, one
// at a time in ID order (diff.Walk over store.Walk), so that memory stays
// near two snapshots however long the range. It returns the report, the
// range's metadata and, when needB is set, B whole (else no B).
func walkRange(g *globalOptions, refA, refB string, opts diff.Options, needB bool) (*diff.Report, []diff.Head, *snapshot.Snapshot, error) {
	tuneWalkGC()
	db, err := g.openDB()
	if err != nil {
		return nil, nil, nil, err
	}
	defer db.Close()
	ids, err := rangeIDs(db, refA, refB, true)
	if err != nil {
		return nil, nil, nil, err
	}
	entries, err := db.Entries(ids)
	if err != nil {
		return nil, nil, nil, err
	}
	heads := make([]diff.Head, len(entries))
	for i, e := range entries {
		heads[i] = diff.Head{ID: e.ID, Meta: e.Meta}
	}
	w := diff.NewWalk(heads, opts)
	read := ids
	if w.Done() { // a reboot in the range, or A = B: nothing to compare
		read = nil
		if needB {
			read = ids[len(ids)-1:]
		}
	}
	var b *snapshot.Snapshot
	var runs []diff.FileRun
	// WalkRuns: the fds stay in the store's decoded chunks, which diff
	// keeps as they are, rather than being copied into s.Files for each
	// snapshot; B gets its s.Files back when it is wanted whole.
	err = db.WalkRuns(read, func(s *snapshot.Snapshot, stored []store.FileRun) error {
		last := s.ID == read[len(read)-1]
		if last && needB {
			b = s // the last: the walk reuses the others' memory
			if stored != nil {
				b.Files = make([]snapshot.File, 0, stored[len(stored)-1].End)
				for _, r := range stored {
					b.Files = append(b.Files, r.Files...)
				}
			}
		}
		if w.Done() {
			return nil
		}
		runs = runs[:0]
		for _, r := range stored {
			runs = append(runs, diff.FileRun{ID: r.ChunkID, Start: r.Start, End: r.End, Files: r.Files})
		}
		if stored == nil {
			runs = nil // a record without chunks: diff counts every fd
		}
		return w.Add(s, runs)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return w.Report(), heads, b, nil
}

// tuneWalkGC keeps a walk's heap closer to what it holds: the decoded
// chunks of one snapshot and the arrays of the next, which at 200,000 fds
// (about 160 bytes each since sockets carry their ends) are most of it.
// The default GOGC lets the heap double past that before collecting:
// measured on the large host's range of 100, a 234 MB peak RSS at the
// default and 187 MB at 50, for the same CPU within the noise of a shared
// machine; the day's 2,000-thread host peaks at 57 MB either way. GOGC in
// the environment wins.
func tuneWalkGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// loadRange reads the snapshots from refA to refB in ID order, every one
// between them when all is set, else only the two ends. The database is
// closed before it returns: the shared lock is not needed while comparing.
func loadRange(g *globalOptions, refA, refB string, all bool) ([]*snapshot.Snapshot, error) {
	db, err := g.openDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ids, err := rangeIDs(db, refA, refB, all)
	if err != nil {
		return nil, err
	}
	snaps := make([]*snapshot.Snapshot, 0, len(ids))
	for _, id := range ids {
		s, err := db.Get(id)
		if err != nil {
			return nil, err
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// rangeIDs resolves refA and refB and returns, in ID order, every snapshot
// between them when all is set, else only the two ends.
func rangeIDs(db *store.DB, refA, refB string, all bool) ([]uint64, error) {
	a, err := db.Resolve(refA)
	if err != nil {
		return nil, err
	}
	b, err := db.Resolve(refB)
	if err != nil {
		return nil, err
	}
	if !all {
		return []uint64{min(a, b), max(a, b)}, nil
	}
	return db.Range(a, b)
}

// runFoldedDiff writes the two-count folded stacks of A (the lower ID) and
// B. Counts of snapshots taken with different filters compare different
// sets of threads; a warning says so.
func runFoldedDiff(o *diffOptions, refA, refB string, stdout io.Writer) error {
	snaps, err := loadRange(o.globalOptions, refA, refB, false)
	if err != nil {
		return err
	}
	a, b := snaps[0], snaps[len(snaps)-1]
	fa, fb := output.FilterString(a.Meta.Filter), output.FilterString(b.Meta.Filter)
	if fa != fb {
		o.warnf("snapshots %d and %d were taken with different filters (%q, %q): their counts cover different threads", a.ID, b.ID, fa, fb)
	}
	f := narrowFilter(o.comms, o.pids)
	return o.withOutput(stdout, func(w io.Writer, _ output.Options) error {
		return export.WriteFoldedDiff(w, export.FoldedDiff(a, b, keepTasks(a, f), keepTasks(b, f)))
	})
}

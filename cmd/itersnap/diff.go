package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/export"
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
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	o := &diffOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Find leaked fds, newly blocked, stuck threads and unchanged stacks between two snapshots",
		Long: `Compare snapshot A with snapshot B, and every snapshot between them in ID
order, and report four kinds of finding:

  fd_leak          fds a process (same pid and start time) opened after A and
                   still holds at B, grouped by kind and target, when the group
                   grew; monotonic when it never shrank across the range
  newly_blocked    threads in uninterruptible sleep (D) at B that were not at A
  stuck            threads in a non-killable D in every snapshot of the range
                   without a single context switch (the hung-task rule)
  unchanged_stack  threads whose kernel stack is identical in every snapshot;
                   idle sleepers are hidden unless --include-idle

A and B are IDs, latest or latest~N, in either order. Snapshots from
different boots are not compared. The table format prints a summary first;
csv and json print one record per finding with these columns:

  finding,pid,tid,comm,snapshot_a,snapshot_b,state,killable,blocked_for,
  class,kind,target,fds_a,fds_b,new_fds,growth,growth_per_hour,monotonic,
  samples,process_fds,limit,limit_used,switches_a,switches_b,stack,
  container,pod

A socket leak's target names its protocol, state and remote end
("tcp CLOSE_WAIT 10.0.0.5:5432"; a listener by its local end, a unix
socket by its path); container and pod are the container ID and Kubernetes
pod UID of the process's cgroup.

(see the README for what each column means).

--format folded-diff writes, for a differential flame graph, one line
"comm;frame;...;frame COUNT_A COUNT_B" per thread name and kernel stack seen
in A or B (as difffolded.pl does): flamegraph.pl draws it, widths from B,
red where B has more threads than A. Only --comm and --pid apply to it.
` + exitStatusHelp,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{formatsAnnotation: formatFoldedDiff},
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
	return cmd
}

func runDiff(cmd *cobra.Command, o *diffOptions, refA, refB string, stdout io.Writer) error {
	if o.format == formatFoldedDiff {
		for _, name := range []string{"only", "include-idle", "fail-on-findings"} {
			if cmd.Flags().Changed(name) {
				return usagef("--%s does not go with --format %s", name, formatFoldedDiff)
			}
		}
		return runFoldedDiff(o, refA, refB, stdout)
	}
	opts := diff.Options{IncludeIdle: o.includeIdle, Filter: narrowFilter(o.comms, o.pids)}
	opts.Filter.Containers = o.containers
	for _, name := range o.only {
		k, err := diff.ParseKind(strings.TrimSpace(name))
		if err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
		opts.Only = append(opts.Only, k)
	}
	snaps, err := loadRange(o.globalOptions, refA, refB, true)
	if err != nil {
		return err
	}
	r := diff.Compare(snaps, opts)
	err = withOutput(o.output, stdout, func(w io.Writer) error {
		if o.format == formatTable {
			return writeDiffTable(w, r, opts)
		}
		if r.Reboot != nil {
			o.warnf("%s", rebootLine(r))
		}
		for _, n := range r.Notes {
			o.warnf("%s", n)
		}
		return tabulate(findingRows(r), allColumns, nil).write(w, o.format)
	})
	if err == nil && o.failOnFindings && !r.Empty() {
		return errFindings
	}
	return err
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
	fa, fb := filterString(a.Meta.Filter), filterString(b.Meta.Filter)
	if fa != fb {
		o.warnf("snapshots %d and %d were taken with different filters (%q, %q): their counts cover different threads", a.ID, b.ID, fa, fb)
	}
	f := narrowFilter(o.comms, o.pids)
	return withOutput(o.output, stdout, func(w io.Writer) error {
		return export.WriteFoldedDiff(w, export.FoldedDiff(a, b, keepTasks(a, f), keepTasks(b, f)))
	})
}

// seconds is a duration that CSV and JSON render as seconds and a table as
// "1h2m3s".
type seconds time.Duration

func (d seconds) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }
func (d seconds) String() string {
	return fmt.Sprint(time.Duration(d).Round(time.Millisecond).Seconds())
}

// Human is how a table shows it.
func (d seconds) Human() string { return time.Duration(d).Round(time.Second).String() }

// The diff columns, in CSV order. A table shows, per kind of finding, only
// the columns that kind fills.
var (
	allColumns = []string{"finding", "pid", "tid", "comm", "snapshot_a", "snapshot_b",
		"state", "killable", "blocked_for", "class",
		"kind", "target", "fds_a", "fds_b", "new_fds", "growth", "growth_per_hour", "monotonic",
		"samples", "process_fds", "limit", "limit_used", "switches_a", "switches_b", "stack",
		"container", "pod"}
	kindColumns = map[diff.Kind][]string{
		diff.FDLeak:         {"pid", "comm", "kind", "target", "fds_a", "fds_b", "new_fds", "growth_per_hour", "monotonic", "samples", "process_fds", "limit", "limit_used", "container", "pod"},
		diff.NewlyBlocked:   {"pid", "tid", "comm", "state", "killable", "blocked_for", "stack", "container", "pod"},
		diff.Stuck:          {"pid", "tid", "comm", "state", "killable", "blocked_for", "switches_b", "stack", "container", "pod"},
		diff.UnchangedStack: {"pid", "tid", "comm", "class", "state", "killable", "switches_a", "switches_b", "stack", "container", "pod"},
	}
)

// findingRow is one finding as named column values.
type findingRow struct {
	kind   diff.Kind
	fields map[string]any
}

// findingRows flattens the report's findings, in report order.
func findingRows(r *diff.Report) []findingRow {
	var out []findingRow
	add := func(k diff.Kind, s diff.Subject, fields map[string]any) {
		fields["finding"] = string(k)
		fields["pid"] = s.PID
		fields["tid"] = s.TID
		fields["comm"] = s.Comm
		fields["snapshot_a"] = r.A
		fields["snapshot_b"] = r.B
		fields["container"] = s.Container
		fields["pod"] = s.Pod
		out = append(out, findingRow{k, fields})
	}
	for _, f := range r.FDLeaks {
		add(diff.FDLeak, f.Subject, map[string]any{
			"kind": f.Kind, "target": f.Target, "fds_a": f.FDsA, "fds_b": f.FDsB, "new_fds": f.New,
			"growth": f.Growth(), "growth_per_hour": round2(f.GrowthPerHour), "monotonic": f.Monotonic,
			"samples": f.Samples, "process_fds": f.ProcessFDsB, "limit": limitValue(f.Limit),
			"limit_used": round2(f.LimitUsed)})
	}
	for _, f := range r.NewlyBlocked {
		add(diff.NewlyBlocked, f.Subject, map[string]any{
			"state": f.State, "killable": f.Killable, "blocked_for": seconds(f.BlockedFor),
			"switches_b": f.Switches, "stack": f.Stack})
	}
	for _, f := range r.Stuck {
		add(diff.Stuck, f.Subject, map[string]any{
			"state": f.State, "killable": f.Killable, "blocked_for": seconds(f.BlockedFor),
			"samples": f.Samples, "switches_a": f.Switches, "switches_b": f.Switches, "stack": f.Stack})
	}
	for _, f := range r.Unchanged {
		add(diff.UnchangedStack, f.Subject, map[string]any{
			"class": string(f.Class), "state": f.State, "killable": f.Killable, "samples": f.Samples,
			"blocked_for": blockedFor(f), "switches_a": f.SwitchesA, "switches_b": f.SwitchesB, "stack": f.Stack})
	}
	return out
}

// tabulate lays out the rows of one kind (every kind when only is nil) in
// the given columns; a column a finding does not fill is nil.
func tabulate(rows []findingRow, columns []string, only *diff.Kind) records {
	out := records{columns: columns}
	for _, fr := range rows {
		if only != nil && fr.kind != *only {
			continue
		}
		row := make([]any, len(columns))
		for i, c := range columns {
			row[i] = fr.fields[c]
		}
		out.add(row...)
	}
	return out
}

// blockedFor fills blocked_for for an unchanged stack only when the thread
// is blocked; an idle thread is not "blocked for" anything.
func blockedFor(f diff.UnchangedFinding) any {
	switch f.Class {
	case diff.ClassStuck, diff.ClassKillable:
		return seconds(f.For)
	}
	return nil
}

func limitValue(l uint64) any {
	switch l {
	case snapshot.NoLimit:
		return "unlimited"
	case 0:
		return nil // unknown
	}
	return l
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func rebootLine(r *diff.Report) string {
	return fmt.Sprintf("snapshots %d and %d are from different boots (the boot id changed between snapshots %d and %d): nothing compared across a reboot",
		r.A, r.B, r.Reboot.Before, r.Reboot.After)
}

// writeDiffTable writes a summary a person reads first, then one table per
// kind of finding.
func writeDiffTable(w io.Writer, r *diff.Report, opts diff.Options) error {
	fmt.Fprintf(w, "diff %d → %d: %d snapshot%s over %s\n", r.A, r.B, len(r.IDs), plural(len(r.IDs)), r.Span.Round(time.Second))
	if r.Reboot != nil {
		fmt.Fprintln(w, rebootLine(r))
		return nil
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	counts, lines := summarize(r, opts)
	for _, c := range counts {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-16s %4d  %s", c.kind, c.count, c.worst), " "))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
	rows := findingRows(r)
	for _, k := range diff.AllKinds {
		if r.Count(k) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", strings.ToUpper(string(k)))
		if err := tabulate(rows, kindColumns[k], &k).write(w, formatTable); err != nil {
			return err
		}
	}
	return nil
}

// kindCount is one line of a diff's summary.
type kindCount struct {
	kind  diff.Kind
	count int
	worst string
}

// summarize is what a person reads first, in the table and in the report:
// per kind of finding the count and the worst one, then lines on restarts,
// hidden idle threads, and what one diff proves.
func summarize(r *diff.Report, opts diff.Options) ([]kindCount, []string) {
	var counts []kindCount
	for _, k := range diff.AllKinds {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, k) {
			continue
		}
		counts = append(counts, kindCount{k, r.Count(k), worst(r, k)})
	}
	var lines []string
	for _, x := range r.Restarts {
		if x.OldPID == x.PID {
			lines = append(lines, fmt.Sprintf("restart: pid %d %s was restarted (new start time); its fds were not compared", x.PID, x.Comm))
		} else {
			lines = append(lines, fmt.Sprintf("restart: %s (ppid %d) was restarted as pid %d (was pid %d)", x.Comm, x.PPID, x.PID, x.OldPID))
		}
	}
	if r.IdleHidden > 0 {
		lines = append(lines, fmt.Sprintf("(%d idle threads with unchanged stacks hidden: --include-idle shows them)", r.IdleHidden))
	}
	if r.Count(diff.FDLeak) > 0 && len(r.IDs) == 2 {
		lines = append(lines, "(one diff of two snapshots is a hint; monotonic growth over several snapshots is the evidence)")
	}
	return counts, lines
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// worst describes the worst finding of a kind in one line.
func worst(r *diff.Report, k diff.Kind) string {
	switch {
	case k == diff.FDLeak && len(r.FDLeaks) > 0:
		f := r.FDLeaks[0]
		s := fmt.Sprintf("worst: pid %d %s%s %s %d → %d (%+.0f/h", f.PID, f.Comm, where(f.Subject), f.Target, f.FDsA, f.FDsB, f.GrowthPerHour)
		if f.Monotonic && f.Samples > 2 {
			s += fmt.Sprintf(", monotonic over %d snapshots", f.Samples)
		}
		if f.LimitUsed > 0 {
			s += fmt.Sprintf(", %.0f%% of RLIMIT_NOFILE %d", f.LimitUsed*100, f.Limit)
		}
		return s + ")"
	case k == diff.NewlyBlocked && len(r.NewlyBlocked) > 0:
		f := r.NewlyBlocked[0]
		return fmt.Sprintf("e.g. pid %d tid %d %s in %s", f.PID, f.TID, f.Comm, leaf(f.Stack))
	case k == diff.Stuck && len(r.Stuck) > 0:
		f := r.Stuck[0]
		return fmt.Sprintf("worst: pid %d tid %d %s blocked at least %s in %s", f.PID, f.TID, f.Comm, f.BlockedFor.Round(time.Second), leaf(f.Stack))
	case k == diff.UnchangedStack && len(r.Unchanged) > 0:
		f := r.Unchanged[0]
		return fmt.Sprintf("e.g. pid %d tid %d %s (%s) in %s", f.PID, f.TID, f.Comm, f.Class, leaf(f.Stack))
	}
	return ""
}

// where names a finding's container and pod, as docker and kubectl show
// them (12 characters of the container ID), or nothing on the host.
func where(s diff.Subject) string {
	var b strings.Builder
	if s.Container != "" {
		fmt.Fprintf(&b, " in container %.12s", s.Container)
	}
	if s.Pod != "" {
		fmt.Fprintf(&b, " of pod %s", s.Pod)
	}
	return b.String()
}

// leaf is the innermost function of a folded stack.
func leaf(folded string) string {
	if folded == "" {
		return "?"
	}
	return folded[strings.LastIndexByte(folded, ';')+1:]
}

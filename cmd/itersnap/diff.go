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
	includeIdle    bool
	failOnFindings bool
	minGrowth      int
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
  evidence,exhausts_in

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
	f.BoolVar(&o.includeIdle, "include-idle", false, "also list idle threads whose stack did not change")
	f.BoolVar(&o.failOnFindings, "fail-on-findings", false, "exit 3 when anything is found (for scripts and alerts)")
	f.IntVar(&o.minGrowth, "min-growth", diff.DefaultMinGrowth, "report an fd group when its fds that persist grew by at least `N`")
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
	for _, name := range o.only {
		k, err := diff.ParseKind(strings.TrimSpace(name))
		if err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
		opts.Only = append(opts.Only, k)
	}
	r, _, _, err := walkRange(o.globalOptions, refA, refB, opts, false)
	if err != nil {
		return err
	}
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

// walkRange compares the snapshots from refA to refB as it reads them, one
// at a time in ID order (diff.Walk over store.Walk), so that memory stays
// near two snapshots however long the range. It returns the report, the
// range's metadata and, when needB is set, B whole (else B only when the
// comparison read it).
func walkRange(g *globalOptions, refA, refB string, opts diff.Options, needB bool) (*diff.Report, []diff.Head, *snapshot.Snapshot, error) {
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
	err = db.Walk(read, func(s *snapshot.Snapshot, stored []store.FileRun) error {
		if s.ID == read[len(read)-1] {
			b = s // the last: Walk reuses the others' memory
		}
		if w.Done() {
			return nil
		}
		runs = runs[:0]
		for _, r := range stored {
			runs = append(runs, diff.FileRun{ID: r.ChunkID, Start: r.Start, End: r.End})
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
	fa, fb := filterString(a.Meta.Filter.Comms, a.Meta.Filter.PIDs), filterString(b.Meta.Filter.Comms, b.Meta.Filter.PIDs)
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

// eta is a time to come, a duration that CSV and JSON render as seconds and
// a table as "2h10m": precision a person plans by.
type eta time.Duration

func (d eta) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }
func (d eta) String() string               { return seconds(d).String() }
func (d eta) Human() string                { return shortDuration(time.Duration(d)) }

// shortDuration renders d in its two largest units: "3d4h", "2h10m",
// "4m10s", "45s".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		d = d.Round(time.Hour)
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// The diff columns, in CSV order. A table shows, per kind of finding, only
// the columns that kind fills.
var (
	allColumns = []string{"finding", "pid", "tid", "comm", "snapshot_a", "snapshot_b",
		"state", "killable", "blocked_for", "class",
		"kind", "target", "fds_a", "fds_b", "new_fds", "growth", "growth_per_hour", "monotonic",
		"samples", "process_fds", "limit", "limit_used", "switches_a", "switches_b", "stack",
		"evidence", "exhausts_in"}
	kindColumns = map[diff.Kind][]string{
		diff.FDLeak:         {"pid", "comm", "kind", "target", "fds_a", "fds_b", "new_fds", "growth_per_hour", "monotonic", "samples", "process_fds", "limit", "limit_used", "evidence", "exhausts_in"},
		diff.NewlyBlocked:   {"pid", "tid", "comm", "state", "killable", "blocked_for", "stack"},
		diff.Stuck:          {"pid", "tid", "comm", "state", "killable", "blocked_for", "switches_b", "stack"},
		diff.UnchangedStack: {"pid", "tid", "comm", "class", "state", "killable", "switches_a", "switches_b", "stack"},
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
		out = append(out, findingRow{k, fields})
	}
	for _, f := range r.FDLeaks {
		fields := map[string]any{
			"kind": f.Kind, "target": f.Target, "fds_a": f.FDsA, "fds_b": f.FDsB, "new_fds": f.New,
			"growth": f.Growth(), "growth_per_hour": round2(f.GrowthPerHour), "monotonic": f.Monotonic,
			"samples": f.Samples, "process_fds": f.ProcessFDsB, "limit": limitValue(f.Limit),
			"limit_used": round2(f.LimitUsed), "evidence": f.Evidence}
		if f.Exhausts {
			fields["exhausts_in"] = eta(f.ExhaustsIn)
		}
		add(diff.FDLeak, f.Subject, fields)
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
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-16s %4s  %s", c.kind, c.counted, c.worst), " "))
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
	kind    diff.Kind
	count   int
	counted string // how the count reads: "2", "3 processes (4 groups)"
	worst   string
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
		c := kindCount{kind: k, count: r.Count(k), counted: fmt.Sprint(r.Count(k)), worst: worst(r, k)}
		if k == diff.FDLeak && c.count > 0 {
			// One leak may be several groups (a socket leak, and a
			// log reopened): people count processes.
			n := r.LeakingProcesses()
			c.counted = fmt.Sprintf("%d process%s (%d group%s)", n, pluralES(n), c.count, plural(c.count))
		}
		counts = append(counts, c)
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

func pluralES(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

// worst describes the worst finding of a kind in one line.
func worst(r *diff.Report, k diff.Kind) string {
	switch {
	case k == diff.FDLeak && len(r.FDLeaks) > 0:
		f := r.FDLeaks[0]
		s := fmt.Sprintf("worst: pid %d %s %s %d → %d", f.PID, f.Comm, f.Target, f.FDsA, f.FDsB)
		if f.Exhausts {
			s += fmt.Sprintf(", runs out of fds in ~%s", shortDuration(f.ExhaustsIn))
		}
		s += fmt.Sprintf(" (%+.0f/h", f.GrowthPerHour)
		if f.Evidence == diff.EvidenceTrend {
			s += fmt.Sprintf(", trend over %d snapshots", f.Samples)
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

// leaf is the innermost function of a folded stack.
func leaf(folded string) string {
	if folded == "" {
		return "?"
	}
	return folded[strings.LastIndexByte(folded, ';')+1:]
}

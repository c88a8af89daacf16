package output

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/itersnap/itersnap/diff"
)

// KindCount is one line of a diff's summary: a kind of finding, how many,
// and the worst (or an example), escaped for a table.
type KindCount struct {
	Kind    diff.Kind
	Count   int
	Counted string // how the count reads: "2", or for fd_leak "3 processes (4 groups)"
	Worst   string
}

// Summary is what a person reads first, in the table and in the report:
// per kind of finding the count and the worst one, then lines on restarts,
// hidden idle threads, and what one diff proves. Names in it are escaped
// as in a table.
type Summary struct {
	Counts []KindCount
	Lines  []string
}

// Summarize summarizes r, compared with opts.
func Summarize(r *diff.Report, opts diff.Options) Summary {
	var s Summary
	for _, k := range diff.AllKinds {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, k) {
			continue
		}
		c := KindCount{Kind: k, Count: r.Count(k), Counted: fmt.Sprint(r.Count(k)), Worst: worst(r, k)}
		if k == diff.FDLeak && c.Count > 0 {
			// One leak may be several groups (a socket leak, and a
			// log reopened): people count processes.
			n := r.LeakingProcesses()
			c.Counted = fmt.Sprintf("%d process%s (%d group%s)", n, pluralES(n), c.Count, plural(c.Count))
		}
		s.Counts = append(s.Counts, c)
	}
	for _, x := range r.Restarts {
		if x.OldPID == x.PID {
			s.Lines = append(s.Lines, fmt.Sprintf("restart: pid %d %s was restarted (new start time); its fds were not compared", x.PID, Escape(x.Comm)))
		} else {
			s.Lines = append(s.Lines, fmt.Sprintf("restart: %s (ppid %d) was restarted as pid %d (was pid %d)", Escape(x.Comm), x.PPID, x.PID, x.OldPID))
		}
	}
	if r.IdleHidden > 0 {
		s.Lines = append(s.Lines, fmt.Sprintf("(%d idle threads with unchanged stacks hidden: --include-idle shows them)", r.IdleHidden))
	}
	if r.Count(diff.FDLeak) > 0 && len(r.IDs) == 2 {
		s.Lines = append(s.Lines, "(one diff of two snapshots is a hint; monotonic growth over several snapshots is the evidence)")
	}
	return s
}

// worst describes the worst finding of a kind in one line.
func worst(r *diff.Report, k diff.Kind) string {
	switch {
	case k == diff.FDLeak && len(r.FDLeaks) > 0:
		f := r.FDLeaks[0]
		s := fmt.Sprintf("worst: pid %d %s%s %s %d → %d", f.PID, Escape(f.Comm), where(f.Subject), Escape(f.Target), f.FDsA, f.FDsB)
		if f.Exhausts {
			s += fmt.Sprintf(", runs out of fds in ~%s", ShortDuration(f.ExhaustsIn))
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
		return fmt.Sprintf("e.g. pid %d tid %d %s%s in %s", f.PID, f.TID, Escape(f.Comm), where(f.Subject), Escape(leaf(f.Stack)))
	case k == diff.Stuck && len(r.Stuck) > 0:
		f := r.Stuck[0]
		return fmt.Sprintf("worst: pid %d tid %d %s%s blocked at least %s in %s", f.PID, f.TID, Escape(f.Comm), where(f.Subject), f.BlockedFor.Round(time.Second), Escape(leaf(f.Stack)))
	case k == diff.UnchangedStack && len(r.Unchanged) > 0:
		f := r.Unchanged[0]
		return fmt.Sprintf("e.g. pid %d tid %d %s (%s) in %s", f.PID, f.TID, Escape(f.Comm), f.Class, Escape(leaf(f.Stack)))
	}
	return ""
}

// where names the container and pod a finding's process runs in, for the
// summary: " in container 3f2a9c1b7e4d of pod 5c1e…", or "" on the host.
// A container ID is cut to 12 characters, as docker ps shows it.
func where(s diff.Subject) string {
	var b strings.Builder
	if s.Container != "" {
		fmt.Fprintf(&b, " in container %.12s", Escape(s.Container))
	}
	if s.Pod != "" {
		fmt.Fprintf(&b, " of pod %s", Escape(s.Pod))
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

// RebootLine says that a range spans a reboot, so nothing was compared.
func RebootLine(r *diff.Report) string {
	return fmt.Sprintf("snapshots %d and %d are from different boots (the boot id changed between snapshots %d and %d): nothing compared across a reboot",
		r.A, r.B, r.Reboot.Before, r.Reboot.After)
}

// WriteDiffTable writes a diff for people: a summary first, then one table
// per kind of finding, with only the columns that kind fills.
func WriteDiffTable(w io.Writer, r *diff.Report, opts diff.Options, width int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "diff %d → %d: %d snapshot%s over %s\n", r.A, r.B, len(r.IDs), plural(len(r.IDs)), r.Span.Round(time.Second))
	if r.Reboot != nil {
		fmt.Fprintln(&b, RebootLine(r))
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", Escape(n))
	}
	fmt.Fprintln(&b)
	s := Summarize(r, opts)
	for _, c := range s.Counts {
		fmt.Fprintln(&b, strings.TrimRight(fmt.Sprintf("  %-16s %4s  %s", c.Kind, c.Counted, c.Worst), " "))
	}
	for _, l := range s.Lines {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	all := Findings(r)
	for _, k := range diff.AllKinds {
		if r.Count(k) == 0 {
			continue
		}
		if _, err := fmt.Fprintf(w, "\n%s\n", strings.ToUpper(string(k))); err != nil {
			return err
		}
		if err := WriteRecords(w, KindColumns[k], OfKind(all, k), Options{Format: Table, Width: width}); err != nil {
			return err
		}
	}
	return nil
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

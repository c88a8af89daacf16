package output

import (
	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/snapshot"
)

// Finding is one finding of a diff, of any kind: exactly one of the four
// pointers is set, the one Kind names.
type Finding struct {
	Kind      diff.Kind
	A, B      uint64 // the snapshots compared
	FDLeak    *diff.FDLeakFinding
	Blocked   *diff.BlockedFinding
	Stuck     *diff.StuckFinding
	Unchanged *diff.UnchangedFinding
}

// Subject is who the finding is about.
func (f Finding) Subject() diff.Subject {
	switch {
	case f.FDLeak != nil:
		return f.FDLeak.Subject
	case f.Blocked != nil:
		return f.Blocked.Subject
	case f.Stuck != nil:
		return f.Stuck.Subject
	case f.Unchanged != nil:
		return f.Unchanged.Subject
	}
	return diff.Subject{}
}

// Findings flattens r's findings in report order: every fd leak, then
// newly blocked, stuck and unchanged stacks, each kind in diff's order.
func Findings(r *diff.Report) []Finding {
	out := make([]Finding, 0, len(r.FDLeaks)+len(r.NewlyBlocked)+len(r.Stuck)+len(r.Unchanged))
	for i := range r.FDLeaks {
		out = append(out, Finding{Kind: diff.FDLeak, A: r.A, B: r.B, FDLeak: &r.FDLeaks[i]})
	}
	for i := range r.NewlyBlocked {
		out = append(out, Finding{Kind: diff.NewlyBlocked, A: r.A, B: r.B, Blocked: &r.NewlyBlocked[i]})
	}
	for i := range r.Stuck {
		out = append(out, Finding{Kind: diff.Stuck, A: r.A, B: r.B, Stuck: &r.Stuck[i]})
	}
	for i := range r.Unchanged {
		out = append(out, Finding{Kind: diff.UnchangedStack, A: r.A, B: r.B, Unchanged: &r.Unchanged[i]})
	}
	return out
}

// OfKind keeps the findings of kind k.
func OfKind(fs []Finding, k diff.Kind) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// The diff columns. Each reads the fields of the kinds that fill it and is
// None for the others.
var (
	colFinding   = Column[Finding]{"finding", Whole, func(f Finding) Value { return Text(string(f.Kind)) }}
	colPID       = Column[Finding]{"pid", Whole, func(f Finding) Value { return Uint(f.Subject().PID) }}
	colTID       = Column[Finding]{"tid", Whole, func(f Finding) Value { return Uint(f.Subject().TID) }}
	colComm      = Column[Finding]{"comm", Whole, func(f Finding) Value { return Text(f.Subject().Comm) }}
	colSnapshotA = Column[Finding]{"snapshot_a", Whole, func(f Finding) Value { return Uint(f.A) }}
	colSnapshotB = Column[Finding]{"snapshot_b", Whole, func(f Finding) Value { return Uint(f.B) }}
	colState     = Column[Finding]{"state", Whole, func(f Finding) Value {
		switch {
		case f.Blocked != nil:
			return Text(f.Blocked.State)
		case f.Stuck != nil:
			return Text(f.Stuck.State)
		case f.Unchanged != nil:
			return Text(f.Unchanged.State)
		}
		return None()
	}}
	colKillable = Column[Finding]{"killable", Whole, func(f Finding) Value {
		switch {
		case f.Blocked != nil:
			return Text(f.Blocked.Killable)
		case f.Stuck != nil:
			return Text(f.Stuck.Killable)
		case f.Unchanged != nil:
			return Text(f.Unchanged.Killable)
		}
		return None()
	}}
	colBlockedFor = Column[Finding]{"blocked_for", Whole, func(f Finding) Value {
		switch {
		case f.Blocked != nil:
			return Seconds(f.Blocked.BlockedFor)
		case f.Stuck != nil:
			return Seconds(f.Stuck.BlockedFor)
		case f.Unchanged != nil:
			// Only a blocked thread is "blocked for" anything.
			if c := f.Unchanged.Class; c == diff.ClassStuck || c == diff.ClassKillable {
				return Seconds(f.Unchanged.For)
			}
		}
		return None()
	}}
	colClass = Column[Finding]{"class", Whole, func(f Finding) Value {
		if f.Unchanged != nil {
			return Text(string(f.Unchanged.Class))
		}
		return None()
	}}
	colFdKind        = leakColumn("kind", Whole, func(l *diff.FDLeakFinding) Value { return Text(l.Kind) })
	colTarget        = leakColumn("target", KeepTail, func(l *diff.FDLeakFinding) Value { return Text(l.Target) })
	colFdsA          = leakColumn("fds_a", Whole, func(l *diff.FDLeakFinding) Value { return Int(l.FDsA) })
	colFdsB          = leakColumn("fds_b", Whole, func(l *diff.FDLeakFinding) Value { return Int(l.FDsB) })
	colNewFDs        = leakColumn("new_fds", Whole, func(l *diff.FDLeakFinding) Value { return Int(l.New) })
	colGrowth        = leakColumn("growth", Whole, func(l *diff.FDLeakFinding) Value { return Int(l.Growth()) })
	colGrowthPerHour = leakColumn("growth_per_hour", Whole, func(l *diff.FDLeakFinding) Value { return Float(round2(l.GrowthPerHour)) })
	colMonotonic     = leakColumn("monotonic", Whole, func(l *diff.FDLeakFinding) Value { return Bool(l.Monotonic) })
	colSamples       = Column[Finding]{"samples", Whole, func(f Finding) Value {
		switch {
		case f.FDLeak != nil:
			return Int(f.FDLeak.Samples)
		case f.Stuck != nil:
			return Int(f.Stuck.Samples)
		case f.Unchanged != nil:
			return Int(f.Unchanged.Samples)
		}
		return None()
	}}
	colProcessFDs = leakColumn("process_fds", Whole, func(l *diff.FDLeakFinding) Value { return Int(l.ProcessFDsB) })
	colLimit      = leakColumn("limit", Whole, func(l *diff.FDLeakFinding) Value {
		switch l.Limit {
		case snapshot.NoLimit:
			return Text("unlimited")
		case 0:
			return None() // unknown
		}
		return Uint(l.Limit)
	})
	colLimitUsed = leakColumn("limit_used", Whole, func(l *diff.FDLeakFinding) Value { return Float(round2(l.LimitUsed)) })
	colSwitchesA = Column[Finding]{"switches_a", Whole, func(f Finding) Value {
		switch {
		case f.Stuck != nil:
			return Uint(f.Stuck.Switches) // unchanged: that is what stuck means
		case f.Unchanged != nil:
			return Uint(f.Unchanged.SwitchesA)
		}
		return None()
	}}
	colSwitchesB = Column[Finding]{"switches_b", Whole, func(f Finding) Value {
		switch {
		case f.Blocked != nil:
			return Uint(f.Blocked.Switches)
		case f.Stuck != nil:
			return Uint(f.Stuck.Switches)
		case f.Unchanged != nil:
			return Uint(f.Unchanged.SwitchesB)
		}
		return None()
	}}
	colEvidence   = leakColumn("evidence", Whole, func(l *diff.FDLeakFinding) Value { return Text(l.Evidence) })
	colExhaustsIn = leakColumn("exhausts_in", Whole, func(l *diff.FDLeakFinding) Value {
		if !l.Exhausts {
			return None() // unlimited, unknown, or not growing
		}
		return ETA(l.ExhaustsIn)
	})
	colContainer = Column[Finding]{"container", KeepHead, func(f Finding) Value { return Text(f.Subject().Container) }}
	colPod       = Column[Finding]{"pod", KeepHead, func(f Finding) Value { return Text(f.Subject().Pod) }}
	colStack     = Column[Finding]{"stack", KeepTail, func(f Finding) Value {
		switch {
		case f.Blocked != nil:
			return Text(f.Blocked.Stack)
		case f.Stuck != nil:
			return Text(f.Stuck.Stack)
		case f.Unchanged != nil:
			return Text(f.Unchanged.Stack)
		}
		return None()
	}}
)

// FindingColumns are diff's CSV and JSON columns, every kind in one file:
// finding,pid,tid,comm first, then the kinds' own; a column a kind does not
// fill is empty (null in JSON). New columns go at the end.
var FindingColumns = []Column[Finding]{
	colFinding, colPID, colTID, colComm, colSnapshotA, colSnapshotB,
	colState, colKillable, colBlockedFor, colClass,
	colFdKind, colTarget, colFdsA, colFdsB, colNewFDs, colGrowth, colGrowthPerHour, colMonotonic,
	colSamples, colProcessFDs, colLimit, colLimitUsed, colSwitchesA, colSwitchesB, colStack,
	colEvidence, colExhaustsIn, colContainer, colPod,
}

// KindColumns are the columns a table of one kind of finding shows: only
// those the kind fills.
var KindColumns = map[diff.Kind][]Column[Finding]{
	// fd_leak's table leaves monotonic, samples and limit_used to CSV and
	// JSON: evidence and exhausts_in say the same for people, and the
	// table fits 120 columns.
	diff.FDLeak:         {colPID, colComm, colFdKind, colTarget, colFdsA, colFdsB, colNewFDs, colGrowthPerHour, colProcessFDs, colLimit, colEvidence, colExhaustsIn},
	diff.NewlyBlocked:   {colPID, colTID, colComm, colState, colKillable, colBlockedFor, colStack},
	diff.Stuck:          {colPID, colTID, colComm, colState, colKillable, colBlockedFor, colSwitchesB, colStack},
	diff.UnchangedStack: {colPID, colTID, colComm, colClass, colState, colKillable, colSwitchesA, colSwitchesB, colStack},
}

// leakColumn is a column only fd_leak findings fill.
func leakColumn(name string, cut Cut, get func(*diff.FDLeakFinding) Value) Column[Finding] {
	return Column[Finding]{name, cut, func(f Finding) Value {
		if f.FDLeak == nil {
			return None()
		}
		return get(f.FDLeak)
	}}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

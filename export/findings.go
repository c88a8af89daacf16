package export

import (
	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/snapshot"
)

// opt is a value that may not apply to a row: null in Parquet, an empty
// cell in the CSV.
type opt[T any] struct {
	v  T
	ok bool
}

func some[T any](v T) opt[T]        { return opt[T]{v, true} }
func (o opt[T]) get() (T, bool)     { return o.v, o.ok }
func someInt(v int) opt[int64]      { return some(int64(v)) }
func someText(v string) opt[string] { return opt[string]{v, v != ""} }

// findingRow is one finding of a diff.Report flattened into the diff CSV's
// columns; a column the finding does not fill stays null.
type findingRow struct {
	meta    *snapshot.Meta // snapshot B's
	a, b    uint64
	kind    diff.Kind
	subject diff.Subject

	state, class, fdKind, target, stack  opt[string]
	evidence                             opt[string]
	exhaustsIn                           opt[float64] // seconds
	killable, monotonic                  opt[bool]
	blockedFor, growthPerHour, limitUsed opt[float64]
	fdsA, fdsB, newFDs, growth           opt[int64]
	samples, processFDs                  opt[int64]
	limit, switchesA, switchesB          opt[uint64]
}

// findingRows flattens r's findings in report order; b is r's snapshot B.
func findingRows(r *diff.Report, b *snapshot.Snapshot) []findingRow {
	var out []findingRow
	row := func(k diff.Kind, s diff.Subject) findingRow {
		return findingRow{meta: &b.Meta, a: r.A, b: r.B, kind: k, subject: s}
	}
	for _, f := range r.FDLeaks {
		fr := row(diff.FDLeak, f.Subject)
		fr.fdKind, fr.target = some(f.Kind), some(f.Target)
		fr.fdsA, fr.fdsB, fr.newFDs, fr.growth = someInt(f.FDsA), someInt(f.FDsB), someInt(f.New), someInt(f.Growth())
		fr.growthPerHour, fr.monotonic, fr.samples = some(f.GrowthPerHour), some(f.Monotonic), someInt(f.Samples)
		fr.processFDs, fr.limit = someInt(f.ProcessFDsB), opt[uint64]{f.Limit, f.Limit != 0}
		fr.limitUsed = opt[float64]{f.LimitUsed, f.Limit != 0 && f.Limit != snapshot.NoLimit}
		fr.evidence, fr.exhaustsIn = someText(f.Evidence), opt[float64]{f.ExhaustsIn.Seconds(), f.Exhausts}
		out = append(out, fr)
	}
	for _, f := range r.NewlyBlocked {
		fr := row(diff.NewlyBlocked, f.Subject)
		fr.state, fr.killable, fr.blockedFor = someText(f.State), killable(f.Killable), some(f.BlockedFor.Seconds())
		fr.switchesB, fr.stack = some(f.Switches), someText(f.Stack)
		out = append(out, fr)
	}
	for _, f := range r.Stuck {
		fr := row(diff.Stuck, f.Subject)
		fr.state, fr.killable, fr.blockedFor = someText(f.State), killable(f.Killable), some(f.BlockedFor.Seconds())
		fr.samples, fr.switchesA, fr.switchesB, fr.stack = someInt(f.Samples), some(f.Switches), some(f.Switches), someText(f.Stack)
		out = append(out, fr)
	}
	for _, f := range r.Unchanged {
		fr := row(diff.UnchangedStack, f.Subject)
		fr.class, fr.state, fr.killable, fr.samples = some(string(f.Class)), someText(f.State), killable(f.Killable), someInt(f.Samples)
		if f.Class == diff.ClassStuck || f.Class == diff.ClassKillable {
			fr.blockedFor = some(f.For.Seconds()) // an idle thread is not "blocked for" anything
		}
		fr.switchesA, fr.switchesB, fr.stack = some(f.SwitchesA), some(f.SwitchesB), someText(f.Stack)
		out = append(out, fr)
	}
	return out
}

// killable maps diff's yes/no/unknown onto a boolean; unknown (procfs
// cannot tell) and "not blocked" are null.
func killable(k string) opt[bool] {
	switch k {
	case diff.KillableYes:
		return some(true)
	case diff.KillableNo:
		return some(false)
	}
	return opt[bool]{}
}

package diff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/itersnap/itersnap/snapshot"
)

// keyer makes identities. Across collectors start times are compared at the
// coarser procfs resolution.
type keyer struct{ resolution uint64 }

func (k keyer) start(ns uint64) uint64 { return snapshot.TruncStart(ns, k.resolution) }

func (k keyer) thread(t *snapshot.Task) snapshot.ThreadKey {
	return snapshot.ThreadKey{TID: t.TID, StartTime: k.start(t.StartTime)}
}

// comparisonRules decides, from the snapshots' metadata alone, how the
// range is compared: the start time resolution, the filters every task
// must pass, and notes on both.
func comparisonRules(heads []Head) (keyer, []snapshot.Filter, []string) {
	var notes []string
	k := keyer{resolution: 1}
	var collectors []string
	for _, h := range heads {
		if !slices.Contains(collectors, h.Meta.Collector) {
			collectors = append(collectors, h.Meta.Collector)
		}
	}
	if len(collectors) > 1 {
		k.resolution = snapshot.ProcfsStartResolution
		notes = append(notes, fmt.Sprintf("snapshots from different collectors (%s): start times compared at 10 ms resolution",
			describeEach(heads, func(h Head) string { return orUnknown(h.Meta.Collector) })))
	}

	// A task is compared only when every snapshot would have recorded it:
	// otherwise a filtered A against an unfiltered B shows everything else
	// as new.
	var filters []snapshot.Filter
	differ := false
	for _, h := range heads {
		if formatFilter(h.Meta.Filter) != formatFilter(heads[0].Meta.Filter) {
			differ = true
		}
		if !h.Meta.Filter.Empty() && !slices.ContainsFunc(filters, func(f snapshot.Filter) bool {
			return formatFilter(f) == formatFilter(h.Meta.Filter)
		}) {
			filters = append(filters, h.Meta.Filter)
		}
	}
	if differ {
		notes = append(notes, fmt.Sprintf("snapshots have different filters (%s): only tasks that pass every filter are compared",
			describeEach(heads, func(h Head) string { return formatFilter(h.Meta.Filter) })))
	}
	return k, filters, notes
}

func passes(filters []snapshot.Filter, pid uint32, comm, processComm, cgroup string) bool {
	for _, f := range filters {
		if !f.Match(pid, comm, processComm) || !f.MatchCgroup(cgroup) {
			return false
		}
	}
	return true
}

// formatFilter renders a filter the same way whatever its order.
func formatFilter(f snapshot.Filter) string {
	if f.Empty() {
		return "no filter"
	}
	var parts []string
	if len(f.PIDs) > 0 {
		pids := slices.Clone(f.PIDs)
		slices.Sort(pids)
		s := make([]string, len(pids))
		for i, p := range pids {
			s[i] = fmt.Sprint(p)
		}
		parts = append(parts, "pid "+strings.Join(s, ","))
	}
	if len(f.Comms) > 0 {
		comms := make([]string, len(f.Comms))
		for i, c := range f.Comms {
			comms[i] = snapshot.TruncComm(c)
		}
		slices.Sort(comms)
		comms = slices.Compact(comms)
		parts = append(parts, "comm "+strings.Join(comms, ","))
	}
	for _, l := range []struct {
		name string
		vals []string
	}{{"container", f.Containers}, {"cgroup", f.Cgroups}} {
		if len(l.vals) > 0 {
			vals := slices.Clone(l.vals)
			slices.Sort(vals)
			parts = append(parts, l.name+" "+strings.Join(slices.Compact(vals), ","))
		}
	}
	return strings.Join(parts, " ")
}

// describeEach renders "1: x, 2: y" for the snapshots of a range.
func describeEach(heads []Head, what func(Head) string) string {
	parts := make([]string, len(heads))
	for i, h := range heads {
		parts[i] = fmt.Sprintf("%d: %s", h.ID, what(h))
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func stateString(t *snapshot.Task) string { return string(rune(t.StateLetter())) }

func killable(t *snapshot.Task) string {
	switch {
	case t.Missing&snapshot.MissingKillable != 0:
		return KillableUnknown
	case t.Killable():
		return KillableYes
	}
	return KillableNo
}

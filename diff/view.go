package diff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/itersnap/itersnap/snapshot"
)

// comparison holds one view per snapshot of the range, all keyed the same way
// and narrowed by the same filter.
type comparison struct {
	views []*view
	notes []string
}

// view is one snapshot as the comparison sees it: the tasks and fds that pass
// every filter of the range, indexed by identity.
type view struct {
	snap    *snapshot.Snapshot
	threads map[snapshot.ThreadKey]*snapshot.Task // passing threads
	procs   map[snapshot.ProcessKey]*process      // passing processes
	byPID   map[uint32]*process                   // every process, passing or not
	groups  map[snapshot.ProcessKey]map[group]int // fd groups, counted on demand
}

// process is a thread group of one snapshot.
type process struct {
	key    snapshot.ProcessKey // start time normalized for the comparison
	leader *snapshot.Task      // the group leader, or its lowest thread when the leader was filtered out
	files  []*snapshot.File
}

func (p *process) comm() string { return p.leader.Comm }

// keyer makes identities. Across collectors start times are compared at the
// coarser procfs resolution.
type keyer struct{ resolution uint64 }

func (k keyer) start(ns uint64) uint64 { return snapshot.TruncStart(ns, k.resolution) }

func (k keyer) thread(t *snapshot.Task) snapshot.ThreadKey {
	return snapshot.ThreadKey{TID: t.TID, StartTime: k.start(t.StartTime)}
}

func newComparison(snaps []*snapshot.Snapshot) *comparison {
	c := &comparison{}

	k := keyer{resolution: 1}
	// Start times of different precision (BPF's nanoseconds, procfs's
	// clock ticks) are compared at the coarser one; the two BPF objects
	// record the same.
	var collectors []string
	var resolution uint64 = 1
	for _, s := range snaps {
		if !slices.Contains(collectors, s.Meta.Collector) {
			collectors = append(collectors, s.Meta.Collector)
		}
		resolution = max(resolution, snapshot.StartResolution(s.Meta.Collector))
	}
	if len(collectors) > 1 && resolution > 1 {
		k.resolution = snapshot.ProcfsStartResolution
		c.notes = append(c.notes, fmt.Sprintf("snapshots from different collectors (%s): start times compared at 10 ms resolution",
			describeEach(snaps, func(s *snapshot.Snapshot) string { return orUnknown(s.Meta.Collector) })))
	}

	// A task is compared only when every snapshot would have recorded it:
	// otherwise a filtered A against an unfiltered B shows everything else
	// as new.
	var filters []snapshot.Filter
	differ := false
	for i, s := range snaps {
		if formatFilter(s.Meta.Filter) != formatFilter(snaps[0].Meta.Filter) {
			differ = true
		}
		if !s.Meta.Filter.Empty() && !slices.ContainsFunc(filters, func(f snapshot.Filter) bool {
			return formatFilter(f) == formatFilter(s.Meta.Filter)
		}) {
			filters = append(filters, snaps[i].Meta.Filter)
		}
	}
	if differ {
		c.notes = append(c.notes, fmt.Sprintf("snapshots have different filters (%s): only tasks that pass every filter are compared",
			describeEach(snaps, func(s *snapshot.Snapshot) string { return formatFilter(s.Meta.Filter) })))
	}

	for _, s := range snaps {
		c.views = append(c.views, newView(s, k, filters))
	}
	return c
}

func newView(s *snapshot.Snapshot, k keyer, filters []snapshot.Filter) *view {
	v := &view{
		snap:    s,
		threads: make(map[snapshot.ThreadKey]*snapshot.Task, len(s.Tasks)),
		procs:   map[snapshot.ProcessKey]*process{},
		byPID:   map[uint32]*process{},
		groups:  map[snapshot.ProcessKey]map[group]int{},
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		p := v.byPID[t.PID]
		switch {
		case p == nil:
			v.byPID[t.PID] = &process{leader: t}
		case snapshot.BetterLeader(p.leader, t):
			p.leader = t
		}
	}
	for pid, p := range v.byPID {
		p.key = snapshot.ProcessKey{PID: pid, StartTime: k.start(p.leader.StartTime)}
		if passes(filters, pid, p.comm(), p.comm()) {
			v.procs[p.key] = p
		}
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if passes(filters, t.PID, t.Comm, v.byPID[t.PID].comm()) {
			v.threads[k.thread(t)] = t
		}
	}
	for i := range s.Files {
		f := &s.Files[i]
		// An fd whose process has no task (it started between the task and
		// the file walk) has no identity to compare.
		p := v.byPID[f.PID]
		if p == nil {
			continue
		}
		if _, ok := v.procs[p.key]; ok {
			p.files = append(p.files, f)
		}
	}
	return v
}

func passes(filters []snapshot.Filter, pid uint32, comm, processComm string) bool {
	for _, f := range filters {
		if !f.Match(pid, comm, processComm) {
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
	return strings.Join(parts, " ")
}

// describeEach renders "1: x, 2: y" for the snapshots of a range.
func describeEach(snaps []*snapshot.Snapshot, what func(*snapshot.Snapshot) string) string {
	parts := make([]string, len(snaps))
	for i, s := range snaps {
		parts[i] = fmt.Sprintf("%d: %s", s.ID, what(s))
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// subject describes thread t of view v.
func (v *view) subject(t *snapshot.Task) Subject {
	p := v.byPID[t.PID]
	return Subject{
		PID: t.PID, TID: t.TID, Comm: t.Comm,
		ProcessComm: p.comm(), ProcessStart: p.leader.StartTime,
		ThreadStart: t.StartTime,
	}
}

// everywhere returns the thread with key k in every view, or false when some
// view lacks it.
func (c *comparison) everywhere(k snapshot.ThreadKey) ([]*snapshot.Task, bool) {
	ts := make([]*snapshot.Task, len(c.views))
	for i, v := range c.views {
		t, ok := v.threads[k]
		if !ok {
			return nil, false
		}
		ts[i] = t
	}
	return ts, true
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

func folded(s *snapshot.Snapshot, t *snapshot.Task) string { return s.StackOf(*t).Folded() }

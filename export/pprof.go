package export

import (
	"fmt"

	"github.com/google/pprof/profile"

	"github.com/itersnap/itersnap/snapshot"
)

// Profile makes a pprof profile of the kept threads of s: one sample per
// thread, of value 1 in "threads/count", its kernel stack as locations leaf
// first (pprof's order), and string labels pid, tid, comm and state. So
// `go tool pprof -top` counts threads per kernel function, -tagfocus
// 'state=D' narrows to blocked threads, -tagroot comm adds thread names as
// root frames, and -diff_base compares two snapshots.
//
// Frames are functions (offsets dropped, module suffix kept), each one
// location, in one mapping marked as already symbolized, so pprof does not
// look for a binary to symbolize them with.
func Profile(s *snapshot.Snapshot, keep Keep) *profile.Profile {
	m := s.Meta
	kernel := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]", HasFunctions: true}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "threads", Unit: "count"}},
		PeriodType: &profile.ValueType{Type: "threads", Unit: "count"},
		Period:     1,
		TimeNanos:  m.Time.UnixNano(),
		Mapping:    []*profile.Mapping{kernel},
		Comments: []string{
			fmt.Sprintf("itersnap snapshot %d of host %s, kernel %s, taken %s by the %s collector",
				s.ID, m.Hostname, m.Kernel, m.Time.UTC().Format("2006-01-02 15:04:05 UTC"), m.Collector),
		},
	}
	locations := map[string]*profile.Location{}
	location := func(name string) *profile.Location {
		if l, ok := locations[name]; ok {
			return l
		}
		id := uint64(len(p.Location) + 1)
		f := &profile.Function{ID: id, Name: name, SystemName: name}
		l := &profile.Location{ID: id, Mapping: kernel, Line: []profile.Line{{Function: f}}}
		p.Function = append(p.Function, f)
		p.Location = append(p.Location, l)
		locations[name] = l
		return l
	}
	// One []*Location per distinct stack: threads share their stacks.
	stacks := make([][]*profile.Location, len(s.Stacks))
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if keep != nil && !keep(t) {
			continue
		}
		var locs []*profile.Location
		if st := t.Stack; st >= 0 && int(st) < len(s.Stacks) {
			if stacks[st] == nil {
				for _, frame := range s.Stacks[st] { // already leaf first
					stacks[st] = append(stacks[st], location(snapshot.Function(frame)))
				}
			}
			locs = stacks[st]
		}
		p.Sample = append(p.Sample, &profile.Sample{
			Location: locs,
			Value:    []int64{1},
			Label: map[string][]string{
				"pid":   {fmt.Sprint(t.PID)},
				"tid":   {fmt.Sprint(t.TID)},
				"comm":  {t.Comm},
				"state": {string(t.StateLetter())},
			},
		})
	}
	return p
}

package diff

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
)

// contentRuns splits s's fds (sorted by pid) into runs of at most size fds
// of one process, each named by a hash of its content, as the store's
// chunks are: equal runs in consecutive snapshots get the same ID.
func contentRuns(s *snapshot.Snapshot, size int) []FileRun {
	var runs []FileRun
	for start := 0; start < len(s.Files); {
		end := start + 1
		for end < len(s.Files) && end-start < size && s.Files[end].PID == s.Files[start].PID {
			end++
		}
		h := fnv.New64a()
		for _, f := range s.Files[start:end] {
			fmt.Fprintf(h, "%d %d %d %d %q\n", f.PID, f.FD, f.Dev, f.Inode, f.Path)
		}
		runs = append(runs, FileRun{ID: h.Sum64() | 1, Start: start, End: end})
		start = end
	}
	return runs
}

// TestWalkRunsAgree: a walk told which fd runs consecutive snapshots share
// (and so counting them once) reports what Compare, which counts every fd,
// does, for every scenario and run size.
func TestWalkRunsAgree(t *testing.T) {
	for _, c := range goldenCases {
		for _, size := range []int{1, 2, 64} {
			snaps := readScenario(t, c.input)
			want := Compare(snaps, c.opts)
			heads := make([]Head, len(snaps))
			for i, s := range snaps {
				heads[i] = Head{ID: s.ID, Meta: s.Meta}
			}
			w := NewWalk(heads, c.opts)
			for _, s := range snaps {
				if err := w.Add(s, contentRuns(s, size)); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(want, w.Report(), cmpOpts); d != "" {
				t.Errorf("%s, runs of %d: Walk with runs differs (-Compare +Walk):\n%s", c.name, size, d)
			}
		}
	}
}

// TestWalkBadInput: a walk refuses snapshots out of order, one too many,
// and runs that do not fit the snapshot's fds.
func TestWalkBadInput(t *testing.T) {
	snaps := fdLeakScenario()
	heads := []Head{{ID: snaps[0].ID, Meta: snaps[0].Meta}, {ID: snaps[1].ID, Meta: snaps[1].Meta}}
	w := NewWalk(heads, Options{})
	if err := w.Add(snaps[1], nil); err == nil {
		t.Error("snapshot 2 added first: no error")
	}
	w = NewWalk(heads, Options{})
	if err := w.Add(snaps[0], []FileRun{{ID: 1, Start: 0, End: len(snaps[0].Files) + 1}}); err == nil {
		t.Error("a run past the fds: no error")
	}
	w = NewWalk(heads, Options{})
	if err := w.Add(snaps[0], []FileRun{{ID: 1, Start: 0, End: len(snaps[0].Files)}}); err == nil {
		t.Error("a run over several processes: no error")
	}
	w = NewWalk(heads, Options{})
	for _, s := range snaps[:2] {
		if err := w.Add(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(snaps[2], nil); err == nil {
		t.Error("a third snapshot in a range of two: no error")
	}
	if r := w.Report(); r.A != 1 || r.B != 2 {
		t.Errorf("report of %d..%d", r.A, r.B)
	}
}

// TestWalkOrderFree: the walk looks each thread up first where the
// snapshot before had it, and keeps A's fds sorted; a range whose
// snapshots list their threads and fds in another order each time (with
// A's threads listed twice, the last one counting) reports the same.
func TestWalkOrderFree(t *testing.T) {
	for _, c := range goldenCases {
		snaps := readScenario(t, c.input)
		want := Compare(snaps, c.opts)
		rnd := rand.New(rand.NewPCG(1, uint64(len(c.name))))
		for i, s := range snaps {
			// Reversed, then one in three swapped with a random other.
			slices.Reverse(s.Tasks)
			slices.Reverse(s.Files)
			for j := range s.Tasks {
				if rnd.IntN(3) == 0 {
					k := rnd.IntN(len(s.Tasks))
					s.Tasks[j], s.Tasks[k] = s.Tasks[k], s.Tasks[j]
				}
			}
			for j := range s.Files {
				if rnd.IntN(3) == 0 {
					k := rnd.IntN(len(s.Files))
					s.Files[j], s.Files[k] = s.Files[k], s.Files[j]
				}
			}
			if i == 0 && len(s.Tasks) > 0 {
				s.Tasks = append(s.Tasks, s.Tasks[0])
			}
		}
		if d := cmp.Diff(want, Compare(snaps, c.opts), cmpOpts); d != "" {
			t.Errorf("%s: threads and fds in another order differ (-in order +shuffled):\n%s", c.name, d)
		}
	}
}

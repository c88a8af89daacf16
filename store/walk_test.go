package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
)

// TestWalk: walking a range gives each snapshot exactly as Get does, its
// fd runs cover its fds chunk by chunk, and consecutive snapshots of the
// idle host share most of their runs (what lets diff count them once).
func TestWalk(t *testing.T) {
	db := openTestDB(t)
	h := newIdleHost()
	var ids []uint64
	for i := range 12 {
		if i > 0 {
			h.step()
		}
		ids = append(ids, mustPut(t, db, h.snapshot()))
	}
	var prev map[uint64]bool
	var last *snapshot.Snapshot
	shared, total := 0, 0
	err := db.Walk(ids, func(s *snapshot.Snapshot, runs []FileRun) error {
		last = s
		want, err := db.Get(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, s, cmpOpts); d != "" {
			t.Errorf("snapshot %d: Walk differs from Get (-Get +Walk):\n%s", s.ID, d)
		}
		end := 0
		now := map[uint64]bool{}
		for _, r := range runs {
			if r.Start != end || r.End <= r.Start {
				t.Fatalf("snapshot %d: runs %v do not tile the fds", s.ID, runs)
			}
			for _, f := range s.Files[r.Start:r.End] {
				if f.PID != s.Files[r.Start].PID || f.FD/fdsPerChunk != s.Files[r.Start].FD/fdsPerChunk {
					t.Fatalf("snapshot %d: run %v holds fd %d of pid %d", s.ID, r, f.FD, f.PID)
				}
			}
			end = r.End
			now[r.ChunkID] = true
			total++
			if prev[r.ChunkID] {
				shared++
			}
		}
		if end != len(s.Files) {
			t.Errorf("snapshot %d: runs cover %d of %d fds", s.ID, end, len(s.Files))
		}
		prev = now
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The last snapshot is left as it is (the others' arrays are reused).
	if want, err := db.Get(ids[len(ids)-1]); err != nil || !cmp.Equal(want, last, cmpOpts) {
		t.Errorf("the last snapshot walked changed after the walk (%v)", err)
	}
	if shared*10 < total*8 {
		t.Errorf("%d of %d runs shared with the snapshot before, want most", shared, total)
	}

	stop := errors.New("stop")
	var seen []uint64
	err = db.Walk(slices.Clone(ids[:5]), func(s *snapshot.Snapshot, _ []FileRun) error {
		seen = append(seen, s.ID)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || len(seen) != 2 {
		t.Errorf("Walk after fn failed: %v, read %v", err, seen)
	}
	if err := db.Walk([]uint64{ids[0], 999}, func(*snapshot.Snapshot, []FileRun) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Walk of a missing snapshot: %v, want ErrNotFound", err)
	}
	entries, err := db.Entries(ids[2:4])
	if err != nil || len(entries) != 2 || entries[0].ID != ids[2] || entries[1].ID != ids[3] {
		t.Errorf("Entries = %v, %v", entries, err)
	}
}

// TestWalkSocketStates: a walk over snapshots whose sockets go to another
// state and back gives each snapshot as Get does, with Walk and WalkRuns;
// a run whose sockets moved has no chunk ID, and the runs a snapshot was
// given still hold its fds after the walk has read the others (they are
// the shared chunks: the next snapshot's states must not leak into them).
func TestWalkSocketStates(t *testing.T) {
	db := openTestDB(t)
	var ids []uint64
	for i := range 4 {
		s := socketSnapshot()
		if i%2 == 1 {
			for j := range s.Files {
				if so := s.Files[j].Socket; so != nil && so.State == snapshot.TCPCloseWait {
					so.State = snapshot.TCPLastAck
				}
			}
		}
		ids = append(ids, mustPut(t, db, s))
	}
	for _, walk := range []struct {
		name string
		fn   func([]uint64, func(*snapshot.Snapshot, []FileRun) error) error
	}{{"Walk", db.Walk}, {"WalkRuns", db.WalkRuns}} {
		type given struct {
			id   uint64
			runs []FileRun
		}
		var all []given
		err := walk.fn(ids, func(s *snapshot.Snapshot, runs []FileRun) error {
			var files []snapshot.File
			moved := 0
			for _, r := range runs {
				if walk.name == "Walk" && !cmp.Equal(r.Files, s.Files[r.Start:r.End], cmpOpts) {
					t.Errorf("%s: snapshot %d: run %d..%d's Files are not s.Files there", walk.name, s.ID, r.Start, r.End)
				}
				if r.ChunkID == 0 {
					moved++
				}
				files = append(files, r.Files...)
			}
			if walk.name == "WalkRuns" {
				if len(s.Files) != 0 {
					t.Errorf("WalkRuns: snapshot %d has %d fds in s.Files", s.ID, len(s.Files))
				}
				s.Files = files
			}
			if want := map[bool]int{false: 0, true: 1}[s.ID%2 == 0]; moved != want {
				t.Errorf("%s: snapshot %d: %d runs without a chunk ID, want %d", walk.name, s.ID, moved, want)
			}
			want, err := db.Get(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, s, cmpOpts); d != "" {
				t.Errorf("%s: snapshot %d differs from Get (-Get +walk):\n%s", walk.name, s.ID, d)
			}
			all = append(all, given{s.ID, slices.Clone(runs)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range all {
			want, _ := db.Get(g.id)
			var files []snapshot.File
			for _, r := range g.runs {
				files = append(files, r.Files...)
			}
			if d := cmp.Diff(want.Files, files, cmpOpts); d != "" {
				t.Errorf("%s: snapshot %d's runs changed after the walk went on (-Get +runs):\n%s", walk.name, g.id, d)
			}
		}
	}
}
